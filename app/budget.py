"""A worker's memory budgets (request bodies, decoding): large uploads wait their turn, in order, or get 503."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

import anyio.to_thread

from app.errors import ProblemError


class MemoryBudget:
    """At most ``capacity`` bytes of ``what`` at once in this worker, admitted first come first served.

    An upload whose cost does not fit waits for the uploads ahead of it, up to ``max_wait_s``, then
    gets 503 with Retry-After; one that costs more than the whole budget waits until it can run
    alone (the largest legal upload must still be served). Only touched on the event loop.
    """

    def __init__(self, capacity: int, max_wait_s: float, what: str = "decoding", code: str = "decoding_busy") -> None:
        self.capacity = capacity
        self.max_wait_s = max_wait_s
        self.what = what  # named in the refusal: "decoding", "request bodies"
        self.code = code
        self.held = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @asynccontextmanager
    async def hold(self, cost: int) -> AsyncIterator[None]:
        """Hold ``cost`` bytes of the budget for the duration of the block."""
        cost = min(cost, self.capacity)
        if self._waiting or self.held + cost > self.capacity:
            await self._wait(cost)
        else:
            self.held += cost
        try:
            yield
        finally:
            self.held -= cost
            self._admit()

    async def _wait(self, cost: int) -> None:
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append((cost, turn))
        try:
            async with asyncio.timeout(self.max_wait_s):
                await turn
        except BaseException as exc:  # the wait ran out, or the request was cancelled
            if turn.done() and not turn.cancelled():
                if isinstance(exc, TimeoutError):
                    return  # admitted just as the wait ran out: the bytes are held, go on
                self.held -= cost  # admitted, then cancelled: give the bytes back
            else:
                turn.cancel()  # skipped by _admit from now on
            self._admit()  # whoever queued behind may fit now
            if isinstance(exc, TimeoutError):
                raise ProblemError(
                    503,
                    self.code,
                    f"the upload needs {cost / 2**20:,.1f} MiB for {self.what} and this worker's budget for it "
                    f"({self.capacity / 2**20:,.0f} MiB) stayed full for {self.max_wait_s:g} s",
                    {"Retry-After": "1"},
                ) from None
            raise

    def _admit(self) -> None:
        """Let waiting uploads in, in order, while the head of the queue fits."""
        while self._waiting:
            cost, turn = self._waiting[0]
            if turn.cancelled():
                self._waiting.popleft()
                continue
            if self.held + cost > self.capacity:
                return
            self._waiting.popleft()
            self.held += cost
            turn.set_result(None)


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
LARGE_ALLOCATION = 256 * 1024


def map_large_allocations() -> None:
    """Serve every allocation of ``LARGE_ALLOCATION`` or more with its own mapping, returned as freed.

    glibc does that from 128 KiB, but raises the threshold after each such block is freed (up to
    32 MiB), so that request bodies and image buffers of a few MiB came from the heap and stayed
    there: a burst of 4 MP uploads left a worker 31 % larger. Setting the threshold turns that off.
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(_M_MMAP_THRESHOLD, LARGE_ALLOCATION)


def return_memory() -> None:
    """Give freed heap memory back to the system (glibc's malloc_trim; elsewhere nothing).

    A large decode's buffers come from malloc in the thread that decodes, and glibc keeps what they
    leave free in that thread's arena: without this, a worker stayed at its burst's peak.
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


class MemoryReturn:
    """Gives freed heap memory back now, and once more when ``quiet_s`` pass with no other call.

    What is freed after a request's own return (by the requests still finishing around it, by
    connections closing) stayed in malloc's heap until the next large request: after a burst of
    the largest bodies, a 1-worker replica held about two bodies' worth more (89 to 108 MiB,
    docs/operations.md). Once per burst, not once per request: each call moves the late return
    later. Only touched on the event loop.
    """

    def __init__(self, quiet_s: float) -> None:
        self.quiet_s = quiet_s
        self._later: asyncio.TimerHandle | None = None

    def now_and_later(self) -> None:
        return_memory()
        if self._later is not None:
            self._later.cancel()
        self._later = asyncio.get_running_loop().call_later(self.quiet_s, return_memory)


def limit_worker_threads(threads: int) -> None:
    """Run blocking work (large decodes and answers, file reads) on at most ``threads`` threads.

    Each thread keeps some of what its last large image took (its stack, its malloc arena's top):
    with anyio's default of 40, a burst of 64 uploads of a 4 MP PNG started 11 threads and left a
    worker 18 MB (10 %) larger for good; with 4, 2 MB smaller. Two cores gain nothing from more.
    Call on the event loop (the limiter is the loop's).
    """
    anyio.to_thread.current_default_thread_limiter().total_tokens = threads
