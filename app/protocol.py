"""uvicorn's httptools protocol, sending each response's head and body in one write.

uvicorn writes a response's status line and headers when the app starts the response, and its
body in a second write: two sends, two TCP segments. If the worker dies between the two (``kill
-9``, the OOM killer), the client, or the load balancer in front, has a 200 head with no body, too
late to retry elsewhere: HAProxy cut one such answer in ``python -m bench.scale`` (``SD--`` in its
log). Holding the writes of one event-loop turn and sending them together at its end closes that
gap (a reply is sent whole, or not at all, and HAProxy retries an empty one) and saves a send per
answer. Holding to the turn's end, not only until the body comes, also matters: the answers of a
batch, completed in one turn, then leave after the loop's work for all of them instead of each
waking its client amid that work (docs/performance.md: identity engine +15 % at 32 clients; a
lone answer waits for its own request's after-work, about 0.06 ms).

Served with ``uvicorn --http app.protocol:HttpProtocol`` (Makefile, Dockerfile, bench, tests).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class TurnWrites:
    """A transport that sends what is written during one event-loop turn as a single write.

    Everything but ``write``, ``writelines``, ``close`` and ``abort`` goes to the transport itself.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Send what is pending; nothing once the transport is closing (it would be dropped)."""
        pending, self._pending = self._pending, []
        if not pending or self._transport.is_closing():
            return
        if len(pending) == 1:
            self._transport.write(pending[0])
        else:
            self._transport.writelines(pending)  # uvloop: one writev, without joining the parts

    def close(self) -> None:
        self.flush()  # a response written just before close still goes first
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over ``TurnWrites``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, TurnWrites(transport, self.loop)))
