"""uvicorn's httptools protocol, sending each response's head and body in one write.

uvicorn writes a response's status line and headers when the app starts the response, and its
body in a second write: two sends, two TCP segments. If the worker dies between the two (``kill
-9``, the OOM killer), the client, or the load balancer in front, has a 200 head with no body, too
late to retry elsewhere: HAProxy cut one such answer in ``python -m bench.scale`` (``SD--`` in its
log). Holding the writes of one event-loop turn and sending them together closes that gap (a
reply is sent whole, or not at all, and HAProxy retries an empty one) and saves a send per answer.

Served with ``uvicorn --http app.protocol:HttpProtocol`` (Makefile, Dockerfile, bench, tests).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class TurnWrites:
    """A transport that holds a write until the next one, or the end of the event-loop turn, and
    sends the two together: a response's head waits for its body, not for what the app does after.

    Everything but ``write``, ``writelines``, ``close`` and ``abort`` goes to the transport itself.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._flush_scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data or self._transport.is_closing():
            return
        if self._held is None:
            self._held = bytes(data)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._end_of_turn)
            return
        held, self._held = self._held, None
        self._transport.writelines([held, data])  # uvloop: one writev, without joining the parts

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Send the held write, if any."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def _end_of_turn(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def close(self) -> None:
        self.flush()  # a response written just before close still goes first
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over ``TurnWrites``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, TurnWrites(transport, self.loop)))
