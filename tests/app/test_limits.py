"""app/limits.py on its own: the declared-length guard and the in-flight limit in one process."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.types import Message, Receive, Scope, Send

from app.limits import DeclaredLengthLimit, InFlightLimit


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _call(app: object, path: str = "/denoise", headers: list[tuple[bytes, bytes]] | None = None) -> Message:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "headers": headers or []}
    await app(scope, receive, send)  # type: ignore[operator]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return {"status": start["status"], "headers": dict(start["headers"]), "body": body}


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.anyio
async def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    guard = DeclaredLengthLimit(_ok, max_bytes=100)
    refused = await _call(guard, headers=[(b"content-length", b"101")])
    assert refused["status"] == 413
    assert json.loads(refused["body"])["code"] == "content_too_large"
    assert refused["headers"][b"connection"] == b"close"
    assert (await _call(guard, headers=[(b"content-length", b"100")]))["status"] == 200


@pytest.mark.anyio
async def test_the_in_flight_limit_sheds_at_once_and_counts() -> None:
    release = asyncio.Event()
    shed: list[int] = []

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await _ok(scope, receive, send)

    limit = InFlightLimit(slow, limit=2, on_shed=lambda: shed.append(1))
    held = [asyncio.ensure_future(_call(limit)) for _ in range(2)]
    await asyncio.sleep(0.01)
    rejected = await _call(limit)
    assert rejected["status"] == 503
    assert rejected["headers"][b"retry-after"] == b"1"
    assert json.loads(rejected["body"])["code"] == "overloaded"
    assert shed == [1]
    release.set()
    assert [r["status"] for r in await asyncio.gather(*held)] == [200, 200]
    assert limit.in_flight == 0


@pytest.mark.anyio
async def test_other_routes_are_never_limited() -> None:
    limit = InFlightLimit(_ok, limit=0)
    assert (await _call(limit, path="/readyz"))["status"] == 200
    assert (await _call(limit, path="/denoise"))["status"] == 503


@pytest.mark.anyio
async def test_a_request_leaves_the_count_as_its_last_bytes_go_out() -> None:
    answered = asyncio.Event()
    finish = asyncio.Event()
    calls: list[int] = []

    async def lingering(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(1)
        await _ok(scope, receive, send)
        answered.set()
        if len(calls) == 1:
            await finish.wait()  # work after the answer: the client has it and may send the next

    limit = InFlightLimit(lingering, limit=1)
    first = asyncio.ensure_future(_call(limit))
    await answered.wait()
    assert limit.in_flight == 0
    assert (await _call(limit))["status"] == 200  # the client's next request is not shed
    finish.set()
    await first
    assert limit.in_flight == 0
