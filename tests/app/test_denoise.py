from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.images import decode_png, encode, noisy


@pytest.mark.parametrize(("fmt", "params"), [("PNG", {}), ("JPEG", {"quality": 95})])
def test_denoise_returns_a_28x28_png_and_the_error(
    client: TestClient, digits: npt.NDArray[np.uint8], fmt: str, params: dict[str, int]
) -> None:
    upload = encode(Image.fromarray(noisy(digits[0])), fmt, **params)
    response = client.post("/denoise", files={"file": ("digit", upload, "application/octet-stream")})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = decode_png(response.content)
    assert image.size == (28, 28)
    assert image.mode == "L"
    error = float(response.headers["X-Reconstruction-Error"])
    assert math.isfinite(error)
    assert error >= 0.0


def test_denoised_digit_is_closer_to_the_clean_one(client: TestClient, digits: npt.NDArray[np.uint8]) -> None:
    clean = digits[1]
    upload = encode(Image.fromarray(noisy(clean, seed=1)), "PNG")
    response = client.post("/denoise", files={"file": ("digit.png", upload, "image/png")})
    denoised = np.asarray(decode_png(response.content))
    noisy_error = np.mean((noisy(clean, seed=1) / 255 - clean / 255) ** 2)
    denoised_error = np.mean((denoised / 255 - clean / 255) ** 2)
    assert denoised_error < noisy_error / 4


def test_a_file_that_is_not_an_image_gets_415_json(client: TestClient) -> None:
    response = client.post("/denoise", files={"file": ("digit.png", b"just some text", "image/png")})
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 415
    assert body["code"] == "unsupported_media_type"
    assert "just some text" in body["detail"]


def test_the_service_answers_after_a_bad_request(client: TestClient, digits: npt.NDArray[np.uint8]) -> None:
    assert (
        client.post("/denoise", files={"file": ("x.png", b"\x89PNG\r\n\x1a\nbroken", "image/png")}).status_code == 422
    )
    upload = encode(Image.fromarray(digits[2]), "PNG")
    assert client.post("/denoise", files={"file": ("x.png", upload, "image/png")}).status_code == 200


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "application/octet-stream"])
def test_the_image_as_the_body_gets_the_same_answer_as_a_multipart_upload(
    client: TestClient, digits: npt.NDArray[np.uint8], content_type: str
) -> None:
    # The declared type is not trusted (a PNG labelled image/jpeg is still read as PNG).
    upload = encode(Image.fromarray(noisy(digits[5], seed=5)), "PNG")
    multipart = client.post("/denoise", files={"file": ("digit.png", upload, "image/png")})
    raw = client.post("/denoise", content=upload, headers={"content-type": content_type})
    assert raw.status_code == 200, raw.text
    assert raw.content == multipart.content
    assert raw.headers["X-Reconstruction-Error"] == multipart.headers["X-Reconstruction-Error"]
    as_json = client.post(
        "/denoise?size=original", content=upload, headers={"content-type": content_type, "accept": "application/json"}
    )
    assert as_json.json()["input"] == {"format": "PNG", "width": 28, "height": 28}


def test_an_empty_image_body_gets_422_empty_file(client: TestClient) -> None:
    response = client.post("/denoise", content=b"", headers={"content-type": "image/png"})
    assert response.status_code == 422
    assert response.json()["code"] == "empty_file"
