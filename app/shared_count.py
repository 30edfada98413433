"""A count that every worker process of the service adds to: requests in flight, service-wide."""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from pathlib import Path

_SLOT = struct.Struct("qq")  # (owner pid, this worker's count)


class SharedCount:
    """One slot per worker in a small shared file; the total is the sum of the slots.

    Each worker writes only its own slot, so updates need no lock; a reader may see another
    worker's count a moment late, which lets the total overshoot a limit by a request or two.
    A worker that dies leaves its count behind until the worker that replaces it takes the slot
    over: claiming a slot (under a file lock) reuses any whose owner is gone.
    """

    def __init__(self, directory: Path, name: str = "in_flight", slots: int = 64) -> None:
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
        self._slots = struct.Struct(f"{2 * slots}q")

    def _claim(self, slots: int) -> int:
        for index in range(slots):
            offset = index * _SLOT.size
            owner, _ = _SLOT.unpack_from(self._map, offset)
            if owner == 0 or not _alive(owner):
                _SLOT.pack_into(self._map, offset, os.getpid(), 0)
                return offset
        raise RuntimeError(f"all {slots} worker slots are taken by live processes")

    def set(self, value: int) -> None:
        """This worker's part of the count."""
        _SLOT.pack_into(self._map, self._offset, os.getpid(), value)

    def total(self) -> tuple[int, int]:
        """(the count, all workers together; the number of workers holding a slot)."""
        values = self._slots.unpack_from(self._map)
        return sum(values[1::2]), sum(1 for pid in values[::2] if pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
