"""Limits enforced before a request reaches its route: body size and requests in flight."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import problem_response


class DeclaredLengthLimit:
    """Rejects a body whose declared Content-Length is over the limit before anything reads it.

    Starlette's body limit (set on the denoise routes) counts bytes as they stream in, which also
    covers chunked uploads; but for a declared length it answers in plain text, so this guard
    answers that case first with the service's problem document.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = dict(scope["headers"]).get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                response = problem_response(
                    413,
                    "content_too_large",
                    f"the request body is {int(declared):,} bytes, over the limit of {self.max_bytes:,}",
                    {"Connection": "close"},  # the body is never read, so the connection cannot be reused
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class InFlightLimit:
    """At most ``limit`` denoise requests in progress; beyond that, 503 at once.

    Bounds memory (each request holds its upload) and latency (no unbounded backlog), and leaves
    health, readiness and metrics answering under any load.
    """

    def __init__(self, app: ASGIApp, limit: int, prefix: str = "/denoise") -> None:
        self.app = app
        self.limit = limit
        self.prefix = prefix
        self.in_flight = 0  # only touched on the event loop: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            response = problem_response(
                503,
                "overloaded",
                f"{self.in_flight} requests are in progress, the limit is {self.limit}; retry shortly",
                {"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
