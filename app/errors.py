"""One error shape everywhere: RFC 9457 problem details with a machine-readable ``code``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.batching import Overloaded, Stopped
from app.imaging import ImageError

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemError(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(self, status: int, code: str, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})


# RFC 9110's names where Python 3.11's http module still has the older ones.
_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def problem_body(status: int, code: str, detail: str) -> dict[str, object]:
    return {
        "type": "about:blank",
        "title": _TITLES.get(status) or HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
    }


def problem_response(status: int, code: str, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, detail), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


_CODES = {400: "malformed_body", 413: "content_too_large", 422: "invalid_request"}


def _code_for(status: int) -> str:
    return _CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


async def _problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.status, exc.code, exc.detail, exc.headers)


async def _image_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ImageError)
    return problem_response(exc.status, exc.code, exc.message)


async def _overloaded(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(503, "overloaded", f"the service is at capacity: {exc}", {"Retry-After": "1"})


async def _stopped(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(503, "not_ready", f"the model cannot answer: {exc}", {"Retry-After": "5"})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 413:
        limit = request.scope.get("starlette.max_body_size")
        detail = f"the request body is larger than the limit of {limit:,} bytes" if limit else detail
    return problem_response(exc.status_code, _code_for(exc.status_code), detail, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return problem_response(422, "invalid_request", "; ".join(parts) or "the request is invalid")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "internal_error", "the server failed to handle this request")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _problem)
    app.add_exception_handler(ImageError, _image_error)
    app.add_exception_handler(Overloaded, _overloaded)
    app.add_exception_handler(Stopped, _stopped)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
