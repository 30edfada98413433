"""Is the upload a digit? A small classifier's score, its labelled evaluation and its threshold.

A denoiser's input-output error measures how much noise it removed, not whether the image is a
digit: a printed letter, a blank page or a clean shape all pass it. So the anomaly score is the
output of a small digit / not-digit network that reads the model's own 28x28 input:
``score = 1 - P(digit)``.

Positives are digits under every shift of ``model.shifts`` (MNIST and printed); negatives come
from families that are not digits (letters and symbols, blank and uniform images, gradients,
shapes, textures, pure noise, several digits side by side, natural-image crops), every one noisy
as an upload would be. Each family draws from separate sources per split: other fonts, other
photographs, other MNIST digits and other seeds for training, validation (where the threshold is
set) and test (what the card reports).

    python -m model.anomaly --data ../shared/data/mnist.npz --out runs/anomaly   # trains the scorer
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from model.data import TRAINING_SEED, VALIDATION_FRACTION, FloatImages, load_mnist_or_report, split_validation
from model.shifts import SUITE, augment, corrupt, run_condition

if TYPE_CHECKING:
    import keras

Rng = np.random.Generator
SIDE = 28
SCORER_FILE = "scorer.weights.h5"
# The flag's target: at most this share of digits flagged, on the validation split.
DIGITS_FLAGGED = 0.01

# Glyphs that are digits in most fonts (O, o, I, l, |) are left out of the letters family.
CHARACTERS = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz+-=?!#%&@$*/<>()[]{}~^"
_FONTS = {
    "train": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf", "cmr10.ttf"),
    "validation": ("DejaVuSansMono.ttf", "cmss10.ttf"),
    "test": ("STIXGeneral.ttf", "DejaVuSans-Oblique.ttf", "cmtt10.ttf", "DejaVuSerif-Bold.ttf"),
}
_PHOTOS = {
    "train": ("astronaut", "coffee", "chelsea", "rocket", "brick", "grass"),
    "validation": ("horse", "clock"),
    "test": ("camera", "moon", "coins", "gravel", "page"),
}


# ---- clean negatives, one generator per family -------------------------------------------------


def _frame(canvas: np.ndarray) -> np.ndarray:
    """A drawing framed as MNIST frames its digits: 20 px box, centred by mass, light on dark."""
    ys, xs = np.nonzero(canvas > 0.05)
    if len(ys) == 0:
        return np.zeros((SIDE, SIDE), np.float32)
    crop = canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = 20 / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small = np.clip(np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(size, Image.Resampling.BOX)), 0, 1)
    total = float(small.sum())
    rows, cols = np.indices(small.shape)
    cy = float((rows * small).sum() / total) if total else small.shape[0] / 2
    cx = float((cols * small).sum() / total) if total else small.shape[1] / 2
    top = int(np.clip(round(13.5 - cy), 0, SIDE - small.shape[0]))
    left = int(np.clip(round(13.5 - cx), 0, SIDE - small.shape[1]))
    out = np.zeros((SIDE, SIDE), np.float32)
    out[top : top + small.shape[0], left : left + small.shape[1]] = small
    return out


@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    import matplotlib  # its bundled fonts: the same on every machine, no system font needed

    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name), size)


def letters(n: int, rng: Rng, split: str) -> FloatImages:
    """Letters and symbols in the split's fonts, stroke and slant jittered, MNIST-framed."""
    out = np.zeros((n, SIDE, SIDE), np.float32)
    for i in range(n):
        canvas = Image.new("L", (96, 96), 0)
        font = _font(str(rng.choice(_FONTS[split])), 64)
        ImageDraw.Draw(canvas).text(
            (48, 48), str(rng.choice(list(CHARACTERS))), fill=255, font=font, anchor="mm",
            stroke_width=int(rng.integers(0, 3)), stroke_fill=255,
        )  # fmt: skip
        canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
        out[i] = _frame(np.asarray(canvas, np.float32) / 255)
    return out


def blanks(n: int, rng: Rng, split: str) -> FloatImages:
    """Uniform images at any level, black and white included."""
    levels = np.where(rng.random(n) < 0.5, rng.choice([0.0, 1.0], n), rng.random(n))
    return np.broadcast_to(levels[:, None, None], (n, SIDE, SIDE)).astype(np.float32)


def gradients(n: int, rng: Rng, split: str) -> FloatImages:
    rows, cols = np.indices((SIDE, SIDE)) / (SIDE - 1)
    angle = rng.uniform(0, 2 * math.pi, n)[:, None, None]
    ramp = np.cos(angle) * cols + np.sin(angle) * rows
    ramp = (ramp - ramp.min(axis=(1, 2), keepdims=True)) / np.ptp(ramp, axis=(1, 2), keepdims=True)
    low, high = np.sort(rng.random((2, n)), axis=0)
    images: FloatImages = (low[:, None, None] + ramp * (high - low)[:, None, None]).astype(np.float32)
    return images


def shapes(n: int, rng: Rng, split: str) -> FloatImages:
    """Filled or outlined rectangles, triangles, stars and crosses; filled discs (a ring is a 0)."""
    out = np.zeros((n, SIDE, SIDE), np.float32)
    for i in range(n):
        canvas = Image.new("L", (SIDE * 3, SIDE * 3), 0)
        draw = ImageDraw.Draw(canvas)
        x0, y0 = rng.uniform(3, 30, 2)
        x1, y1 = rng.uniform(54, 81, 2)
        width = int(rng.integers(3, 10))
        kind = int(rng.integers(5))
        fill = 255 if rng.random() < 0.5 else None
        if kind == 0:
            draw.rectangle((x0, y0, x1, y1), fill=fill, outline=255, width=width)
        elif kind == 1:
            draw.polygon([(x0, y1), ((x0 + x1) / 2, y0), (x1, y1)], fill=fill, outline=255, width=width)
        elif kind == 2:
            draw.ellipse((x0, y0, x1, y1), fill=255)
        elif kind == 3:
            points = [
                (42 + r * math.cos(a) * 38, 42 + r * math.sin(a) * 38)
                for k in range(10)
                for r, a in [((1.0 if k % 2 == 0 else 0.45), k * math.pi / 5 + rng.uniform(0, 0.2))]
            ]
            draw.polygon(points, fill=fill, outline=255, width=width)
        else:
            draw.line((x0, y0, x1, y1), fill=255, width=width)
            draw.line((x0, y1, x1, y0), fill=255, width=width)
        out[i] = np.asarray(canvas.resize((SIDE, SIDE), Image.Resampling.BOX), np.float32) / 255
    return out


def textures(n: int, rng: Rng, split: str) -> FloatImages:
    """Gratings, checkerboards and smooth random blobs, filling the frame."""
    from scipy import ndimage

    rows, cols = np.indices((SIDE, SIDE))
    out = np.zeros((n, SIDE, SIDE), np.float32)
    for i in range(n):
        kind = int(rng.integers(3))
        if kind == 0:
            angle, period = rng.uniform(0, math.pi), rng.uniform(3, 12)
            phase = (np.cos(angle) * cols + np.sin(angle) * rows) * 2 * math.pi / period
            out[i] = 0.5 + 0.5 * np.sin(phase + rng.uniform(0, 2 * math.pi))
        elif kind == 1:
            cell = int(rng.integers(2, 8))
            out[i] = ((rows // cell + cols // cell) % 2).astype(np.float32)
        else:
            blobs = ndimage.gaussian_filter(rng.standard_normal((SIDE, SIDE)), rng.uniform(1, 3))
            out[i] = (blobs > np.quantile(blobs, rng.uniform(0.3, 0.7))).astype(np.float32)
    return out


def noise_only(n: int, rng: Rng, split: str) -> FloatImages:
    """Nothing but noise, at any level."""
    return np.clip(rng.random((n, 1, 1)) * rng.random((n, SIDE, SIDE)) * 2, 0, 1).astype(np.float32)


def several_digits(digits: FloatImages) -> Callable[[int, Rng, str], FloatImages]:
    """Two or three of ``digits`` side by side, the row MNIST-framed: a number, not a digit."""

    def make(n: int, rng: Rng, split: str) -> FloatImages:
        out = np.zeros((n, SIDE, SIDE), np.float32)
        for i in range(n):
            count = int(rng.integers(2, 4))
            picked = digits[rng.integers(0, len(digits), count), ..., 0]
            out[i] = _frame(np.concatenate(list(picked[:, :, 4:24]), axis=1))
        return out

    return make


@cache
def _photo(name: str) -> np.ndarray:
    import skimage.data  # the photographs that ship inside scikit-image

    image = np.asarray(getattr(skimage.data, name)(), dtype=np.float32)
    if image.ndim == 3:
        image = image[..., :3].mean(axis=2)
    return image / max(1.0, float(image.max()))


def photo_crops(n: int, rng: Rng, split: str) -> FloatImages:
    """Crops of natural photographs, 28 to 160 px square, scaled to 28x28."""
    out = np.zeros((n, SIDE, SIDE), np.float32)
    for i in range(n):
        photo = _photo(str(rng.choice(_PHOTOS[split])))
        side = int(rng.integers(SIDE, min(161, *photo.shape)))
        y, x = rng.integers(0, photo.shape[0] - side + 1), rng.integers(0, photo.shape[1] - side + 1)
        crop = Image.fromarray(photo[y : y + side, x : x + side], "F").resize((SIDE, SIDE), Image.Resampling.BOX)
        out[i] = np.clip(np.asarray(crop), 0, 1)
    return out


Family = Callable[[int, Rng, str], FloatImages]


def families(digits: FloatImages) -> dict[str, Family]:
    """Every negative family; ``digits`` (of the split) for the several-digits family."""
    return {
        "letters and symbols": letters,
        "blank and uniform": blanks,
        "gradients": gradients,
        "shapes": shapes,
        "textures": textures,
        "noise only": noise_only,
        "several digits": several_digits(digits),
        "photo crops": photo_crops,
    }


# ---- labelled sets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Labelled:
    """Model inputs (noisy, 28x28), 1 for a digit, and the group each came from."""

    images: FloatImages
    labels: np.ndarray
    groups: np.ndarray


def _noisy_negatives(clean: FloatImages, rng: Rng) -> FloatImages:
    """Negatives as they would reach the model: half of them inverted, all of them noisy."""
    flip = rng.random(len(clean)) < 0.25
    clean = np.where(flip[:, None, None], 1.0 - clean, clean)[..., np.newaxis].astype(np.float32)
    return corrupt(clean, rng)


def evaluation_set(digits: FloatImages, split: str, per_group: int, seed: int) -> Labelled:
    """Digits under every suite condition, and every negative family, ``per_group`` of each."""
    rng = np.random.default_rng([seed, len(split)])
    images, labels, groups = [], [], []
    for condition in SUITE:
        picked = digits[rng.choice(len(digits), per_group, replace=len(digits) < per_group)]
        _, corrupted = run_condition(condition, picked, seed)
        images.append(corrupted)
        labels.append(np.ones(per_group))
        groups += [f"digit: {condition.name}"] * per_group
    for name, family in families(digits).items():
        images.append(_noisy_negatives(family(per_group, rng, split), rng))
        labels.append(np.zeros(per_group))
        groups += [name] * per_group
    return Labelled(np.concatenate(images).astype(np.float32), np.concatenate(labels), np.array(groups))


class TrainingBatches:
    """Half digits (augmented as the denoiser's training is), half negatives, fresh every batch."""

    def __init__(self, digits: FloatImages, batch_size: int, batches: int, seed: int) -> None:
        self.digits, self.batch_size, self.batches, self.seed = digits, batch_size, batches, seed
        self.families = families(digits)

    def batch(self, epoch: int, index: int) -> tuple[FloatImages, np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch, index])
        half = self.batch_size // 2
        _, positives = augment(self.digits[rng.integers(0, len(self.digits), half)], rng)
        kinds = rng.integers(0, len(self.families), half)
        negatives = np.concatenate(
            [
                family(int((kinds == k).sum()), rng, "train")
                for k, family in enumerate(self.families.values())
                if (kinds == k).any()
            ]
        )
        x = np.concatenate([positives, _noisy_negatives(negatives, rng)])
        y = np.concatenate([np.ones(half), np.zeros(len(negatives))]).astype(np.float32)
        return x, y


# ---- the scorer ---------------------------------------------------------------------------------


def build_scorer() -> keras.Model:
    """A small CNN: P(digit) for a 28x28 model input (about 0.4 M parameters)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(SIDE, SIDE, 1), name="model_input")
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    x = layers.Flatten()(x)  # the whole frame: two digits side by side look unlike one
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(128, activation="relu")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="p_digit")(x)
    return keras.Model(inputs, outputs, name="digit-scorer")


def anomaly_scores(scorer: Callable[[FloatImages], Any], images: FloatImages) -> np.ndarray:
    """1 - P(digit), batch by batch."""
    parts = [np.asarray(scorer(images[i : i + 1024])).reshape(-1) for i in range(0, len(images), 1024)]
    return 1.0 - np.concatenate(parts)


def roc_auc(scores: np.ndarray, anomalous: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random anomaly scores above a random digit."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    positives = anomalous.astype(bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibrate(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold that flags ``DIGITS_FLAGGED`` of the digits: their (1 - share) quantile."""
    return float(np.quantile(scores[labels == 1], 1 - DIGITS_FLAGGED))


def report(scores: np.ndarray, data: Labelled, threshold: float) -> dict[str, Any]:
    flagged = scores > threshold
    digits = data.labels == 1
    per_group = {
        str(group): round(float(flagged[data.groups == group].mean()), 4) for group in dict.fromkeys(data.groups)
    }
    return {
        "roc_auc": round(roc_auc(scores, ~digits), 4),
        "threshold": round(threshold, 6),
        "digits_flagged": round(float(flagged[digits].mean()), 4),
        "non_digits_flagged": round(float(flagged[~digits].mean()), 4),
        "flagged_by_group": per_group,
        "images": {"digits": int(digits.sum()), "non_digits": int((~digits).sum())},
    }


def train_scorer(digits: FloatImages, epochs: int, batches: int, seed: int) -> keras.Model:
    import keras

    keras.utils.set_random_seed(seed)
    scorer = build_scorer()
    scorer.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    source = TrainingBatches(digits, 256, batches, seed)
    for epoch in range(epochs):
        started = time.perf_counter()
        losses = [scorer.train_on_batch(*source.batch(epoch, i), return_dict=True) for i in range(batches)]
        loss = float(np.mean([entry["loss"] for entry in losses]))
        print(f"epoch {epoch + 1}/{epochs}: loss {loss:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
    return scorer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.anomaly", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="Keras-layout mnist.npz (default: the Keras download)")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batches", type=int, default=200, help="batches of 256 per epoch")
    parser.add_argument("--per-group", type=int, default=200, help="validation images per group")
    parser.add_argument("--seed", type=int, default=TRAINING_SEED)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    mnist = load_mnist_or_report(args.data)
    if mnist is None:
        return 2
    x_fit, x_val = split_validation(mnist.x_train, VALIDATION_FRACTION, args.seed)
    scorer = train_scorer(x_fit, args.epochs, args.batches, args.seed)
    validation = evaluation_set(x_val, "validation", args.per_group, seed=1)
    scores = anomaly_scores(lambda x: scorer(x, training=False), validation.images)
    threshold = calibrate(scores, validation.labels)
    args.out.mkdir(parents=True, exist_ok=True)
    scorer.save_weights(args.out / SCORER_FILE)
    record = {
        "command": "python -m model.anomaly " + " ".join(sys.argv[1:] if argv is None else argv),
        "epochs": args.epochs,
        "batches_per_epoch": args.batches,
        "seed": args.seed,
        "per_group": args.per_group,
        "threshold": threshold,
        "validation": report(scores, validation, threshold),
    }
    (args.out / "scorer.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["validation"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
