"""Is the upload a digit? A small classifier's score, its labelled evaluation and its threshold.

A denoiser's input-output error measures how much noise it removed, not whether the image is a
digit: a printed letter, a blank page or a clean shape all pass it. So the anomaly score is the
output of a small network that reads the model's own 28x28 input beside the denoiser's output
(two channels) and tells eleven classes apart, the ten digits and "not a digit":
``score = P(not a digit) = 1 - P(digit)``. Naming the digit it sees makes it learn each digit's
shape, where a digit / not-digit output settles for less: at the same size it flagged 84 % of the
validation designs' letters instead of 79 %; the denoised channel shows it the strokes that noise
hides (docs/model-design.md).

Positives are digits under every shift of ``model.shifts`` (MNIST and printed); negatives come
from families that are not digits (letters and symbols, blank and uniform images, gradients,
shapes, textures, pure noise, several digits side by side, natural-image crops), every one noisy
as an upload would be. Each family draws from separate sources per split: other fonts, other
photographs, other MNIST digits and other seeds for training, validation (where the threshold is
set) and test (what the card reports).

    python -m model.anomaly --data ../shared/data/mnist.npz --out runs/anomaly   # trains the scorer

The denoiser it reads is a served version's (``--denoiser``, the committed one by default): the
scorer ships with that denoiser's weights, since its second channel is their output.
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
from PIL import Image, ImageDraw

from model.data import (
    TRAINING_SEED,
    VALIDATION_FRACTION,
    FloatImages,
    Labels,
    load_mnist_or_report,
    split_validation,
)
from model.fonts import Design, describe, random_font, split_designs
from model.savedmodel import Predict, load_savedmodel
from model.shifts import SUITE, augment, corrupt, low_resolution, random_shape, resize_box, run_condition, stroke

if TYPE_CHECKING:
    import keras

Rng = np.random.Generator
Family = Callable[[int, Rng], FloatImages]
SIDE = 28
SCORER_FILE = "scorer.weights.h5"
# The committed versions; the highest is served, and its denoiser is the one a new scorer reads.
VERSIONS = Path(__file__).resolve().parent / "artifacts" / "denoiser"
# The flag's target: at most this share of digits flagged, on the validation split.
DIGITS_FLAGGED = 0.01
# The scorer's classes: the ten digits, then this one.
NOT_A_DIGIT = 10

# Glyphs that are digits in most fonts (O, o, I, l, |) are left out of the letters family, and so
# are the single strokes that anyone would read as a 1 (/ ( ) [ ] !).
CHARACTERS = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz+-=?#%&@$*<>{}~^"
LETTERS = "letters and symbols"
TYPESET_DIGITS = "digit: typeset in the split's fonts"
# Printed digits among the training positives: users photograph printed numbers too.
PRINTED_SHARE = 0.25
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


def _typeset(text: str, fonts: tuple[Design, ...], rng: Rng) -> np.ndarray:
    """``text`` in a random design of ``fonts`` as people print and write it, MNIST-framed.

    Any weight or style of the design, stroke thickened, turned, and half the time one of the
    shape shifts the digits train with (thinned, thickened, warped like a hand's stroke...), so
    that how a glyph was drawn says nothing about whether it is a digit.
    """
    _, face = random_font(fonts, rng, int(rng.integers(28, 45)))
    canvas = Image.new("L", (40 + 30 * len(text), 80), 0)
    centre = (canvas.width / 2, 40)
    ImageDraw.Draw(canvas).text(
        centre, text, fill=255, font=face, anchor="mm", stroke_width=int(rng.integers(0, 3)), stroke_fill=255
    )
    # One affine map about the centre: turned by up to 15 degrees, slanted by up to 0.3.
    angle, slant = math.radians(float(rng.uniform(-15, 15))), float(rng.uniform(-0.3, 0.3))
    a, b = math.cos(angle), math.sin(angle) + slant
    d, e = -math.sin(angle), math.cos(angle)
    cx, cy = centre
    canvas = canvas.transform(
        canvas.size, Image.Transform.AFFINE, (a, b, cx - a * cx - b * cy, d, e, cy - d * cx - e * cy),
        Image.Resampling.BILINEAR,
    )  # fmt: skip
    framed = _frame(np.asarray(canvas, np.float32) / 255)
    return np.clip(random_shape(framed, rng), 0, 1) if rng.random() < 0.5 else framed


def letters(fonts: tuple[Design, ...]) -> Family:
    """Letters and symbols typeset in ``fonts``."""

    def make(n: int, rng: Rng) -> FloatImages:
        return np.stack([_typeset(str(rng.choice(list(CHARACTERS))), fonts, rng) for _ in range(n)])

    return make


def typeset_digits(fonts: tuple[Design, ...]) -> Family:
    """Digits typeset in ``fonts`` exactly as ``letters`` typesets its glyphs: positives."""

    def make(n: int, rng: Rng) -> FloatImages:
        return np.stack([_typeset(str(rng.integers(10)), fonts, rng) for _ in range(n)])

    return make


def labelled_typeset_digits(n: int, fonts: tuple[Design, ...], rng: Rng) -> tuple[FloatImages, Labels]:
    """``n`` digits typeset as ``typeset_digits`` does, and which digit each one is."""
    digits = rng.integers(0, 10, n).astype(np.uint8)
    return np.stack([_typeset(str(digit), fonts, rng) for digit in digits]), digits


def blanks(n: int, rng: Rng) -> FloatImages:
    """Uniform images at any level, black and white included."""
    levels = np.where(rng.random(n) < 0.5, rng.choice([0.0, 1.0], n), rng.random(n))
    return np.broadcast_to(levels[:, None, None], (n, SIDE, SIDE)).astype(np.float32)


def gradients(n: int, rng: Rng) -> FloatImages:
    rows, cols = np.indices((SIDE, SIDE)) / (SIDE - 1)
    angle = rng.uniform(0, 2 * math.pi, n)[:, None, None]
    ramp = np.cos(angle) * cols + np.sin(angle) * rows
    ramp = (ramp - ramp.min(axis=(1, 2), keepdims=True)) / np.ptp(ramp, axis=(1, 2), keepdims=True)
    low, high = np.sort(rng.random((2, n)), axis=0)
    images: FloatImages = (low[:, None, None] + ramp * (high - low)[:, None, None]).astype(np.float32)
    return images


def shapes(n: int, rng: Rng) -> FloatImages:
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


def textures(n: int, rng: Rng) -> FloatImages:
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


def noise_only(n: int, rng: Rng) -> FloatImages:
    """Nothing but noise, at any level."""
    return np.clip(rng.random((n, 1, 1)) * rng.random((n, SIDE, SIDE)) * 2, 0, 1).astype(np.float32)


def several_digits(digits: FloatImages, fonts: tuple[Design, ...]) -> Family:
    """Two or three digits side by side, the row MNIST-framed: a number, not a digit.

    Half handwritten (``digits``, gaps of -2 to 6 px, each at its own height), half typeset.
    """

    def handwritten(rng: Rng) -> np.ndarray:
        picked = digits[rng.integers(0, len(digits), int(rng.integers(2, 4))), ..., 0]
        columns = [np.roll(d[:, 4:24], int(rng.integers(-3, 4)), axis=0) for d in picked]
        row = columns[0]
        for column in columns[1:]:
            gap = int(rng.integers(-2, 7))
            if gap < 0:  # touching: the two overlap by -gap columns
                overlap = np.maximum(row[:, gap:], column[:, :-gap])
                row = np.concatenate([row[:, :gap], overlap, column[:, -gap:]], axis=1)
            else:
                row = np.concatenate([row, np.zeros((SIDE, gap), np.float32), column], axis=1)
        return _frame(row)

    def make(n: int, rng: Rng) -> FloatImages:
        out = np.zeros((n, SIDE, SIDE), np.float32)
        for i in range(n):
            if rng.random() < 0.5:
                out[i] = handwritten(rng)
            else:
                out[i] = _typeset("".join(map(str, rng.integers(0, 10, int(rng.integers(2, 4))))), fonts, rng)
        return out

    return make


def cut_digits(digits: FloatImages) -> Family:
    """A digit the frame cuts: 30 to 60 % of its ink beyond one edge, as a careless crop leaves it."""

    def make(n: int, rng: Rng) -> FloatImages:
        out = np.zeros((n, SIDE, SIDE), np.float32)
        for i in range(n):
            digit = digits[int(rng.integers(len(digits))), ..., 0]
            axis, sign = int(rng.integers(2)), int(rng.choice([-1, 1]))
            profile = digit.sum(axis=1 - axis)
            kept = np.cumsum(profile[::-1] if sign > 0 else profile) / max(float(profile.sum()), 1e-6)
            # Shifting by ``s`` towards ``sign`` loses the ink in the last ``s`` rows or columns.
            lost = float(rng.uniform(0.3, 0.6))
            shift = int(np.searchsorted(kept, lost)) + 1
            moved = np.roll(digit, sign * shift, axis=axis)
            edge = slice(0, shift) if sign > 0 else slice(SIDE - shift, SIDE)
            if axis == 0:
                moved[edge, :] = 0
            else:
                moved[:, edge] = 0
            out[i] = moved
        return out

    return make


@cache
def _photo(name: str) -> np.ndarray:
    import skimage.data  # the photographs that ship inside scikit-image

    image = np.asarray(getattr(skimage.data, name)(), dtype=np.float32)
    if image.ndim == 3:
        image = image[..., :3].mean(axis=2)
    return image / max(1.0, float(image.max()))


def photo_crops(split: str) -> Family:
    """Crops of the split's natural photographs, 28 to 160 px square, scaled to 28x28."""

    def make(n: int, rng: Rng) -> FloatImages:
        out = np.zeros((n, SIDE, SIDE), np.float32)
        for i in range(n):
            photo = _photo(str(rng.choice(_PHOTOS[split])))
            side = int(rng.integers(SIDE, min(161, *photo.shape)))
            y, x = rng.integers(0, photo.shape[0] - side + 1), rng.integers(0, photo.shape[1] - side + 1)
            crop = Image.fromarray(photo[y : y + side, x : x + side], "F").resize((SIDE, SIDE), Image.Resampling.BOX)
            out[i] = np.clip(np.asarray(crop), 0, 1)
        return out

    return make


def families(digits: FloatImages, split: str, fonts: tuple[Design, ...]) -> dict[str, Family]:
    """Every negative family, drawing from one split: its ``digits``, photographs and ``fonts``."""
    return {
        LETTERS: letters(fonts),
        "blank and uniform": blanks,
        "gradients": gradients,
        "shapes": shapes,
        "textures": textures,
        "noise only": noise_only,
        "several digits": several_digits(digits, fonts),
        "cut digits": cut_digits(digits),
        "photo crops": photo_crops(split),
    }


# ---- labelled sets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Labelled:
    """Model inputs (noisy, 28x28), 1 for a digit, the group each came from and its font design ("" if none)."""

    images: FloatImages
    labels: np.ndarray
    groups: np.ndarray
    designs: np.ndarray


def _noisy_negatives(clean: FloatImages, rng: Rng) -> FloatImages:
    """Negatives as they would reach the model: a quarter of them inverted, all of them noisy."""
    flip = rng.random(len(clean)) < 0.25
    clean = np.where(flip[:, None, None], 1.0 - clean, clean)[..., np.newaxis].astype(np.float32)
    return corrupt(clean, rng)


def _typeset_by_design(
    typeset: Callable[[tuple[Design, ...]], Family], n: int, fonts: tuple[Design, ...], rng: Rng
) -> tuple[FloatImages, list[str]]:
    """``n`` typeset images, the designs taking turns, so each is measured alone too."""
    designs = [fonts[i % len(fonts)] for i in range(n)]
    images = np.stack([typeset((design,))(1, rng)[0] for design in designs])
    return images, [design.name for design in designs]


def evaluation_set(
    digits: FloatImages, split: str, per_group: int, seed: int, fonts: tuple[Design, ...] | None = None
) -> Labelled:
    """Digits under every suite condition and typeset in the split's fonts, and every negative family,
    ``per_group`` of each. ``fonts``: the split's designs unless given."""
    fonts = split_designs(split) if fonts is None else fonts
    rng = np.random.default_rng([seed, len(split)])
    images, labels, groups, designs = [], [], [], []
    for condition in SUITE:
        picked = digits[rng.choice(len(digits), per_group, replace=len(digits) < per_group)]
        _, corrupted = run_condition(condition, picked, seed)
        images.append(corrupted)
        groups += [f"digit: {condition.name}"] * per_group
        designs += [""] * per_group
    typeset, names = _typeset_by_design(typeset_digits, per_group, fonts, rng)
    images.append(corrupt(typeset[..., np.newaxis], rng))
    groups += [TYPESET_DIGITS] * per_group
    designs += names
    labels = [np.ones(len(groups))]
    for name, family in families(digits, split, fonts).items():
        if name == LETTERS:
            clean, names = _typeset_by_design(letters, per_group, fonts, rng)
        else:
            clean, names = family(per_group, rng), [""] * per_group
        images.append(_noisy_negatives(clean, rng))
        labels.append(np.zeros(per_group))
        groups += [name] * per_group
        designs += names
    return Labelled(
        np.concatenate(images).astype(np.float32), np.concatenate(labels), np.array(groups), np.array(designs)
    )


# Handwritten training digits drawn first in a shape the suite's digits are most often flagged in.
HARD_SHARE = 0.2
# Digits turned into shapes that are not digits: mirrored (those whose mirror image is no digit;
# a 9 written upright would be its own) or turned a quarter (an 8 or 0 stays itself). Negatives in
# training only: they teach that a hand's strokes make a digit only in a digit's shape.
_MIRRORED, _TURNED = (2, 3, 4, 5, 6, 7), (1, 2, 3, 4, 5, 6, 7, 9)
TURNED_DIGITS = "turned digits"


def hard_shape(digit: np.ndarray, rng: Rng) -> np.ndarray:
    """Thinned strokes (three times in five), or a 10-14 px box, or a 7-10 px scan."""
    draw = rng.random()
    if draw < 0.6:
        return stroke(digit, -1)
    if draw < 0.8:
        return resize_box(digit, float(rng.uniform(10, 14)), tuple(rng.uniform(-3, 3, 2)))
    return low_resolution(digit, int(rng.integers(7, 11)))


def turned_digits(digits: FloatImages, labels: Labels) -> Family:
    """Handwritten digits mirrored or turned a quarter, half each, as ``_MIRRORED`` and ``_TURNED`` allow."""
    mirrored = digits[np.isin(labels, _MIRRORED), ..., 0]
    turned = digits[np.isin(labels, _TURNED), ..., 0]

    def make(n: int, rng: Rng) -> FloatImages:
        out = np.zeros((n, SIDE, SIDE), np.float32)
        for i in range(n):
            if rng.random() < 0.5:
                out[i] = mirrored[int(rng.integers(len(mirrored)))][:, ::-1]
            else:
                out[i] = np.rot90(turned[int(rng.integers(len(turned)))], int(rng.choice([1, 3])))
        return out

    return make


# Negatives per batch by family: letters (the hardest) most; blanks and pure noise as often as
# numbers, since with the hard digits a scorer trained on half as many passed more of them (78 %
# of the test's blanks flagged against v8's 88 %: docs/scorer-two-channels.json); gradients and
# textures least.
FAMILY_WEIGHTS = {
    LETTERS: 0.35,
    "several digits": 0.15,
    "cut digits": 0.1,
    "shapes": 0.1,
    "photo crops": 0.1,
    "textures": 0.05,
    "blank and uniform": 0.15,
    "gradients": 0.05,
    "noise only": 0.15,
    TURNED_DIGITS: 0.1,
}


class TrainingBatches:
    """Half digits (MNIST augmented as the denoiser's training is, ``HARD_SHARE`` of them first
    given a hard shape, and typeset), half negatives, fresh every batch, from the training split's
    fonts and photographs; each labelled with its class: the digit it shows, or ``NOT_A_DIGIT``."""

    def __init__(self, digits: FloatImages, labels: Labels, batch_size: int, batches: int, seed: int) -> None:
        self.digits, self.labels = digits, labels
        self.batch_size, self.batches, self.seed = batch_size, batches, seed
        self.fonts = split_designs("train")
        self.families = families(digits, "train", self.fonts) | {TURNED_DIGITS: turned_digits(digits, labels)}
        self.weights = np.array([FAMILY_WEIGHTS[name] for name in self.families])

    def batch(self, epoch: int, index: int) -> tuple[FloatImages, np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch, index])
        half = self.batch_size // 2
        printed = int(rng.binomial(half, PRINTED_SHARE))
        picked = rng.integers(0, len(self.digits), half - printed)
        clean = self.digits[picked].copy()
        for i in np.flatnonzero(rng.random(len(picked)) < HARD_SHARE):
            clean[i, ..., 0] = hard_shape(clean[i, ..., 0], rng)
        _, handwritten = augment(clean, rng)
        typeset, typeset_labels = labelled_typeset_digits(printed, self.fonts, rng)
        typeset = corrupt(typeset[..., np.newaxis], rng)
        kinds = rng.choice(len(self.families), half, p=self.weights / self.weights.sum())
        negatives = np.concatenate(
            [
                family(int((kinds == k).sum()), rng)
                for k, family in enumerate(self.families.values())
                if (kinds == k).any()
            ]
        )
        x = np.concatenate([handwritten, typeset, _noisy_negatives(negatives, rng)])
        y = np.concatenate([self.labels[picked], typeset_labels, np.full(len(negatives), NOT_A_DIGIT)])
        return x, y.astype(np.int32)


# ---- the scorer ---------------------------------------------------------------------------------


def build_scorer() -> keras.Model:
    """A small CNN: the eleven classes' probabilities, ten digits and ``NOT_A_DIGIT``, for a 28x28
    model input and its denoised image as two channels (about 0.2 M parameters, 1.8 M multiply-adds).

    Half the channels of v6's scorer (32, 64, 64: 0.33 ms per image at batch 16 on OpenVINO in a
    one-off check on this busy machine, against the 0.1 ms the flag may cost): a quarter of its work.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(SIDE, SIDE, 2), name="input_and_denoised")
    x = layers.Conv2D(16, 3, activation="relu", padding="same")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)
    x = layers.Flatten()(x)  # the whole frame: two digits side by side look unlike one
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(128, activation="relu")(x)
    outputs = layers.Dense(NOT_A_DIGIT + 1, activation="softmax", name="p_class")(x)
    return keras.Model(inputs, outputs, name="digit-scorer")


def served_score(scorer: keras.Model, images: Any, denoised: Any) -> Any:
    """The score a version serves, as a graph: P(not a digit) for model inputs and their denoised images."""
    import keras

    return scorer(keras.ops.concatenate([images, denoised], axis=-1), training=False)[:, NOT_A_DIGIT]


def scorer_input(images: FloatImages, denoise: Predict) -> FloatImages:
    """Model inputs beside their denoised images: the scorer's two channels, as numpy."""
    return np.concatenate([images, np.asarray(denoise(images))], axis=-1)


def class_probabilities(scorer: keras.Model, denoise: Predict) -> Callable[[FloatImages], Any]:
    """The scorer as a function of model inputs alone: ``denoise`` gives its second channel."""
    return lambda images: scorer(scorer_input(images, denoise), training=False)


def anomaly_scores(scorer: Callable[[FloatImages], Any], images: FloatImages) -> np.ndarray:
    """P(not a digit), batch by batch, from the scorer's class probabilities."""
    parts = [np.asarray(scorer(images[i : i + 1024]))[:, NOT_A_DIGIT] for i in range(0, len(images), 1024)]
    return np.concatenate(parts)


def roc_auc(scores: np.ndarray, anomalous: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random anomaly scores above a random digit."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    positives = anomalous.astype(bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibrate(scores: np.ndarray, labels: np.ndarray, share: float = DIGITS_FLAGGED) -> float:
    """The threshold that flags ``share`` of the digits: their (1 - share) quantile."""
    return float(np.quantile(scores[labels == 1], 1 - share))


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
        "flagged_by_design": {
            str(group): {
                str(design): round(float(flagged[(data.groups == group) & (data.designs == design)].mean()), 4)
                for design in sorted(set(data.designs[data.groups == group]))
            }
            for group in dict.fromkeys(data.groups[data.designs != ""])
        },
        "images": {"digits": int(digits.sum()), "non_digits": int((~digits).sum())},
    }


def train_scorer(
    digits: FloatImages, labels: Labels, denoise: Predict, epochs: int, batches: int, seed: int
) -> keras.Model:
    import keras

    keras.utils.set_random_seed(seed)
    scorer = build_scorer()
    # Cosine decay to 0: the last epochs settle instead of jumping at a constant rate.
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=epochs * batches)
    scorer.compile(
        optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    source = TrainingBatches(digits, labels, 256, batches, seed)
    for epoch in range(epochs):
        started = time.perf_counter()
        losses = []
        for index in range(batches):
            x, y = source.batch(epoch, index)
            losses.append(scorer.train_on_batch(scorer_input(x, denoise), y, return_dict=True))
        loss = float(np.mean([entry["loss"] for entry in losses]))
        print(f"epoch {epoch + 1}/{epochs}: loss {loss:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
    return scorer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.anomaly", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="Keras-layout mnist.npz (default: the Keras download)")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batches", type=int, default=200, help="batches of 256 per epoch")
    parser.add_argument("--per-group", type=int, default=200, help="validation images per group")
    parser.add_argument(
        "--digits-flagged", type=float, default=DIGITS_FLAGGED, help="the share of validation digits the flag may take"
    )
    parser.add_argument(
        "--recalibrate", action="store_true", help="only set the threshold again, for the scorer already in --out"
    )
    parser.add_argument(
        "--denoiser",
        type=Path,
        default=None,
        help="the version whose denoiser gives the second channel (default: the served one)",
    )
    parser.add_argument("--seed", type=int, default=TRAINING_SEED)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    mnist = load_mnist_or_report(args.data)
    if mnist is None:
        return 2
    command = "python -m model.anomaly " + " ".join(sys.argv[1:] if argv is None else argv)
    x_fit, x_val = split_validation(mnist.x_train, VALIDATION_FRACTION, args.seed)
    y_fit, _ = split_validation(mnist.y_train, VALIDATION_FRACTION, args.seed)
    if args.recalibrate:
        record = json.loads((args.out / "scorer.json").read_text()) | {"calibration": command}
        denoise = load_savedmodel(Path(record["denoiser"]))
        scorer = build_scorer()
        scorer.load_weights(args.out / SCORER_FILE)
    else:
        served = max((p for p in VERSIONS.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        denoiser = args.denoiser or Path(os.path.relpath(served))
        denoise = load_savedmodel(denoiser)
        record = {
            "command": command,
            "epochs": args.epochs,
            "batches_per_epoch": args.batches,
            "seed": args.seed,
            "per_group": args.per_group,
            "denoiser": str(denoiser),
            "fonts": describe(),
        }
        scorer = train_scorer(x_fit, y_fit, denoise, args.epochs, args.batches, args.seed)
        args.out.mkdir(parents=True, exist_ok=True)
        scorer.save_weights(args.out / SCORER_FILE)
    validation = evaluation_set(x_val, "validation", record["per_group"], seed=1)
    scores = anomaly_scores(class_probabilities(scorer, denoise), validation.images)
    threshold = calibrate(scores, validation.labels, args.digits_flagged)
    record |= {
        "digits_flagged": args.digits_flagged,
        "threshold": threshold,
        "validation": report(scores, validation, threshold),
    }
    (args.out / "scorer.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["validation"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
