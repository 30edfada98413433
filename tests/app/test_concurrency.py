"""Concurrent requests: batching never mixes results; overload answers 503 at once."""

from __future__ import annotations

import asyncio
import threading

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tests.conftest import started_async
from tests.images import decode_png, encode, noisy

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def post(client: httpx.AsyncClient, data: bytes) -> httpx.Response:
    return await client.post("/denoise", files={"file": ("d.png", data, "image/png")})


async def _batches(client: httpx.AsyncClient) -> dict[str, float]:
    metrics = (await client.get("/metrics")).text
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in metrics.splitlines()
        if line.startswith("inference_batch_size_")
    }


async def test_concurrent_requests_each_get_their_own_answer(digits: npt.NDArray[np.uint8]) -> None:
    uploads = [encode(Image.fromarray(noisy(d, seed=i)), "PNG") for i, d in enumerate(digits[:96])]
    async with started_async(max_concurrent_requests=len(uploads)) as client:
        alone = [await post(client, data) for data in uploads]
        before = await _batches(client)
        together = await asyncio.gather(*(post(client, data) for data in uploads))
        after = await _batches(client)
    # The concurrent requests really were batched: far fewer model calls than images.
    calls = after["inference_batch_size_count"] - before["inference_batch_size_count"]
    images = after["inference_batch_size_sum"] - before["inference_batch_size_sum"]
    assert images == len(uploads)
    assert calls <= len(uploads) / 2, f"{calls} model calls for {len(uploads)} concurrent images"
    for lone, shared in zip(alone, together, strict=True):
        assert shared.status_code == 200
        expected, got = np.asarray(decode_png(lone.content), int), np.asarray(decode_png(shared.content), int)
        # Batch size may change float rounding inside the model, never more than one grey level.
        assert np.abs(expected - got).max() <= 1
        error_alone = float(lone.headers["x-reconstruction-error"])
        assert float(shared.headers["x-reconstruction-error"]) == pytest.approx(error_alone, rel=1e-3)
    # And the answers differ between requests, so a swap could not go unnoticed.
    assert len({r.content for r in together}) == len(uploads)


async def test_requests_beyond_the_in_flight_limit_get_503_at_once(digits: npt.NDArray[np.uint8]) -> None:
    data = encode(Image.fromarray(noisy(digits[0])), "PNG")
    async with started_async(max_concurrent_requests=2) as client:
        responses = await asyncio.gather(*(post(client, data) for _ in range(40)))
        statuses = [r.status_code for r in responses]
        assert set(statuses) == {200, 503}
        rejected = next(r for r in responses if r.status_code == 503)
        assert rejected.json()["code"] == "overloaded"
        assert rejected.headers["retry-after"] == "1"
        assert rejected.headers["connection"] == "close"  # a shed client does not keep a connection
        assert "the limit is 2" in rejected.json()["detail"]
        assert rejected.headers["content-type"] == "application/problem+json"
        assert int(rejected.headers["content-length"]) == len(rejected.content)
        shed = statuses.count(503)
        assert f"http_requests_shed_total {float(shed)}" in (await client.get("/metrics")).text
        assert (await client.get("/readyz")).status_code == 200
        assert (await post(client, data)).status_code == 200  # and it recovers


async def test_a_full_inference_queue_gets_503(digits: npt.NDArray[np.uint8]) -> None:
    data = encode(Image.fromarray(noisy(digits[0])), "PNG")
    async with started_async(max_queue_images=2) as client:
        responses = await asyncio.gather(*(post(client, data) for _ in range(40)))
        overloaded = [r for r in responses if r.status_code == 503]
        assert overloaded, "40 simultaneous images never filled a queue of 2"
        assert all(r.json()["code"] == "overloaded" for r in overloaded)
        assert all(r.headers["retry-after"] == "1" for r in overloaded)
        assert all(r.status_code in (200, 503) for r in responses)
        assert (await post(client, data)).status_code == 200


async def test_large_uploads_beyond_the_decoding_budget_wait_their_turn_or_get_503() -> None:
    # A 3000x3000 RGBA PNG is charged about 70 MiB; a budget of 1 MiB lets one decode at a time.
    page = np.zeros((3000, 3000), np.uint8)
    page[1000:2000, 1400:1600] = 255
    data = encode(Image.merge("RGBA", [Image.fromarray(page)] * 4), "PNG")
    async with started_async(decode_memory_mib=1, memory_wait_s=0.01) as client:
        responses = await asyncio.gather(*(post(client, data) for _ in range(4)))
        busy = [r for r in responses if r.status_code == 503]
        assert 0 < len(busy) < 4
        assert all(r.status_code in (200, 503) for r in responses)
        for refused in busy:
            assert refused.json()["code"] == "decoding_busy"
            assert refused.headers["retry-after"] == "1"
            assert refused.headers["x-request-id"]
        # Waiting long enough, every one of them is served, one after the other.
    async with started_async(decode_memory_mib=1, memory_wait_s=30) as client:
        responses = await asyncio.gather(*(post(client, data) for _ in range(4)))
        assert [r.status_code for r in responses] == [200] * 4


async def test_large_uploads_decode_on_a_bounded_pool_of_threads() -> None:
    # Each thread keeps memory after a large decode (app/budget.py): the pool is bounded.
    page = np.zeros((600, 600), np.uint8)
    page[200:400, 280:320] = 255
    data = encode(Image.fromarray(page), "PNG")
    async with started_async(worker_threads=2) as client:
        before = set(threading.enumerate())
        responses = await asyncio.gather(*(post(client, data) for _ in range(8)))
        assert [r.status_code for r in responses] == [200] * 8
        started = set(threading.enumerate()) - before
        assert 1 <= len(started) <= 2, started


async def test_inference_past_its_deadline_gets_503_timeout_and_the_service_goes_on(
    digits: npt.NDArray[np.uint8],
) -> None:
    data = encode(Image.fromarray(noisy(digits[0])), "PNG")
    async with started_async(request_timeout_s=1e-6) as client:
        late = await post(client, data)
        assert late.status_code == 503
        assert late.json()["code"] == "timeout"
        assert late.headers["retry-after"] == "1"
        assert (await client.get("/readyz")).status_code == 200  # a slow call does not make it unready


async def test_max_inference_batch_splits_a_large_batch_into_calls_of_at_most_that(
    digits: npt.NDArray[np.uint8],
) -> None:
    """Seven images in one /denoise/batch with MAX_INFERENCE_BATCH=3: calls of 3, 3 and 1."""
    files = [("files", (f"{i}.png", encode(Image.fromarray(noisy(digits[i])), "PNG"), "image/png")) for i in range(7)]
    async with started_async(max_inference_batch=3) as client:
        answer = await client.post("/denoise/batch", files=files)
        assert answer.status_code == 200, answer.text
        metrics = (await client.get("/metrics")).text
    buckets = {
        line.split('le="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("inference_batch_size_bucket")
    }
    calls = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in metrics.splitlines()
        if line.startswith(("inference_batch_size_count", "inference_batch_size_sum"))
    }
    # The startup example made one call of 1; the upload three calls, none over 3.
    assert calls["inference_batch_size_count"] == 4
    assert calls["inference_batch_size_sum"] == 1 + 7
    assert buckets["+Inf"] == buckets[next(le for le in buckets if le != "+Inf" and float(le) >= 3)]
