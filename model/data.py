"""MNIST loading and the noise model shared by training and evaluation."""

from __future__ import annotations

import hashlib
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

FloatImages = npt.NDArray[np.float32]
Labels = npt.NDArray[np.uint8]  # the digit each image shows, 0-9
Split = TypeVar("Split", FloatImages, Labels)

_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
TRAINING_SEED = 42  # model.train's default --seed: it also picks the validation split
VALIDATION_FRACTION = 0.1  # model.train's default --val-fraction


class DataError(Exception):
    """The data file is missing or does not hold MNIST in the Keras layout."""


@dataclass(frozen=True)
class Mnist:
    """MNIST images scaled to [0, 1] with a trailing channel axis: (N, 28, 28, 1), and the training digits' labels."""

    x_train: FloatImages
    y_train: Labels
    x_test: FloatImages
    source: str
    sha256: str | None


def load_mnist(path: Path | None) -> Mnist:
    """Load a Keras-layout ``mnist.npz`` from ``path``, or download it with Keras when None."""
    if path is None:
        import keras

        (x_train, y_train), (x_test, _) = keras.datasets.mnist.load_data()
        return Mnist(_scale(x_train), y_train.astype(np.uint8), _scale(x_test), "keras.datasets.mnist", None)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist")
    try:
        with np.load(path) as npz:
            missing = [name for name in _ARRAYS if name not in npz.files]
            if missing:
                raise DataError(f"data file {str(path)!r} lacks the arrays {missing}")
            x_train, y_train, x_test = npz["x_train"], npz["y_train"], npz["x_test"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"data file {str(path)!r} is not a readable .npz archive: {exc}") from exc
    for name, array in (("x_train", x_train), ("x_test", x_test)):
        if array.ndim != 3 or array.shape[1:] != (28, 28):
            raise DataError(f"{name} in {str(path)!r} has shape {array.shape}, expected (N, 28, 28)")
    if y_train.shape != (len(x_train),):
        raise DataError(f"y_train in {str(path)!r} has shape {y_train.shape}, expected ({len(x_train)},)")
    return Mnist(_scale(x_train), y_train.astype(np.uint8), _scale(x_test), str(path), file_sha256(path))


def load_mnist_or_report(path: Path | None) -> Mnist | None:
    """``load_mnist`` for the command lines: on a bad file, one line on stderr and None."""
    try:
        return load_mnist(path)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _scale(images: npt.NDArray[np.uint8]) -> FloatImages:
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_validation(images: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """(training, validation): the held-out share ``model.train`` validates on, the same for a seed
    (images and their labels alike)."""
    order = np.random.default_rng(seed).permutation(len(images))
    n_val = max(1, int(len(images) * fraction))
    return images[order[n_val:]], images[order[:n_val]]


def add_noise(images: FloatImages, noise_factor: float, seed: int) -> FloatImages:
    """The seed recipe's noise: clip(x + noise_factor * N(0, 1), 0, 1), from a fixed draw."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(images + noise_factor * noise, 0.0, 1.0)


def printed_digits(n: int, seed: int) -> FloatImages:
    """Digits that are not MNIST's: typeset 0-9, jittered, framed as MNIST frames its digits.

    Pillow's bundled font, random stroke width and slant, scaled into a 20x20 box and centred by
    centre of mass in 28x28, light on dark. A check that the model learned digits, not MNIST.
    """
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=80)
    out = np.zeros((n, 28, 28, 1), dtype=np.float32)
    for i in range(n):
        canvas = Image.new("L", (128, 128), 0)
        ImageDraw.Draw(canvas).text(
            (64, 64),
            str(i % 10),
            fill=255,
            font=font,
            anchor="mm",
            stroke_width=int(rng.integers(0, 5)),
            stroke_fill=255,
        )
        canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
        digit = canvas.crop(canvas.getbbox())
        scale = 20 / max(digit.size)
        digit = digit.resize(
            (max(1, round(digit.width * scale)), max(1, round(digit.height * scale))), Image.Resampling.LANCZOS
        )
        frame = np.zeros((28, 28), dtype=np.float32)
        pixels = np.asarray(digit, dtype=np.float32) / 255.0
        ys, xs = np.indices(pixels.shape)
        total = pixels.sum()
        cy, cx = (ys * pixels).sum() / total, (xs * pixels).sum() / total
        top = int(np.clip(round(14 - cy), 0, 28 - pixels.shape[0]))
        left = int(np.clip(round(14 - cx), 0, 28 - pixels.shape[1]))
        frame[top : top + pixels.shape[0], left : left + pixels.shape[1]] = pixels
        out[i, :, :, 0] = np.clip(frame, 0.0, 1.0)
    return out
