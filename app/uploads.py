"""The image of ``POST /denoise``, read from the request body as it streams in.

Two ways to send it: a multipart/form-data body with the image in its ``file`` part (browsers,
Swagger UI, ``curl -F``), or the image itself as the body with ``Content-Type: image/*`` or
``application/octet-stream`` (``curl --data-binary``, services). The multipart body is parsed here,
with python-multipart's streaming parser, rather than by FastAPI's form handling: one part is
wanted, and the form machinery (a spooled temporary file per part, the dependency solver's
validation) cost more per request than the rest of the route (docs/performance.md).
"""

from __future__ import annotations

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from app.errors import ProblemError

FIELD = "file"
RAW_TYPES = ("image/*", "application/octet-stream")
# Starlette's own form parser refuses part headers past this size; so does this one.
MAX_PART_HEADER_BYTES = 16 * 1024
_HOW_TO_SEND = (
    f"send the image as the '{FIELD}' part of multipart/form-data, "
    f"or as the body with Content-Type {' or '.join(RAW_TYPES)}"
)


async def read_image(request: Request) -> bytes:
    """The uploaded image's bytes; a 4xx ``ProblemError`` when the body does not carry one."""
    declared = request.headers.get("content-type")
    if declared is None:
        raise ProblemError(
            422, "invalid_request", f"body.{FIELD}: the request has no Content-Type, so no image: {_HOW_TO_SEND}"
        )
    content_type, params = parse_options_header(declared)
    if content_type == b"multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise ProblemError(400, "malformed_body", "the multipart/form-data body has no boundary parameter")
        return await _file_part(request, boundary)
    if content_type.startswith(b"image/") or content_type == b"application/octet-stream":
        return await request.body()
    shown = content_type.decode("latin-1")
    raise ProblemError(415, "unsupported_media_type", f"the request's Content-Type is {shown!r}: {_HOW_TO_SEND}")


class _Parts:
    """Collects the first ``file`` part as the parser reports it; names every field it saw."""

    def __init__(self) -> None:
        self.fields: list[str] = []
        self.data: bytearray | None = None  # the file part's bytes, once its headers said so
        self.filename: bytes | None = None
        self._collecting = False
        self._header_bytes = 0
        self._field = bytearray()
        self._value = bytearray()
        self._disposition = b""

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._header(self._field, data[start:end]),
            "on_header_value": lambda data, start, end: self._header(self._value, data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
        }

    def _begin(self) -> None:
        self._collecting, self._header_bytes, self._disposition = False, 0, b""

    def _header(self, into: bytearray, chunk: bytes) -> None:
        self._header_bytes += len(chunk)
        if self._header_bytes > MAX_PART_HEADER_BYTES:
            raise ProblemError(400, "malformed_body", f"a part's headers are over {MAX_PART_HEADER_BYTES:,} bytes")
        into += chunk

    def _header_end(self) -> None:
        if bytes(self._field).lower() == b"content-disposition":
            self._disposition = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self.fields.append(name)
        if name == FIELD and self.data is None:
            self.data, self.filename, self._collecting = bytearray(), options.get(b"filename"), True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._collecting and self.data is not None:
            self.data += data[start:end]


async def _file_part(request: Request, boundary: bytes) -> bytes:
    parts = _Parts()
    parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise ProblemError(400, "malformed_body", f"the multipart/form-data body cannot be parsed: {exc}") from exc
    if parts.data is None:
        seen = ", ".join(repr(name) for name in parts.fields) or "none"
        raise ProblemError(
            422, "invalid_request", f"body.{FIELD}: the multipart body has no '{FIELD}' part (parts: {seen})"
        )
    if not parts.data and not parts.filename:  # what a browser sends when no file was picked
        raise ProblemError(422, "invalid_request", f"body.{FIELD}: no file was chosen (an empty part, no filename)")
    return bytes(parts.data)
