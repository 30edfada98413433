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
