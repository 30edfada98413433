"""``fit=digit`` over HTTP with the real model: a digit on a page is found, denoised, put back."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.images import decode_png, encode, page_with_digit, psnr

Digits = npt.NDArray[np.uint8]


def _post(client: TestClient, data: bytes, **params: str) -> tuple[int, dict[str, str], bytes]:
    response = client.post("/denoise", params=params, files={"file": ("page", data, "application/octet-stream")})
    return response.status_code, dict(response.headers), response.content


def _box(header: str) -> tuple[int, ...]:
    return tuple(int(value) for value in header.split(","))


def test_a_digit_on_a_page_comes_back_in_place(client: TestClient, digits: Digits) -> None:
    page, true_box = page_with_digit(digits[0], size=(320, 240), at=(150, 60), height=90, sigma=0.3)
    status, headers, body = _post(client, encode(Image.fromarray(page), "PNG"), fit="digit", size="original")
    assert status == 200, body
    found = _box(headers["x-digit-box"])
    assert all(abs(a - b) <= 4 for a, b in zip(found, true_box, strict=True)), (found, true_box)
    answer = np.asarray(decode_png(body))
    assert answer.shape == page.shape  # the upload's size
    assert headers["x-inverted"] == "true"
    assert np.median(answer) > 240  # the upload's polarity: a light page, cleaned
    clean, _ = page_with_digit(digits[0], size=(320, 240), at=(150, 60), height=90, sigma=0.0)
    x, y, width, height = true_box
    region = (slice(y, y + height), slice(x, x + width))
    # The digit's own region comes back far cleaner than it went in (stretch makes it worse).
    assert psnr(clean[region], answer[region]) > psnr(clean[region], page[region]) + 6
    _, _, stretched = _post(client, encode(Image.fromarray(page), "PNG"), size="original")
    assert psnr(clean[region], np.asarray(decode_png(stretched))[region]) < psnr(clean[region], answer[region]) - 6


def test_size_28_answers_the_framed_digit(client: TestClient, digits: Digits) -> None:
    page, _ = page_with_digit(digits[1], sigma=0.2)
    status, headers, body = _post(client, encode(Image.fromarray(page), "PNG"), fit="digit")
    assert status == 200, body
    framed = np.asarray(decode_png(body))
    assert framed.shape == (28, 28)
    # MNIST's framing in the upload's polarity: dark ink in the middle, white margins.
    assert framed[:3].min() > 200
    assert framed[-3:].min() > 200
    assert framed[8:20, 8:20].min() < 60
    assert "x-digit-box" in headers


def test_json_answer_reports_the_box(client: TestClient, digits: Digits) -> None:
    page, true_box = page_with_digit(digits[2], at=(40, 30), height=120)
    response = client.post(
        "/denoise",
        params={"fit": "digit"},
        headers={"Accept": "application/json"},
        files={"file": ("page.png", encode(Image.fromarray(page), "PNG"), "image/png")},
    )
    assert response.status_code == 200, response.text
    box = response.json()["digit_box"]
    found = (box["x"], box["y"], box["width"], box["height"])
    assert all(abs(a - b) <= 4 for a, b in zip(found, true_box, strict=True)), (found, true_box)
    assert response.headers["x-digit-box"] == ",".join(str(v) for v in found)


def test_stretch_answers_no_box(client: TestClient, digits: Digits) -> None:
    response = client.post(
        "/denoise",
        headers={"Accept": "application/json"},
        files={"file": ("d.png", encode(Image.fromarray(digits[3]), "PNG"), "image/png")},
    )
    assert response.json()["digit_box"] is None
    assert "x-digit-box" not in response.headers


@pytest.mark.parametrize(("value", "sigma"), [(255, 0.0), (0, 0.0), (255, 0.3), (128, 0.5)])
def test_a_page_without_ink_gets_422_no_digit_found(client: TestClient, value: int, sigma: float) -> None:
    rng = np.random.default_rng(value)
    page = np.clip(value + 255 * sigma * rng.standard_normal((240, 320)), 0, 255).astype(np.uint8)
    status, headers, body = _post(client, encode(Image.fromarray(page), "PNG"), fit="digit")
    assert status == 422
    assert headers["content-type"] == "application/problem+json"
    problem = io.BytesIO(body).read().decode()
    assert '"code":"no_digit_found"' in problem.replace(" ", "")
    assert "no digit" in problem


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_a_photo_rotated_by_its_exif_tag_is_framed_upright(
    client: TestClient, digits: Digits, orientation: int
) -> None:
    upright, true_box = page_with_digit(digits[4], size=(240, 320), at=(60, 150), height=90, sigma=0.2)
    # Stored turned or mirrored, as a camera stores it, with the tag that says how to turn it back.
    stored = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }
    image = Image.fromarray(upright).transpose(stored[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(image.convert("RGB"), "JPEG", quality=92, exif=exif)
    status, headers, body = _post(client, data, fit="digit", size="original")
    assert status == 200, body
    found = _box(headers["x-digit-box"])
    assert all(abs(a - b) <= 5 for a, b in zip(found, true_box, strict=True)), (found, true_box)
    assert np.asarray(decode_png(body)).shape == upright.shape


def test_exif_orientation_applies_to_stretch_too(client: TestClient, digits: Digits) -> None:
    image = Image.fromarray(digits[5]).resize((56, 84)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    response = client.post(
        "/denoise",
        params={"size": "original"},
        files={"file": ("p.jpg", encode(image.convert("RGB"), "JPEG", quality=95, exif=exif), "image/jpeg")},
    )
    assert decode_png(response.content).size == (56, 84)  # upright: as the tag says


def test_light_ink_on_dark_paper_keeps_its_polarity(client: TestClient, digits: Digits) -> None:
    page, _true_box = page_with_digit(digits[6], sigma=0.2)
    status, headers, body = _post(client, encode(Image.fromarray(255 - page), "PNG"), fit="digit", size="original")
    assert status == 200, body
    assert headers["x-inverted"] == "false"
    assert np.median(np.asarray(decode_png(body))) < 15


def test_transparent_canvas_with_a_digit_is_framed(client: TestClient, digits: Digits) -> None:
    page, _ = page_with_digit(digits[7], sigma=0.0)
    rgba = np.zeros((*page.shape, 4), np.uint8)
    rgba[..., 3] = 255 - page  # dark ink drawn on a transparent canvas
    status, headers, body = _post(client, encode(Image.fromarray(rgba, "RGBA"), "PNG"), fit="digit")
    assert status == 200, body
    assert headers["x-inverted"] == "true"


def test_the_batch_route_takes_fit(client: TestClient, digits: Digits) -> None:
    page, true_box = page_with_digit(digits[8])
    blank = np.full((240, 320), 255, np.uint8)
    response = client.post(
        "/denoise/batch",
        params={"fit": "digit", "size": "original"},
        files=[
            ("files", ("page.png", encode(Image.fromarray(page), "PNG"), "image/png")),
            ("files", ("blank.png", encode(Image.fromarray(blank), "PNG"), "image/png")),
        ],
    )
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["ok"]
    assert first["result"]["output"] == {"format": "PNG", "width": 320, "height": 240}
    box = first["result"]["digit_box"]
    assert abs(box["x"] - true_box[0]) <= 4
    assert abs(box["y"] - true_box[1]) <= 4
    assert not second["ok"]
    assert second["error"]["code"] == "no_digit_found"


def test_an_unknown_fit_is_a_422(client: TestClient, digits: Digits) -> None:
    status, _, body = _post(client, encode(Image.fromarray(digits[9]), "PNG"), fit="crop")
    assert status == 422
    assert b"fit" in body


def test_auto_frames_a_page_and_stretches_an_mnist_crop(client: TestClient, digits: Digits) -> None:
    page, true_box = page_with_digit(digits[10])
    status, headers, _ = _post(client, encode(Image.fromarray(page), "PNG"), fit="auto")
    assert status == 200
    assert abs(_box(headers["x-digit-box"])[0] - true_box[0]) <= 4
    crop = encode(Image.fromarray(digits[11]), "PNG")
    status, headers, auto = _post(client, crop, fit="auto")
    assert status == 200
    assert "x-digit-box" not in headers
    _, _, stretched = _post(client, crop)
    assert auto == stretched


def test_auto_on_a_blank_page_answers_as_stretch(client: TestClient) -> None:
    blank = encode(Image.fromarray(np.full((240, 320), 255, np.uint8)), "PNG")
    status, headers, _ = _post(client, blank, fit="auto")
    assert status == 200
    assert "x-digit-box" not in headers
