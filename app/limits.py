"""Limits enforced before a request reaches its route: body size and requests in flight."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import UNAUTHORIZED, key_accepted
from app.budget import MemoryBudget, MemoryReturn
from app.errors import PROBLEM_MEDIA_TYPE, ProblemError, problem_body, problem_response
from app.observability import request_id_of
from app.shared_count import SharedCount

log = logging.getLogger(__name__)

LARGE_BODY = 1024 * 1024  # bodies from this size on are followed by giving memory back
SMALL_BODY = 256 * 1024  # bodies up to this size never wait for room (their count bounds them)
DRAIN_S = 5.0  # how long a refused body may take to be read and dropped
LATE_RETURN_S = 2.0  # large bodies stopped this long: memory is given back once more


class DeclaredLengthLimit:
    """Rejects a body whose declared Content-Length is over the limit before anything reads it.

    For the routes outside the in-flight limit's prefix: that limit reads and bounds the denoise
    routes' bodies itself, chunked ones included, and answers their declared lengths the same way.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = _declared_length(scope)
            if declared is not None and declared > self.max_bytes:
                response = problem_response(
                    413,
                    "content_too_large",
                    _too_large(declared, self.max_bytes),
                    {"Connection": "close"},  # the body is never read, so the connection cannot be reused
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class InFlightLimit:
    """At most ``limit`` denoise requests in progress; beyond that, 503 with Retry-After at once.

    A request counts once its body is in: the body is read here first, within ``body_timeout_s``
    (else 408), so that an upload that stalls holds no slot, and a refusal is sent only once
    nothing is left unread (a server that closes with body bytes unread makes the kernel reset
    the connection, and the client never sees its 503). At most ``max_receiving`` bodies are read
    at once per worker; past that the request is refused at once.

    Bounds memory and latency under overload, counted across workers (``shared``), each keeping to
    its share once the service is full; rejections are pre-rendered and close the connection
    because they must cost far less than service. The measurements behind each choice:
    docs/performance.md, "Overload".
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        shared: SharedCount | None = None,
        on_shed: Callable[[], None] = lambda: None,
        prefix: str = "/denoise",
        report_every: float = 10.0,
        full_for: float = 1.0,
        max_body_bytes: int = 10 * 1024 * 1024,
        body_timeout_s: float = 30.0,
        max_receiving: int = 128,
        max_body_memory: int = 64 * 1024 * 1024,
        memory_wait_s: float = 5.0,
        api_key: str | None = None,
    ) -> None:
        self.app = app
        # The bytes of bodies this worker holds (received, or in requests not done), reserved in full
        # before a body is read: partial reservations deadlocked (each of 64 bodies held part of the
        # room, none could finish). Small bodies are not counted: they never wait.
        self.bodies = MemoryBudget(max_body_memory, memory_wait_s, what="its body", code="overloaded")
        self.api_key = api_key
        self.limit = limit
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.max_receiving = max_receiving
        self.receiving = 0  # bodies being read now, in this worker
        self.shared = shared
        self.on_shed = on_shed
        self.prefix = prefix
        self.report_every = report_every
        self.full_for = full_for
        self.in_flight = 0  # only touched on the event loop: no lock needed
        self._full_at = -full_for
        self._shed_since_report = 0
        self._last_report = time.monotonic()
        self._memory_return = MemoryReturn(LATE_RETURN_S)
        # Every rejection has the same cause, so the answer is always the same document.
        body = problem_body(503, "overloaded", f"the service is full: the limit is {limit} requests in progress")
        self._body = json.dumps(body, separators=(",", ":")).encode()
        self._headers = [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(self._body)).encode()),
            (b"retry-after", b"1"),
            (b"connection", b"close"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if self.api_key is not None and not self._authorized(scope):
            # Before any of the body is used: a client without the key costs no upload. Its body is
            # read and dropped (bounded) so that the 401 is not lost to a connection reset.
            await self._drain(receive)
            await _answer(scope, send, 401, "unauthorized", UNAUTHORIZED, [(b"www-authenticate", b"Bearer")])
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _answer(scope, send, 413, "content_too_large", _too_large(declared, self.max_body_bytes))
            return  # not drained: curl waits for this answer before sending (Expect: 100-continue)
        if self.receiving >= self.max_receiving:
            await self._drain(receive)
            await self._refuse(scope, send)
            return
        room = self.max_body_bytes if declared is None else declared  # a chunked body may take it all
        try:
            async with self.bodies.hold(room) if room > SMALL_BODY else contextlib.nullcontext():
                await self._receive_and_admit(scope, receive, send)
        except ProblemError as refused:  # no room for its body within MEMORY_WAIT_S
            await self._drain(receive)
            await _answer(scope, send, 503, refused.code, refused.detail, [(b"retry-after", b"1")])
            self._shed()

    async def _receive_and_admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.receiving += 1
        try:
            body = await self._read_body(scope, receive, send)
        finally:
            self.receiving -= 1
        if body is None:  # answered already (408, 413), or the client is gone
            return
        large = len(body) >= LARGE_BODY
        try:
            await self._admit(scope, body, receive, send)
        finally:
            if large:
                # Its chunks and copies are freed by now, but malloc keeps such memory for reuse:
                # after a burst of 4 MP uploads, workers stayed a third larger.
                del body
                self._memory_return.now_and_later()

    async def _drain(self, receive: Receive) -> None:
        """Read and drop what is left of the body (up to twice the size limit, for 5 s at most), so
        that the answer about to be sent is not lost to a connection reset."""
        read = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_S):
                while read <= 2 * self.max_body_bytes:
                    message = await receive()
                    read += len(message.get("body", b""))
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        return

    async def _admit(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        """Serve a request whose body is in, counted in flight, or refuse it if the service is full."""
        if self._over_limit():
            await self._refuse(scope, send)
            return
        receive = _replay(body, receive)
        self._count(+1)
        counted = True

        async def send_then_uncount(message: Message) -> None:
            # The request leaves the count as its last bytes go out, not after: a client's next
            # request can arrive before the app returns, and would find its own previous one still
            # counted (with every client on one worker after a crash: bench.crash, docs/operations.md).
            nonlocal counted
            if counted and message["type"] == "http.response.body" and not message.get("more_body", False):
                counted = False
                self._count(-1)
            await send(message)

        try:
            await self.app(scope, receive, send_then_uncount)
        finally:
            if counted:
                self._count(-1)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        headers = [*self._headers, (b"x-request-id", request_id_of(scope).encode())]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": self._body})
        self._shed()

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body; None once a 408 or 413 is answered, or the client went away."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:  # a chunked body, or more than it declared
                        if message.get("more_body", False):
                            await self._drain(receive)
                        detail = f"the request body is over the limit of {self.max_body_bytes:,} bytes"
                        await _answer(scope, send, 413, "content_too_large", detail)
                        return None
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        except TimeoutError:
            await _answer(
                scope,
                send,
                408,
                "request_timeout",
                f"the request body did not arrive within {self.body_timeout_s:g} s ({size:,} bytes came)",
            )
            return None

    def _authorized(self, scope: Scope) -> bool:
        assert self.api_key is not None
        headers = {name: value for name, value in scope["headers"] if name in (b"x-api-key", b"authorization")}
        x_api_key, authorization = headers.get(b"x-api-key"), headers.get(b"authorization")
        return key_accepted(
            self.api_key,
            None if x_api_key is None else x_api_key.decode("latin-1"),
            None if authorization is None else authorization.decode("latin-1"),
        )

    def _over_limit(self) -> bool:
        if not self.shared:
            return self.in_flight >= self.limit
        total, workers = self.shared.total()
        now = time.monotonic()
        if total >= self.limit:
            self._full_at = now
            return True
        share = -(-self.limit // max(workers, 1))  # rounded up
        return self.in_flight >= share and now - self._full_at < self.full_for

    def _count(self, change: int) -> None:
        self.in_flight += change
        if self.shared:
            self.shared.set(self.in_flight)

    def _shed(self) -> None:
        self.on_shed()
        self._shed_since_report += 1
        now = time.monotonic()
        if now - self._last_report >= self.report_every:
            log.warning(
                "overloaded: shed %d requests in %.0f s",
                self._shed_since_report,
                now - self._last_report,
                extra={"fields": {"shed": self._shed_since_report, "limit": self.limit}},
            )
            self._shed_since_report, self._last_report = 0, now


def _too_large(size: int, limit: int) -> str:
    return f"the request body is {size:,} bytes, over the limit of {limit:,}"


def _declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, when it declares a valid one."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app the body already read, then whatever the client sends next."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()  # after the body: the disconnect, when it comes
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _answer(
    scope: Scope, send: Send, status: int, code: str, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A problem document, closing the connection (what is left of the body is not read after it)."""
    body = json.dumps(problem_body(status, code, detail), separators=(",", ":")).encode()
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"x-request-id", request_id_of(scope).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
