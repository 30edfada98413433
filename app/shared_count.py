"""A count that every worker process of the service adds to: requests in flight, service-wide."""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from pathlib import Path
from typing import NamedTuple

_SLOT = struct.Struct("qqq")  # (owner pid, this worker's count, 1 once it serves)


class Total(NamedTuple):
    in_flight: int  # requests in flight, all serving workers together
    workers: int  # workers alive and serving (a dead one, or one still loading, is not counted)


class SharedCount:
    """One slot per worker in a small shared file; the total is the sum of the slots.

    Each worker writes only its own slot, so updates need no lock; a reader may see another
    worker's count a moment late. Only live workers that serve are counted: a worker killed with
    requests in flight, or its replacement while it loads the model, would otherwise hold the
    survivors to a smaller share (1,208 to 1,310 answers 503 after one kill at 32 clients;
    docs/operations.md).

    A worker is alive while it holds the lock file of its slot: the kernel drops the lock as the
    process dies. Its pid cannot tell: a killed worker stays a zombie until uvicorn reaps it (up
    to a second, at its next check), and ``kill(pid, 0)`` finds a zombie alive (242 answers 503
    after a kill, from the dead worker's stale count).
    """

    def __init__(self, directory: Path, name: str = "in_flight", slots: int = 64, serving: bool = True) -> None:
        self._serving = int(serving)
        self._lock_path = str(directory / f"{name}.slot")
        self._lock_files: dict[int, int] = {}  # slot index -> an open descriptor of its lock file
        size = slots * _SLOT.size
        fd = os.open(directory / f"{name}.slots", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # one claim at a time
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
            self._index = self._claim(slots)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)  # the mapping stays valid
        self._offset = self._index * _SLOT.size
        self._slot_count = slots
        # Only the slots up to the highest claimed one, and the next, are read per request (3 with
        # 2 workers, not 64): a request pays for the loop below. A worker claims the lowest free
        # slot, so a new one beyond those read shows first in the next slot.
        self._read = self._index + 1
        self._unpack = struct.Struct(f"{3 * min(self._read + 1, slots)}q")

    def _claim(self, slots: int) -> int:
        """The first slot whose lock is free (never used, or its owner died), locked for good."""
        for index in range(slots):
            try:
                fcntl.flock(self._lock_file(index), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live worker's (or being checked by one: the next slot does as well)
            _SLOT.pack_into(self._map, index * _SLOT.size, os.getpid(), 0, self._serving)
            return index
        raise RuntimeError(f"all {slots} worker slots are taken by live processes")

    def set(self, value: int) -> None:
        """This worker's part of the count."""
        _SLOT.pack_into(self._map, self._offset, os.getpid(), value, self._serving)

    def serve(self) -> None:
        """From now on this worker counts: it has loaded the model and takes requests."""
        self._serving = 1
        owner, value, _ = _SLOT.unpack_from(self._map, self._offset)
        _SLOT.pack_into(self._map, self._offset, owner, value, 1)

    def total(self) -> Total:
        """The count and the number of workers, over the live workers that serve."""
        values = self._unpack.unpack_from(self._map)
        while len(values) > 3 * self._read and values[3 * self._read]:  # the next slot is claimed
            self._read += 1
            self._unpack = struct.Struct(f"{3 * min(self._read + 1, self._slot_count)}q")
            values = self._unpack.unpack_from(self._map)
        count = workers = 0
        for index, (pid, value, serving) in enumerate(zip(values[::3], values[1::3], values[2::3], strict=True)):
            if pid and serving and (index == self._index or self._alive(index)):
                count += value
                workers += 1
        return Total(count, workers)

    def _alive(self, index: int) -> bool:
        """Whether a live process holds slot ``index``'s lock (a shared lock is refused then)."""
        fd = self._lock_file(index)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False

    def _lock_file(self, index: int) -> int:
        # Opened once and kept: a lock belongs to an open file, and checking must not cost an open.
        if index not in self._lock_files:
            self._lock_files[index] = os.open(f"{self._lock_path}{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        return self._lock_files[index]
