"""Building test uploads from real MNIST digits."""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

SAMPLE = Path(__file__).parent / "data" / "mnist_sample.npz"


def mnist_digits() -> npt.NDArray[np.uint8]:
    """The first 500 MNIST test digits, (500, 28, 28) uint8, light on dark."""
    with np.load(SAMPLE) as npz:
        return np.asarray(npz["x_test"])


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def decode_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data), formats=["PNG"])
    image.load()
    return image


def noisy(digit: npt.NDArray[np.uint8], factor: float = 0.5, seed: int = 0) -> npt.NDArray[np.uint8]:
    """The seed recipe's noise on one uint8 digit."""
    rng = np.random.default_rng(seed)
    values = np.clip(digit / 255.0 + factor * rng.standard_normal(digit.shape), 0.0, 1.0)
    return np.rint(values * 255).astype(np.uint8)


def psnr(reference: npt.NDArray[Any], estimate: npt.NDArray[Any]) -> float:
    """PSNR in dB of two uint8 images of the same shape."""
    mse = float(np.mean((reference.astype(np.float64) / 255 - estimate.astype(np.float64) / 255) ** 2))
    return -10 * math.log10(max(mse, 1e-10))


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels in its header but carries no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def page_with_digit(
    digit: npt.NDArray[np.uint8],
    size: tuple[int, int] = (320, 240),
    at: tuple[int, int] = (150, 60),
    height: int = 90,
    sigma: float = 0.3,
    seed: int = 0,
) -> tuple[npt.NDArray[np.uint8], tuple[int, int, int, int]]:
    """``digit`` drawn ``height`` px tall as dark ink on a white page, noise added.

    Returns the page (uint8, dark on light) and the digit's true ink box (x, y, width, height),
    where the ink is at least 30% dark, the edge the service's boxes reach.
    """
    side = round(height * 28 / 20)  # MNIST digits are 20 px tall in their 28 px frame
    drawn = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    ink = np.asarray(drawn, dtype=np.float64) / 255
    page = np.ones((size[1], size[0]))
    x, y = at
    page[y : y + side, x : x + side] = 1 - ink
    rows, cols = np.nonzero(ink >= 0.3)
    box = (x + int(cols.min()), y + int(rows.min()), int(np.ptp(cols)) + 1, int(np.ptp(rows)) + 1)
    rng = np.random.default_rng(seed)
    noisy_page = np.clip(page + sigma * rng.standard_normal(page.shape), 0, 1)
    return np.rint(noisy_page * 255).astype(np.uint8), box


def page_with_number(
    digits: npt.NDArray[np.uint8],
    gaps: list[int],
    height: int = 70,
    margin: int = 40,
    sigma: float = 0.3,
    seed: int = 0,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], list[tuple[int, int, int, int]]]:
    """``digits`` written side by side ``height`` px tall, dark on a white page, ``gaps[i]`` px between
    the ink of digit i and i + 1 (0: they touch), noise added.

    Returns the noisy page, the clean page (uint8, dark on light) and each digit's true ink box.
    """
    side = round(height * 28 / 20)
    drawn = []
    for digit in digits:
        ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC), dtype=np.float64) / 255
        rows, cols = np.nonzero(ink >= 0.3)
        drawn.append((ink, int(cols.min()), int(cols.max()) + 1, int(rows.min()), int(rows.max()) + 1))
    width = 2 * margin + sum(c1 - c0 for _, c0, c1, _, _ in drawn) + sum(gaps)
    ink_page = np.zeros((side + 2 * margin, width))
    boxes, x = [], margin
    for (ink, c0, c1, r0, r1), gap in zip(drawn, [*gaps, 0], strict=True):
        left = x - c0
        x0, x1 = max(0, left), min(width, left + side)
        ink_page[margin : margin + side, x0:x1] = np.maximum(
            ink_page[margin : margin + side, x0:x1], ink[:, x0 - left : x1 - left]
        )
        boxes.append((x, margin + r0, c1 - c0, r1 - r0))
        x += c1 - c0 + gap
    clean = 1 - ink_page
    noisy_page = np.clip(clean + sigma * np.random.default_rng(seed).standard_normal(clean.shape), 0, 1)
    return np.rint(noisy_page * 255).astype(np.uint8), np.rint(clean * 255).astype(np.uint8), boxes
