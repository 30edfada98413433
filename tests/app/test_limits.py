"""app/limits.py on its own: the declared-length guard and the in-flight limit in one process."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.types import Message, Receive, Scope, Send

from app.limits import LARGE_BODY, DeclaredLengthLimit, InFlightLimit


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
    rejected = await _call(limit, headers=[(b"x-request-id", b"trace-1")])
    assert rejected["status"] == 503
    assert rejected["headers"][b"retry-after"] == b"1"
    assert rejected["headers"][b"x-request-id"] == b"trace-1"  # a refusal carries the request id too
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


async def _call_with(
    app: object, chunks: list[bytes], stall: bool = False, declared: bool = False
) -> tuple[Message, list[int]]:
    """``_call`` with a body sent in ``chunks`` (then, with ``stall``, nothing more, ever); with
    ``declared``, its Content-Length in the headers."""
    sent: list[Message] = []
    taken = [0]

    async def receive() -> Message:
        if taken[0] < len(chunks):
            taken[0] += 1
            more = stall or taken[0] < len(chunks)
            return {"type": "http.request", "body": chunks[taken[0] - 1], "more_body": more}
        await asyncio.Event().wait()  # a stalled client, or one that sent everything: nothing comes
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [(b"content-length", str(sum(map(len, chunks))).encode())] if declared else []
    await app({"type": "http", "path": "/denoise", "headers": headers}, receive, send)  # type: ignore[operator]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return {"status": start["status"], "headers": dict(start["headers"]), "body": body}, taken


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.anyio
async def test_the_app_gets_the_body_that_was_sent_in_chunks() -> None:
    answer, taken = await _call_with(InFlightLimit(_echo, limit=1), [b"ab", b"cd", b"e"])
    assert (answer["status"], answer["body"], taken) == (200, b"abcde", [3])


@pytest.mark.anyio
async def test_a_body_that_stalls_gets_408_and_never_holds_a_slot() -> None:
    limit = InFlightLimit(_ok, limit=1, body_timeout_s=0.05)
    stalled = asyncio.ensure_future(_call_with(limit, [b"--boundary\r\n"], stall=True))
    await asyncio.sleep(0.01)
    assert limit.in_flight == 0  # receiving, not in flight
    assert (await _call(limit))["status"] == 200  # the slot is free for a request whose body is in
    answer, _ = await stalled
    assert answer["status"] == 408
    assert json.loads(answer["body"])["code"] == "request_timeout"
    assert answer["headers"][b"connection"] == b"close"


@pytest.mark.anyio
async def test_a_refused_request_has_its_whole_body_read_first() -> None:
    release = asyncio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await _ok(scope, receive, send)

    limit = InFlightLimit(slow, limit=1)
    held = asyncio.ensure_future(_call(limit))
    await asyncio.sleep(0.01)
    answer, taken = await _call_with(limit, [b"x" * 1000] * 5)
    assert answer["status"] == 503
    assert taken == [5]  # nothing left unread: the 503 is not lost to a connection reset
    release.set()
    assert (await held)["status"] == 200


@pytest.mark.anyio
async def test_a_body_over_the_limit_as_it_streams_in_gets_413() -> None:
    answer, _ = await _call_with(InFlightLimit(_echo, limit=1, max_body_bytes=10), [b"x" * 8, b"x" * 8])
    assert answer["status"] == 413
    assert json.loads(answer["body"])["code"] == "content_too_large"


@pytest.mark.anyio
async def test_past_the_receiving_bound_a_request_is_refused_at_once() -> None:
    limit = InFlightLimit(_ok, limit=8, max_receiving=1, body_timeout_s=1.0)
    stalled = asyncio.ensure_future(_call_with(limit, [b"x"], stall=True))
    await asyncio.sleep(0.01)
    assert (await _call(limit))["status"] == 503
    stalled.cancel()


@pytest.mark.anyio
async def test_without_the_api_key_the_body_is_dropped_unused_and_the_401_arrives() -> None:
    seen: list[bytes] = []

    async def record(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((await receive()).get("body", b""))
        await _ok(scope, receive, send)

    limit = InFlightLimit(record, limit=1, api_key="k")
    refused, taken = await _call_with(limit, [b"x" * 10_000] * 100)
    assert refused["status"] == 401
    assert refused["headers"][b"www-authenticate"] == b"Bearer"
    assert taken == [100]  # read and dropped, so that the 401 is not lost to a connection reset
    assert seen == []  # the app never ran
    answer = await _call(limit, headers=[(b"x-api-key", b"k")])
    assert answer["status"] == 200


@pytest.mark.anyio
async def test_a_body_waits_for_room_before_it_is_read_and_takes_it_whole() -> None:
    release = asyncio.Event()

    async def slow_echo(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await _echo(scope, receive, send)

    kib = 1024
    limit = InFlightLimit(slow_echo, limit=8, max_body_memory=500 * kib, memory_wait_s=5)
    first = asyncio.ensure_future(_call_with(limit, [b"a" * 300 * kib], declared=True))
    await asyncio.sleep(0.01)
    assert limit.bodies.held == 300 * kib
    second = asyncio.ensure_future(_call_with(limit, [b"b" * 150 * kib] * 2, declared=True))
    await asyncio.sleep(0.01)
    assert limit.bodies.held == 300 * kib  # the second (300 KiB) does not fit: nothing of it is read
    small_call = asyncio.ensure_future(_call_with(limit, [b"c" * 1000], declared=True))
    await asyncio.sleep(0.01)
    assert limit.in_flight == 2  # the first and the small one, which never waits for room
    release.set()  # the first is done, so the second fits
    (one, _), (two, taken), (small, _) = await asyncio.gather(first, second, small_call)
    assert (one["status"], len(one["body"])) == (200, 300 * kib)
    assert (two["status"], len(two["body"]), taken) == (200, 300 * kib, [2])
    assert small["status"] == 200
    assert limit.bodies.held == 0


@pytest.mark.anyio
async def test_a_body_that_finds_no_room_in_time_gets_503_after_it_is_drained() -> None:
    release = asyncio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await _ok(scope, receive, send)

    kib = 1024
    limit = InFlightLimit(slow, limit=8, max_body_memory=500 * kib, memory_wait_s=0.05)
    held = asyncio.ensure_future(_call_with(limit, [b"x" * 900 * kib], declared=True))  # alone: it fits
    await asyncio.sleep(0.01)
    refused, taken = await _call_with(limit, [b"y" * 100 * kib] * 4, declared=True)
    assert refused["status"] == 503
    assert json.loads(refused["body"])["code"] == "overloaded"
    assert refused["headers"][b"retry-after"] == b"1"
    assert taken == [4]  # all of it read and dropped first: the 503 reaches the client
    release.set()
    assert (await held)[0]["status"] == 200
    assert limit.bodies.held == 0


@pytest.mark.anyio
async def test_a_declared_length_over_the_limit_is_refused_before_any_of_it_is_read() -> None:
    limit = InFlightLimit(_echo, limit=1, max_body_bytes=1000)
    refused, taken = await _call_with(limit, [b"z" * 600] * 2, declared=True)
    assert refused["status"] == 413
    assert "1,200 bytes, over the limit of 1,000" in json.loads(refused["body"])["detail"]
    assert taken == [0]


@pytest.mark.anyio
async def test_once_large_bodies_stop_memory_is_given_back_once_more(monkeypatch: pytest.MonkeyPatch) -> None:
    returns: list[float] = []
    monkeypatch.setattr("app.budget.return_memory", lambda: returns.append(asyncio.get_running_loop().time()))
    monkeypatch.setattr("app.limits.LATE_RETURN_S", 0.05)
    limit = InFlightLimit(_echo, limit=4)
    answers = await asyncio.gather(*[_call_with(limit, [b"x" * LARGE_BODY]) for _ in range(3)])
    assert [answer["status"] for answer, _ in answers] == [200, 200, 200]
    assert len(returns) == 3  # each large request's own, as it ends
    await asyncio.sleep(0.2)
    assert len(returns) == 4  # then one for the burst, after the last
    await _call_with(limit, [b"small"])
    await asyncio.sleep(0.2)
    assert len(returns) == 4  # small bodies give nothing back
