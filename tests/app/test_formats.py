"""Every accepted format and mode, both polarities, both output sizes."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.images import decode_png, encode, noisy, psnr

Digit = npt.NDArray[np.uint8]


def _as_mode(mode: str) -> Callable[[Digit], Image.Image]:
    def build(pixels: Digit) -> Image.Image:
        gray = Image.fromarray(pixels)
        if mode == "I;16":
            return Image.fromarray(pixels.astype(np.uint16) * 257)  # full 16-bit range
        if mode == "I":
            return Image.fromarray(pixels.astype(np.int32) * 257)
        if mode == "F":
            return Image.fromarray(pixels.astype(np.float32) / 255.0)
        if mode == "P":
            return gray.convert("P")
        return gray.convert(mode)

    return build


CASES = [
    ("PNG", "L"),
    ("PNG", "LA"),
    ("PNG", "RGB"),
    ("PNG", "RGBA"),
    ("PNG", "P"),
    ("PNG", "I;16"),
    ("JPEG", "L"),
    ("JPEG", "RGB"),
    ("JPEG", "CMYK"),
    ("GIF", "P"),
    ("GIF", "L"),
    ("BMP", "L"),
    ("BMP", "RGB"),
    ("BMP", "P"),
    ("TIFF", "L"),
    ("TIFF", "RGB"),
    ("TIFF", "RGBA"),
    ("TIFF", "CMYK"),
    ("TIFF", "I;16"),
    ("TIFF", "I"),
    ("TIFF", "F"),
    ("WEBP", "RGB"),
    ("WEBP", "RGBA"),
]


def _denoise(client: TestClient, data: bytes, **params: str) -> tuple[Digit, dict[str, str]]:
    response = client.post("/denoise", params=params, files={"file": ("upload.bin", data, "application/octet-stream")})
    assert response.status_code == 200, response.text
    image = decode_png(response.content)
    assert image.mode == "L"
    return np.asarray(image), dict(response.headers)


@pytest.mark.parametrize(("fmt", "mode"), CASES, ids=[f"{f}-{m}" for f, m in CASES])
def test_format_and_mode_are_denoised(client: TestClient, digits: npt.NDArray[np.uint8], fmt: str, mode: str) -> None:
    clean = digits[3]
    upload = noisy(clean, seed=3)
    params = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    data = encode(_as_mode(mode)(upload), fmt, **params)
    denoised, headers = _denoise(client, data)
    assert denoised.shape == (28, 28)
    assert headers["x-inverted"] == "false"
    # Cleaner than it went in, whatever the container: at least 6 dB better than the noisy upload.
    assert psnr(clean, denoised) > psnr(clean, upload) + 6


def test_bilevel_png_is_accepted(client: TestClient, digits: npt.NDArray[np.uint8]) -> None:
    data = encode(Image.fromarray(digits[4]).convert("1"), "PNG")
    denoised, _ = _denoise(client, data)
    assert psnr(digits[4], denoised) > 12


def test_animated_gif_uses_the_first_frame(client: TestClient, digits: npt.NDArray[np.uint8]) -> None:
    frames = [Image.fromarray(digits[5]).convert("P"), *[Image.fromarray(d).convert("P") for d in digits[6:40]]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10, loop=0)
    first, _ = _denoise(client, data)
    alone, _ = _denoise(client, encode(frames[0], "GIF"))
    np.testing.assert_array_equal(first, alone)


def test_dark_on_light_digit_keeps_its_polarity_and_gets_cleaner(
    client: TestClient, digits: npt.NDArray[np.uint8]
) -> None:
    clean = 255 - digits[7]  # dark ink on white paper
    upload = 255 - noisy(digits[7], seed=7)
    denoised, headers = _denoise(client, encode(Image.fromarray(upload), "PNG"))
    assert headers["x-inverted"] == "true"
    assert np.median(denoised) > 200  # still a light background
    assert psnr(clean, denoised) > psnr(clean, upload) + 6


def test_invert_false_is_obeyed(client: TestClient, digits: npt.NDArray[np.uint8]) -> None:
    upload = encode(Image.fromarray(255 - digits[8]), "PNG")
    _, headers = _denoise(client, upload, invert="false")
    assert headers["x-inverted"] == "false"
    _, headers = _denoise(client, encode(Image.fromarray(digits[8]), "PNG"), invert="true")
    assert headers["x-inverted"] == "true"


@pytest.mark.parametrize(("ink", "expected_background"), [(0, 255), (255, 0)])
def test_transparency_is_flattened_onto_the_digits_own_background(
    client: TestClient, digits: npt.NDArray[np.uint8], ink: int, expected_background: int
) -> None:
    # Ink drawn on a transparent canvas: the stroke is in alpha, the colour is uniform.
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = ink
    rgba[..., 3] = digits[9]
    denoised, headers = _denoise(client, encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert headers["x-inverted"] == ("true" if ink == 0 else "false")
    assert abs(float(np.median(denoised)) - expected_background) < 40
    expected = digits[9] if ink == 255 else 255 - digits[9]
    assert psnr(expected, denoised) > 15


def test_size_original_scales_back_to_the_upload(client: TestClient, digits: npt.NDArray[np.uint8]) -> None:
    big = Image.fromarray(noisy(digits[10])).resize((112, 84))
    denoised, _ = _denoise(client, encode(big, "PNG"), size="original")
    assert denoised.shape == (84, 112)
    small, _ = _denoise(client, encode(big, "PNG"), size="28")
    assert small.shape == (28, 28)
    # The same answer, scaled: brought back to 28x28 it is the 28x28 answer within a few levels.
    back = np.asarray(Image.fromarray(denoised).resize((28, 28), Image.Resampling.BOX), dtype=float)
    assert np.abs(back - small).mean() < 8
    assert (
        np.abs(np.asarray(small, dtype=float) - digits[10]).mean()
        < np.abs(noisy(digits[10]) - digits[10].astype(float)).mean()
    )


def test_size_original_is_capped(make_client: Callable[..., TestClient], digits: npt.NDArray[np.uint8]) -> None:
    wide = Image.fromarray(digits[11]).resize((400, 100))
    with make_client(max_output_side=200) as client:
        denoised, _ = _denoise(client, encode(wide, "PNG"), size="original")
    assert denoised.shape == (50, 200)


def test_large_photo_jpeg_is_decoded(client: TestClient, digits: npt.NDArray[np.uint8]) -> None:
    photo = Image.fromarray(255 - digits[12]).resize((1024, 768)).convert("RGB")
    denoised, headers = _denoise(client, encode(photo, "JPEG", quality=90))
    assert headers["x-inverted"] == "true"
    assert denoised.shape == (28, 28)


def test_palette_with_transparency_is_flattened(client: TestClient, digits: npt.NDArray[np.uint8]) -> None:
    # A GIF-style palette image: index 0 is the transparent background, the ink is dark grey.
    ink = (digits[13] > 100).astype(np.uint8)  # 1 where the stroke is
    image = Image.fromarray(ink, mode="L").convert("P")
    image.putpalette([255, 0, 255] + [30, 30, 30] + [0, 0, 0] * 254)  # magenta would show if not flattened
    for fmt in ("PNG", "GIF"):
        data = encode(image, fmt, transparency=0)
        assert Image.open(io.BytesIO(data)).info.get("transparency") == 0
        denoised, headers = _denoise(client, data)
        assert headers["x-inverted"] == "true"  # dark ink: flattened onto white paper
        assert np.median(denoised) > 200
        assert psnr(255 - ink * 225, denoised) > 12
