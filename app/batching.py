"""Dynamic batching: requests that wait at the same time share one model call.

One worker thread owns the model. Under load it first lets the event loop catch up (the requests
the loop has already read reach the queue), then takes whatever has queued (up to
``max_batch`` images), runs one call and hands each request its own slice. Under light load a
request runs alone at once; under heavy load batches grow by themselves, with no timer to tune.

With ``cpu_policy="batch"`` the thread runs as SCHED_BATCH (app/scheduling.py): woken by a request,
it waits for its turn rather than cutting in before the loop has read the others. But while the
service turns requests away, the loop is busy with the rejections, and the requests already
admitted waited behind them: for ``hurry_s`` after each ``hurry()`` it runs as soon as it wakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.engines import Batch
from app.inference import Inference
from app.scheduling import CpuPolicy, set_thread_policy

# From 16 images per call the model costs about the same per image as with more (0.440 ms at 16
# against 0.447 at 8 and 0.51 alone, bf16, docs/micro.md): a job that large needs no company.
FULL_ENOUGH = 16


class Overloaded(Exception):
    """The queue in front of the model is full; the client should retry later."""


class Stopped(Exception):
    """The inference thread is not running: stopped, or ended by an error. Nothing will answer."""


@dataclass
class _Job:
    images: Batch
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Inference] = field(repr=False)


class MicroBatcher:
    def __init__(
        self,
        infer: Callable[[Batch], Inference],
        max_batch: int,
        max_queue_images: int,
        on_batch: Callable[[int], None] = lambda size: None,
        cpu_policy: CpuPolicy = "normal",
        hurry_s: float = 1.0,
    ) -> None:
        self._infer = infer
        self._cpu_policy = cpu_policy
        self._hurry_s = hurry_s
        self._hurry_until = 0.0  # time.monotonic() until which the thread runs as "normal"
        self._running_as: CpuPolicy | None = None
        self._max_batch = max_batch
        self._max_queue_images = max_queue_images
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._queued_images = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        """Whether the inference thread runs: readiness depends on it."""
        return self._thread.is_alive()

    def hurry(self) -> None:
        """Requests are being turned away: the requests admitted come first for ``hurry_s``."""
        self._hurry_until = time.monotonic() + self._hurry_s

    @property
    def hurried(self) -> bool:
        return time.monotonic() < self._hurry_until

    def stop(self) -> None:
        """Finish the queued jobs, then end the worker."""
        self._queue.put(None)
        self._thread.join()

    async def submit(self, images: Batch) -> Inference:
        """Denoise ``images`` (N, 28, 28, 1); raises Overloaded when the queue is full, and Stopped
        at once when the inference thread is not running (nothing would ever answer)."""
        if not self._thread.is_alive():
            raise Stopped("the inference thread is not running")
        n = len(images)
        with self._lock:
            if self._queued_images + n > self._max_queue_images:
                raise Overloaded(
                    f"{self._queued_images} images are waiting for the model, the limit is {self._max_queue_images}"
                )
            self._queued_images += n
        loop = asyncio.get_running_loop()
        job = _Job(images, loop, loop.create_future())
        self._queue.put(job)
        return await job.future

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            # Stopped or ended by an error: whoever still waits is told now, not at their timeout.
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    _deliver(job, _set_exception, Stopped("the inference thread stopped"))

    def _serve(self) -> None:
        last_size = 0
        held: _Job | None = None  # a job that would have taken the last call over ``max_batch``
        while True:
            self._follow_policy()  # for the wake-up to come
            first = held if held is not None else self._queue.get()
            held = None
            if first is None:
                return
            # Under load (the last call was a batch), requests the loop is still parsing would
            # otherwise wait for the next call. Behind a load balancer, where arrivals are spread
            # out, batches were smaller than with clients reaching a replica directly, and the model
            # costs more per image in small batches: the replicas spent 0.43 ms more CPU per request
            # (python -m bench.scale, docs/performance.md). A lone request skips the wait, and so
            # does a job that fills a call by itself (a batch request): waiting would only delay it.
            if last_size > 1 and len(first.images) < FULL_ENOUGH:
                _catch_up(first.loop)
            jobs, size, stop = [first], len(first.images), False
            while size < self._max_batch:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    stop = True
                    break
                if size + len(following.images) > self._max_batch:
                    held = following  # the first of the next call: the cap holds
                    break
                jobs.append(following)
                size += len(following.images)
            self._process(jobs, size)
            last_size = size
            if stop:
                return

    def _follow_policy(self) -> None:
        if self._cpu_policy == "normal":
            return
        wanted: CpuPolicy = "normal" if self.hurried else self._cpu_policy
        if wanted != self._running_as:  # a system call only when it changes
            if not set_thread_policy(wanted):
                self._cpu_policy = "normal"  # refused (logged once): the system's default stays
            self._running_as = wanted

    def _process(self, jobs: list[_Job], size: int) -> None:
        with self._lock:
            self._queued_images -= size
        # A request that timed out or was cancelled meanwhile has nobody waiting: skip its images.
        # (done() read from this thread may be a moment late; that only means a skip is missed.)
        jobs = [job for job in jobs if not job.future.done()]
        if not jobs:
            return
        size = sum(len(job.images) for job in jobs)
        try:
            batch = jobs[0].images if len(jobs) == 1 else np.concatenate([j.images for j in jobs])
            # One job alone can be larger than the cap (a batch request): it runs in several calls.
            parts = [self._call(batch[start : start + self._max_batch]) for start in range(0, size, self._max_batch)]
            output = parts[0] if len(parts) == 1 else Inference.concatenate(parts)
            if len(output) != size:  # a wrong model must not hand requests each other's images
                raise RuntimeError(f"the model returned {len(output)} images for a batch of {size}")
        except BaseException as exc:  # delivered to every waiting request, which answers 500
            for job in jobs:
                _deliver(job, _set_exception, exc if isinstance(exc, Exception) else Stopped(repr(exc)))
            if not isinstance(exc, Exception):
                raise  # the thread ends (and readiness with it); those still queued are told
            return
        start = 0
        for job in jobs:
            end = start + len(job.images)
            _deliver(job, _set_result, output[start:end])
            start = end

    def _call(self, batch: Batch) -> Inference:
        output = self._infer(batch)
        self._on_batch(len(batch))
        return output


def _deliver(job: _Job, setter: Callable[[asyncio.Future[Inference], Any], None], value: Any) -> None:
    """Hand ``value`` to the job's future on its loop; a loop that has closed has nobody waiting."""
    # RuntimeError: "Event loop is closed". The thread must live on for the other loops' jobs.
    with contextlib.suppress(RuntimeError):
        job.loop.call_soon_threadsafe(setter, job.future, value)


def _set_result(future: asyncio.Future[Inference], value: Inference) -> None:
    if not future.done():  # the request may have timed out or been cancelled meanwhile
        future.set_result(value)


def _set_exception(future: asyncio.Future[Inference], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)


def _catch_up(loop: asyncio.AbstractEventLoop, most_s: float = 0.005) -> None:
    """Wait (at most ``most_s``) until ``loop`` has run two turns: what it had ready, then what that
    scheduled. An idle loop answers in tens of microseconds."""
    caught_up = threading.Event()
    try:
        loop.call_soon_threadsafe(lambda: loop.call_soon(caught_up.set))
    except RuntimeError:  # the loop is closed: nothing more will come from it
        return
    caught_up.wait(most_s)
