"""Every documented error: one problem-details shape, the right status, a reason naming the problem."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image

from app.main import create_app
from app.settings import DEFAULT_MODEL_DIR, Settings
from tests.images import encode, png_header


def assert_problem(response: Response, status: int, code: str, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["title"], str)
    assert body["title"]
    for fragment in fragments:
        assert fragment in body["detail"]
    return body


def post_file(client: TestClient, data: bytes, field: str = "file") -> Response:
    response: Response = client.post("/denoise", files={field: ("upload", data, "application/octet-stream")})
    return response


@pytest.fixture(scope="module")
def digit_png(digits: npt.NDArray[np.uint8]) -> bytes:
    return encode(Image.fromarray(digits[0]), "PNG")


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (b"hello, this is text", "hello"),
        (b"%PDF-1.7\n1 0 obj << >> endobj", "%PDF"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"/>', "<svg"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n", "%!PS"),
    ],
    ids=["text", "pdf", "svg", "eps"],
)
def test_unsupported_formats_get_415(client: TestClient, data: bytes, shown: str) -> None:
    assert_problem(post_file(client, data), 415, "unsupported_media_type", shown)


def test_empty_file_gets_422(client: TestClient) -> None:
    assert_problem(post_file(client, b""), 422, "empty_file", "empty")


@pytest.mark.parametrize(
    "cut", [lambda d: d[: len(d) // 2], lambda d: d[:40], lambda d: d[:-20] + b"\x00" * 20], ids=["half", "40", "tail"]
)
def test_corrupt_png_gets_422(client: TestClient, digit_png: bytes, cut: Callable[[bytes], bytes]) -> None:
    assert_problem(post_file(client, cut(digit_png)), 422, "corrupt_image", "PNG")


def test_truncated_jpeg_gets_422(client: TestClient, digits: npt.NDArray[np.uint8]) -> None:
    jpeg = encode(Image.fromarray(digits[0]).resize((256, 256)), "JPEG")
    assert_problem(post_file(client, jpeg[: len(jpeg) // 3]), 422, "corrupt_image", "JPEG")


@pytest.mark.parametrize("side", [30_000, 100_000])
def test_decompression_bomb_header_gets_422_before_decoding(client: TestClient, side: int) -> None:
    assert_problem(post_file(client, png_header(side, side)), 422, "too_many_pixels")


def test_pixel_limit_names_the_size(make_client: Callable[..., Any], digits: npt.NDArray[np.uint8]) -> None:
    with make_client(max_image_pixels=10_000) as client:
        big = encode(Image.fromarray(digits[0]).resize((200, 100)), "PNG")
        assert_problem(post_file(client, big), 422, "too_many_pixels", "200x100 = 20,000 pixels", "10,000")


def test_missing_file_field_gets_422(client: TestClient, digit_png: bytes) -> None:
    assert_problem(post_file(client, digit_png, field="image"), 422, "invalid_request", "body.file")
    files = {"note": (None, "no file")}  # multipart with another field only
    assert_problem(client.post("/denoise", files=files), 422, "invalid_request", "body.file", "'note'")
    # A form without a file is not a multipart body at all: 415, naming what is accepted.
    assert_problem(client.post("/denoise", data={"note": "no file"}), 415, "unsupported_media_type", "multipart")


def test_a_body_neither_multipart_nor_an_image_gets_415_naming_what_is_accepted(client: TestClient) -> None:
    response = client.post("/denoise", content=b'{"file": "x"}', headers={"content-type": "application/json"})
    assert_problem(response, 415, "unsupported_media_type", "'application/json'")
    assert "multipart/form-data" in response.json()["detail"]
    assert "image/* or application/octet-stream" in response.json()["detail"]


def test_body_over_the_limit_gets_413(make_client: Callable[..., Any], digit_png: bytes) -> None:
    with make_client(max_upload_bytes=5_000) as client:
        declared = post_file(client, digit_png + b"\x00" * 10_000)
        assert_problem(declared, 413, "content_too_large", "5,000")

        def chunks() -> Iterator[bytes]:
            for _ in range(100):
                yield b"x" * 1_000

        chunked = client.post("/denoise", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
        assert_problem(chunked, 413, "content_too_large", "5,000")
        assert post_file(client, digit_png).status_code == 200  # and the next request works


def test_gigabyte_content_length_gets_413_without_reading(client: TestClient) -> None:
    headers = {"content-type": "multipart/form-data; boundary=b", "content-length": str(5 * 2**30)}
    assert_problem(client.post("/denoise", content=b"", headers=headers), 413, "content_too_large")


def test_not_ready_gets_503_with_retry_after(digit_png: bytes) -> None:
    app = create_app(Settings(model_dir=DEFAULT_MODEL_DIR))
    client = TestClient(app)  # not entered: the lifespan has not loaded the model
    response = post_file(client, digit_png)
    assert_problem(response, 503, "not_ready")
    assert int(response.headers["retry-after"]) > 0
    assert_problem(client.get("/readyz"), 503, "not_ready")
    assert client.get("/healthz").status_code == 200


def test_api_key_protects_the_denoise_routes(make_client: Callable[..., Any], digit_png: bytes) -> None:
    with make_client(api_key="s3cret") as client:
        assert_problem(post_file(client, digit_png), 401, "unauthorized", "X-API-Key")
        wrong = client.post("/denoise", files={"file": ("d", digit_png)}, headers={"X-API-Key": "nope"})
        assert_problem(wrong, 401, "unauthorized")
        batch = client.post("/denoise/batch", files=[("files", ("d", digit_png))])
        assert_problem(batch, 401, "unauthorized")
        for headers in ({"X-API-Key": "s3cret"}, {"Authorization": "Bearer s3cret"}):
            assert client.post("/denoise", files={"file": ("d", digit_png)}, headers=headers).status_code == 200
        for open_route in ("/healthz", "/readyz", "/docs", "/openapi.json", "/model", "/metrics"):
            assert client.get(open_route).status_code == 200


def test_unknown_route_and_method_use_the_same_shape(client: TestClient) -> None:
    assert_problem(client.get("/nowhere"), 404, "not_found")
    assert_problem(client.get("/denoise"), 405, "method_not_allowed")


def test_bad_query_value_gets_422(client: TestClient, digit_png: bytes) -> None:
    response = client.post("/denoise", params={"invert": "maybe"}, files={"file": ("d", digit_png)})
    assert_problem(response, 422, "invalid_request", "invert")


def test_an_unexpected_error_answers_500_with_the_request_id_and_cors(
    make_client: Callable[..., Any], digit_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    origin = "https://ui.example"
    with make_client(cors_origins=[origin]) as client:
        monkeypatch.setattr("app.routes.denoise.answer", broken)  # a bug in the route, after the model ran
        headers = {"X-Request-ID": "trace-500", "Origin": origin}
        response = client.post("/denoise", files={"file": ("d.png", digit_png)}, headers=headers)
        assert_problem(response, 500, "internal_error")
        assert response.headers["x-request-id"] == "trace-500"
        assert response.headers["access-control-allow-origin"] == origin
        assert "a bug" not in response.text  # nothing of the exception leaks to the client
        monkeypatch.undo()
        assert post_file(client, digit_png).status_code == 200  # and the next request works


def test_refusals_by_the_limits_carry_the_request_id_and_cors(make_client: Callable[..., Any]) -> None:
    origin = "https://ui.example"
    with make_client(cors_origins=[origin], max_upload_bytes=5_000) as client:
        headers = {"X-Request-ID": "trace-413", "Origin": origin, "content-type": "image/png"}
        response = client.post("/denoise", content=b"\x00" * 10_000, headers=headers)
        assert_problem(response, 413, "content_too_large")
        assert response.headers["x-request-id"] == "trace-413"
        assert response.headers["access-control-allow-origin"] == origin


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("trace-1.a:b_C", True),
        ("x" * 128, True),
        ("x" * 129, False),  # longer than a log line should carry
        ("two words", False),
        ("new\\nline", False),
        ("", False),
    ],
)
def test_a_request_id_is_echoed_only_when_short_and_plain(client: TestClient, sent: str, echoed: bool) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": sent})
    answered = response.headers["x-request-id"]
    assert (answered == sent) is echoed
    if not echoed:
        assert re.fullmatch(r"[0-9a-f]{32}", answered)  # a fresh one: uuid4's hex
