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
    worker's count a moment late, which lets the total overshoot a limit by a request or two.
    Only live workers that serve are counted: a worker killed with requests in flight, or its
    replacement while it loads the model, would otherwise hold the survivors to a smaller share
    (1,208 to 1,310 answers 503 after one kill at 32 clients; docs/operations.md). Claiming a slot
    (under a file lock) reuses any whose owner is gone.
    """

    def __init__(self, directory: Path, name: str = "in_flight", slots: int = 64, serving: bool = True) -> None:
        self._serving = int(serving)
        size = slots * _SLOT.size
        fd = os.open(directory / f"{name}.slots", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
            self._offset = self._claim(slots)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)  # the mapping stays valid
        self._slots = struct.Struct(f"{3 * slots}q")

    def _claim(self, slots: int) -> int:
        for index in range(slots):
            offset = index * _SLOT.size
            owner, _, _ = _SLOT.unpack_from(self._map, offset)
            if owner == 0 or not _alive(owner):
                _SLOT.pack_into(self._map, offset, os.getpid(), 0, self._serving)
                return offset
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
        values = self._slots.unpack_from(self._map)
        count = workers = 0
        for pid, value, serving in zip(values[::3], values[1::3], values[2::3], strict=True):
            if pid and serving and (pid == os.getpid() or _alive(pid)):
                count += value
                workers += 1
        return Total(count, workers)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
