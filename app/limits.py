"""Rejects a body whose declared Content-Length is over the limit before anything reads it.

Starlette's body limit (set on the denoise routes) counts bytes as they stream in, which also
covers chunked uploads; but for a declared length it answers in plain text, so this guard answers
that case first with the service's problem document.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import problem_response


class DeclaredLengthLimit:
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
