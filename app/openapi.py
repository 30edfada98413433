"""The OpenAPI ``responses`` tables for errors: each status with an example of its own.

One place for them, so that every route documents its problems the same way, and Swagger UI
shows a 413 as a 413, not the same 415 example under every status.
"""

from __future__ import annotations

from typing import Any

from app.errors import PROBLEM_MEDIA_TYPE, problem_body

Responses = dict[int | str, dict[str, Any]]

PNG = "image/png"
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"

_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}},
}

# status -> (description, {example name: (code, detail)})
_PROBLEMS: dict[int, tuple[str, dict[str, tuple[str, str]]]] = {
    400: (
        "The body is not valid multipart/form-data",
        {"malformed_body": ("malformed_body", "the multipart body cannot be parsed: no boundary in Content-Type")},
    ),
    401: (
        "API key missing or wrong (only when API_KEY is set)",
        {
            "unauthorized": (
                "unauthorized",
                "this route needs the API key, as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            )
        },
    ),
    413: (
        "Request body over MAX_UPLOAD_BYTES",
        {
            "content_too_large": (
                "content_too_large",
                "the request body is 12,582,912 bytes, over the limit of 10,485,760",
            )
        },
    ),
    415: (
        "Not an image in a supported format",
        {
            "unsupported_media_type": (
                "unsupported_media_type",
                "the file is not an image in a supported format (PNG, JPEG, GIF, BMP, TIFF, WEBP); "
                "it starts with b'%PDF-1.7'",
            )
        },
    ),
    422: (
        "Missing field or bad parameter, empty or corrupt image, too many pixels, or no digit found (`fit=digit`)",
        {
            "corrupt_image": ("corrupt_image", "the PNG image cannot be decoded: image file is truncated"),
            "no_digit_found": (
                "no_digit_found",
                "no digit was found on the JPEG image: nothing stands out from the paper",
            ),
            "too_many_pixels": (
                "too_many_pixels",
                "the PNG image is 10000x10000 = 100,000,000 pixels, over the limit of 40,000,000",
            ),
            "invalid_request": ("invalid_request", "query.fit: Input should be 'stretch', 'digit' or 'auto'"),
        },
    ),
    503: (
        "Not ready, overloaded or timed out; retry after Retry-After seconds",
        {
            "overloaded": ("overloaded", "the service is full: the limit is 32 requests in progress"),
            "not_ready": ("not_ready", "the model is not loaded or the service is stopping"),
            "timeout": ("timeout", "inference did not finish within 30.0 s"),
        },
    ),
}


def problems(*statuses: int) -> Responses:
    """The ``responses`` entries of these error statuses."""
    table: Responses = {}
    for status in statuses:
        description, examples = _PROBLEMS[status]
        # Only application/problem+json, which is what the service sends: with a "model" FastAPI
        # would list application/json first, and Swagger UI would show the Problem schema's own
        # example (a 415) under every status instead of each status's examples.
        entry: dict[str, Any] = {
            "description": description,
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": "#/components/schemas/Problem"},  # there through BatchItem.error
                    "examples": {
                        name: {"summary": code, "value": problem_body(status, code, detail)}
                        for name, (code, detail) in examples.items()
                    },
                }
            },
        }
        if status == 503:
            entry["headers"] = _RETRY_AFTER
        table[status] = entry
    return table


NOT_READY = problems(503)
DENOISE_ERRORS = problems(400, 401, 413, 415, 422, 503)


JSON_EXAMPLE = {
    "image_png_base64": "iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAA...",
    "model_input_png_base64": "iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAA...",
    "reconstruction_error": 0.1048,
    "anomaly": False,
    "anomaly_score": 0.0021,
    "anomaly_threshold": 0.1274,
    "model_version": 2,
    "inverted": True,
    "input": {"format": "JPEG", "width": 640, "height": 480},
    "output": {"format": "PNG", "width": 28, "height": 28},
    "timings": {"decode_ms": 1.9, "inference_ms": 1.2, "encode_ms": 0.05},
    "digit_box": {"x": 281, "y": 143, "width": 61, "height": 92},
}

# POST /denoise's answer: a PNG by default, JSON on request, and the headers that carry the numbers.
DENOISE_OK: Responses = {
    200: {
        "description": "The denoised image as PNG (default; `application/octet-stream` on request), or JSON "
        "with `Accept: application/json`",
        "headers": {
            "X-Reconstruction-Error": {
                "description": "MSE between model input and output",
                "schema": {"type": "number"},
            },
            "X-Anomaly": {
                "description": "`true` when the anomaly score exceeds the model card's threshold: the "
                "model's input does not look like a digit (for a model without a scorer: the "
                "reconstruction error exceeds its p99 on noisy digits)",
                "schema": {"type": "boolean"},
            },
            "X-Anomaly-Score": {
                "description": "1 - P(digit) for the model's own 28x28 input, from the model's digit "
                "scorer (absent for a model without one)",
                "schema": {"type": "number"},
            },
            "X-Model-Version": {"description": "Served model version", "schema": {"type": "integer"}},
            "X-Inverted": {
                "description": "`true` when the upload was inverted for the model",
                "schema": {"type": "boolean"},
            },
            "X-Digit-Box": {
                "description": "With `fit=digit` (or `digits` finding one digit): the digit's box found on the "
                "upload, `x,y,width,height` in upload pixels (EXIF orientation applied)",
                "schema": {"type": "string", "example": "112,64,58,90"},
            },
            "X-Digit-Count": {
                "description": "When digits were framed (`fit=digit`, `digits`, `auto`): how many",
                "schema": {"type": "integer", "example": 3},
            },
            "X-Digit-Boxes": {
                "description": "When digits were framed: each digit's box, `;`-separated, in reading order "
                "(lines top to bottom, each left to right)",
                "schema": {"type": "string", "example": "40,52,31,70;83,50,44,72;140,49,40,71"},
            },
        },
        # The bytes first: generators that type one answer per operation take the first media type
        # they know, and openapi-python-client knows application/octet-stream, not image/png (with
        # JSON first, its client parsed the default PNG answer as JSON). POST /denoise/json is the
        # typed JSON operation.
        "content": {
            PNG: {"schema": {"type": "string", "format": "binary"}},
            OCTET_STREAM: {"schema": {"type": "string", "format": "binary", "description": "The same PNG bytes"}},
            # DenoiseResult is in the components already, through BatchResult.
            JSON: {"schema": {"$ref": "#/components/schemas/DenoiseResult"}, "example": JSON_EXAMPLE},
        },
    }
}


# A file as both kinds of generators read one: OpenAPI 3.1's contentMediaType, and the
# format: binary of 3.0 that most client generators still look for (both valid together in 3.1).
_BINARY = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}
_IMAGE_DESCRIPTION = "An image: PNG, JPEG, GIF, BMP, TIFF or WebP, any mode; the format is read from its bytes"

# POST /denoise reads its body itself (app/uploads.py), so the schema says what it accepts.
DENOISE_BODY: dict[str, Any] = {
    "required": True,
    "description": "The image, as the `file` part of multipart/form-data or as the body itself",
    "content": {
        "multipart/form-data": {
            "schema": {
                "title": "DenoiseUpload",
                "type": "object",
                "required": ["file"],
                "properties": {"file": _BINARY | {"description": _IMAGE_DESCRIPTION}},
            }
        },
        "image/*": {"schema": _BINARY | {"description": _IMAGE_DESCRIPTION}},
        "application/octet-stream": {"schema": _BINARY | {"description": _IMAGE_DESCRIPTION}},
    },
}


def binary_files(node: object) -> None:
    """Mark every uploaded file in a generated schema ``format: binary`` beside OpenAPI 3.1's
    ``contentMediaType``: FastAPI writes only the latter, which most client generators do not
    read as a file (they send a string, and the service answers 422)."""
    if isinstance(node, dict):
        if node.get("contentMediaType") == "application/octet-stream" and node.get("type") == "string":
            node.setdefault("format", "binary")
        for value in node.values():
            binary_files(value)
    elif isinstance(node, list):
        for value in node:
            binary_files(value)
