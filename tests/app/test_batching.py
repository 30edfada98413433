"""app/batching.py with a fake model: batches form under load, answers never mix, errors reach everyone."""

from __future__ import annotations

import asyncio
import os
import threading

import numpy as np
import pytest

from app import batching
from app.batching import MicroBatcher, Overloaded, Stopped
from app.engines import Batch
from app.inference import Inference


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _images(value: float, n: int = 1) -> Batch:
    return np.full((n, 28, 28, 1), value, dtype=np.float32)


@pytest.mark.anyio
async def test_concurrent_requests_share_calls_and_get_their_own_answers() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def model(batch: Batch) -> Inference:
        gate.wait(5)  # hold the first call so that the others queue up behind it
        return Inference(batch * 2, batch[:, 0, 0, 0])

    batcher = MicroBatcher(model, max_batch=64, max_queue_images=100, on_batch=sizes.append)
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(_images(0.0)))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit(_images(i / 10, n=1 + i % 3))) for i in range(1, 8)]
        await asyncio.sleep(0.05)
        gate.set()
        answers = await asyncio.gather(first, *rest)
    finally:
        batcher.stop()
    assert sizes[0] == 1
    assert len(sizes) == 2  # the seven waiting requests went in one call
    for i, answer in enumerate(answers):
        assert answer.scores is not None
        np.testing.assert_allclose(answer.denoised, 2 * i / 10)
        np.testing.assert_allclose(answer.scores, i / 10)


@pytest.mark.anyio
async def test_a_request_the_loop_submits_as_the_model_frees_up_joins_the_next_call() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def model(batch: Batch) -> Inference:
        gate.wait(5)
        return Inference(batch, None)

    batcher = MicroBatcher(model, max_batch=64, max_queue_images=100, on_batch=sizes.append)
    batcher.start()
    try:
        # The call the gate holds: a batch, so the service counts as under load.
        running = asyncio.ensure_future(batcher.submit(_images(0.0, n=2)))
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(batcher.submit(_images(0.1)))
        await asyncio.sleep(0.05)
        gate.set()  # the thread is free at once; the next request reaches the queue a loop turn later
        arriving = asyncio.ensure_future(batcher.submit(_images(0.2)))
        await asyncio.gather(running, queued, arriving)
    finally:
        batcher.stop()
    assert sizes == [2, 2]


@pytest.mark.anyio
async def test_a_full_queue_is_overloaded() -> None:
    gate = threading.Event()

    def model(batch: Batch) -> Inference:
        gate.wait(5)
        return Inference(batch, None)

    batcher = MicroBatcher(model, max_batch=4, max_queue_images=3)
    batcher.start()
    try:
        running = asyncio.ensure_future(batcher.submit(_images(0.0)))  # the call the gate holds
        await asyncio.sleep(0.05)
        waiting = [running, *(asyncio.ensure_future(batcher.submit(_images(0.0))) for _ in range(3))]
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded, match="limit is 3"):
            await batcher.submit(_images(0.0))
        gate.set()
        await asyncio.gather(*waiting)
    finally:
        batcher.stop()


@pytest.mark.anyio
async def test_a_model_that_returns_the_wrong_count_fails_every_request_clearly() -> None:
    def broken(batch: Batch) -> Inference:
        return Inference(batch[:1], None)

    batcher = MicroBatcher(broken, max_batch=8, max_queue_images=8)
    batcher.start()
    try:
        with pytest.raises(RuntimeError, match="returned 1 images for a batch of 3"):
            await batcher.submit(_images(0.0, n=3))
    finally:
        batcher.stop()


@pytest.mark.anyio
async def test_a_stopped_batcher_answers_at_once() -> None:
    batcher = MicroBatcher(lambda batch: Inference(batch, None), max_batch=8, max_queue_images=8)
    batcher.start()
    assert batcher.alive()
    batcher.stop()
    assert not batcher.alive()
    with pytest.raises(Stopped):
        await asyncio.wait_for(batcher.submit(_images(0.5)), 1.0)  # not left waiting for its timeout


class _Fatal(BaseException):
    """Not an Exception: ends the inference thread, as an interpreter-level error would."""


@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread's end, on purpose
async def test_a_batcher_whose_thread_ends_tells_everyone_and_is_no_longer_alive() -> None:
    def model(batch: Batch) -> Inference:
        raise _Fatal

    batcher = MicroBatcher(model, max_batch=8, max_queue_images=8)
    batcher.start()
    with pytest.raises(Stopped):
        await asyncio.wait_for(batcher.submit(_images(0.5)), 1.0)
    for _ in range(100):  # the thread ends just after it answered
        if not batcher.alive():
            break
        await asyncio.sleep(0.01)
    assert not batcher.alive()  # so the service is not ready (Service.ready)
    with pytest.raises(Stopped):
        await asyncio.wait_for(batcher.submit(_images(0.5)), 1.0)


@pytest.mark.anyio
async def test_the_cap_on_images_per_call_holds() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def model(batch: Batch) -> Inference:
        gate.wait(5)  # hold the first call: the others queue behind it
        return Inference(batch, None)

    batcher = MicroBatcher(model, max_batch=8, max_queue_images=200, on_batch=sizes.append)
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(_images(0.0)))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit(_images(0.5, n))) for n in (3, 71, 2, 6)]
        await asyncio.sleep(0.05)
        gate.set()
        answers = await asyncio.gather(first, *rest)
    finally:
        batcher.stop()
    assert max(sizes) <= 8, sizes  # the review saw [1, 71] with a cap of 8
    assert sum(sizes) == 1 + 3 + 71 + 2 + 6
    assert [len(a) for a in answers] == [1, 3, 71, 2, 6]


@pytest.mark.anyio
async def test_work_whose_caller_is_gone_is_skipped() -> None:
    calls: list[int] = []
    gate = threading.Event()

    def model(batch: Batch) -> Inference:
        gate.wait(5)
        calls.append(len(batch))
        return Inference(batch, None)

    batcher = MicroBatcher(model, max_batch=64, max_queue_images=100)
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(_images(0.0)))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(batcher.submit(_images(0.5, 5)))
        await asyncio.sleep(0.01)
        gone.cancel()  # its client timed out or went away while it queued
        await asyncio.sleep(0.01)
        gate.set()
        await first
    finally:
        batcher.stop()
    assert calls == [1]  # the cancelled request's 5 images never reached the model


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="scheduling policies are Linux's")
@pytest.mark.anyio
async def test_a_batch_policy_thread_runs_as_normal_while_hurried() -> None:
    policies: list[int] = []

    def model(batch: Batch) -> Inference:
        policies.append(os.sched_getscheduler(0))
        return Inference(batch, None)

    batcher = MicroBatcher(model, max_batch=8, max_queue_images=8, cpu_policy="batch", hurry_s=0.3)
    batcher.start()
    try:
        await batcher.submit(_images(0.0))
        batcher.hurry()  # as the in-flight limit does when it turns a request away
        # The policy changes before the thread waits for the next call: it shows from the second
        # call after hurry() at the latest (the first, if the thread had not yet waited again).
        for _ in range(2):
            await batcher.submit(_images(0.0))
        await asyncio.sleep(0.3)
        for _ in range(2):
            await batcher.submit(_images(0.0))
    finally:
        batcher.stop()
    assert policies[0] == os.SCHED_BATCH
    assert policies[2:] == [os.SCHED_OTHER, os.SCHED_OTHER, os.SCHED_BATCH]


@pytest.mark.anyio
async def test_only_jobs_smaller_than_a_full_call_wait_for_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    waited_for: list[int] = []
    sizes: list[int] = []

    def catch_up(loop: asyncio.AbstractEventLoop, most_s: float = 0.005) -> None:
        waited_for.append(sizes[-1] if sizes else 0)

    monkeypatch.setattr(batching, "_catch_up", catch_up)
    batcher = MicroBatcher(
        lambda batch: Inference(batch, None), max_batch=64, max_queue_images=64, on_batch=sizes.append
    )
    batcher.start()
    try:
        await batcher.submit(_images(0.0, n=2))  # after no call: no wait
        await batcher.submit(_images(0.0, n=1))  # after a batch of 2: waits
        await batcher.submit(_images(0.0, n=3))  # after a lone image: no wait
        await batcher.submit(_images(0.0, n=batching.FULL_ENOUGH))  # fills a call: no wait
        await batcher.submit(_images(0.0, n=batching.FULL_ENOUGH - 1))  # after a batch, and smaller: waits
    finally:
        batcher.stop()
    assert sizes == [2, 1, 3, batching.FULL_ENOUGH, batching.FULL_ENOUGH - 1]
    assert waited_for == [2, batching.FULL_ENOUGH]  # the size of the call each wait came after


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="scheduling policies are Linux's")
@pytest.mark.anyio
async def test_a_refused_policy_is_tried_once(monkeypatch: pytest.MonkeyPatch) -> None:
    tries: list[int] = []

    def refuse(pid: int, policy: int, param: os.sched_param) -> None:
        tries.append(policy)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    batcher = MicroBatcher(
        lambda b: Inference(b, None), max_batch=8, max_queue_images=8, cpu_policy="batch", hurry_s=0.05
    )
    batcher.start()
    try:
        for _ in range(3):  # each round would change the policy twice, were it allowed
            batcher.hurry()
            await batcher.submit(_images(0.0))
            await asyncio.sleep(0.1)
            await batcher.submit(_images(0.0))
    finally:
        batcher.stop()
    assert tries == [os.SCHED_BATCH]
