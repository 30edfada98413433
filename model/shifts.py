"""Digits and noise that are not MNIST's test conditions: the robustness suite and augmentation.

Shape shifts change the clean digit (the target moves with it); noise shifts change how the clean
digit is corrupted. ``SUITE`` fixes one setting per condition, for ``model.evaluate``; ``augment``
draws shifts afresh from wider ranges, for training. The two never share their exact settings.
Images are float32 (N, 28, 28, 1) in [0, 1], light digit on dark, as everywhere in ``model/``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from PIL import Image
from scipy import ndimage

from model.data import FloatImages, printed_digits

Rng = np.random.Generator
SIDE = 28
MNIST_BOX = 20  # MNIST's digits are scaled into a 20x20 box


# ---- shape shifts: one 28x28 clean digit in, the shifted clean digit out -------------------------


def _affine(digit: np.ndarray, matrix: np.ndarray, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """``digit`` mapped by ``matrix`` about the frame's centre, then moved by ``shift`` (dy, dx)."""
    centre = np.array([(SIDE - 1) / 2, (SIDE - 1) / 2])
    inverse = np.linalg.inv(matrix)
    offset = centre - inverse @ (centre + np.asarray(shift))
    moved = ndimage.affine_transform(digit, inverse, offset=offset, order=1, mode="constant", cval=0.0)
    return np.asarray(moved, dtype=np.float32)


def rotate(digit: np.ndarray, degrees: float) -> np.ndarray:
    angle = math.radians(degrees)
    return _affine(digit, np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]))


def shear(digit: np.ndarray, amount: float) -> np.ndarray:
    """Slant: x moves by ``amount`` times the height above the centre (positive leans right)."""
    return _affine(digit, np.array([[1.0, 0.0], [-amount, 1.0]]))


def resize_box(digit: np.ndarray, box: float, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The digit scaled from MNIST's 20 px box to ``box`` px, and moved by ``shift`` (dy, dx) px."""
    factor = box / MNIST_BOX
    return _affine(digit, np.array([[factor, 0.0], [0.0, factor]]), shift)


def stroke(digit: np.ndarray, pixels: int) -> np.ndarray:
    """Strokes thickened (``pixels`` > 0) or thinned (< 0) by that many pixels."""
    size = 2 * abs(pixels) + 1
    grow = ndimage.grey_dilation if pixels > 0 else ndimage.grey_erosion
    return np.asarray(grow(digit, size=(size, size)), dtype=np.float32)


def low_resolution(digit: np.ndarray, side: int) -> np.ndarray:
    """Drawn at ``side`` x ``side`` and scaled back up (bicubic), as a small scan is."""
    image = Image.fromarray(digit.astype(np.float32), mode="F")
    small = image.resize((side, side), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(small.resize((SIDE, SIDE), Image.Resampling.BICUBIC), dtype=np.float32), 0.0, 1.0)


def elastic(digit: np.ndarray, alpha: float, sigma: float, rng: Rng) -> np.ndarray:
    """Simard et al.'s elastic distortion: a smooth random displacement field of size ``alpha``."""
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, digit.shape), sigma) * alpha
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, digit.shape), sigma) * alpha
    rows, cols = np.indices(digit.shape)
    moved = ndimage.map_coordinates(digit, [rows + dy, cols + dx], order=1, mode="constant", cval=0.0)
    return np.asarray(moved, dtype=np.float32)


# ---- noise shifts: clean images in, corrupted images out ----------------------------------------


def gaussian(clean: FloatImages, sigma: float, rng: Rng) -> FloatImages:
    return np.clip(clean + sigma * rng.standard_normal(clean.shape, dtype=np.float32), 0.0, 1.0)


def salt_and_pepper(clean: FloatImages, share: float, rng: Rng) -> FloatImages:
    """``share`` of the pixels set to black or white at random."""
    hit = rng.random(clean.shape) < share
    return np.where(hit, (rng.random(clean.shape) < 0.5).astype(np.float32), clean).astype(np.float32)


def poisson(clean: FloatImages, peak: float, rng: Rng) -> FloatImages:
    """Photon noise of a page photographed in dim light: white paper gathers ``peak`` photons."""
    paper = 1.0 - clean
    return (1.0 - np.clip(rng.poisson(paper * peak) / peak, 0.0, 1.0)).astype(np.float32)


def speckle(clean: FloatImages, sigma: float, rng: Rng) -> FloatImages:
    """Multiplicative noise on the paper's brightness."""
    paper = (1.0 - clean) * (1.0 + sigma * rng.standard_normal(clean.shape))
    return (1.0 - np.clip(paper, 0.0, 1.0)).astype(np.float32)


def uniform(clean: FloatImages, half_width: float, rng: Rng) -> FloatImages:
    return np.clip(clean + rng.uniform(-half_width, half_width, clean.shape), 0.0, 1.0).astype(np.float32)


def blurred(clean: FloatImages, blur: float, sigma: float, rng: Rng) -> FloatImages:
    """Out of focus, then noisy."""
    soft = ndimage.gaussian_filter(clean, sigma=(0, blur, blur, 0))
    return gaussian(soft.astype(np.float32), sigma, rng)


def jpeg(clean: FloatImages, quality: int, sigma: float, rng: Rng) -> FloatImages:
    """Noisy, then saved as JPEG at ``quality``: blocks and ringing on top of the noise."""
    noisy = gaussian(clean, sigma, rng)
    out = np.empty_like(noisy)
    for i, image in enumerate(noisy[..., 0]):
        buffer = io.BytesIO()
        Image.fromarray(np.rint(image * 255).astype(np.uint8), mode="L").save(buffer, "JPEG", quality=quality)
        out[i, ..., 0] = np.asarray(Image.open(buffer), dtype=np.float32) / 255.0
    return out


def uneven_light(clean: FloatImages, strength: float, sigma: float, rng: Rng) -> FloatImages:
    """A shadow across the page (a linear gradient at a random angle), then noise."""
    angle = rng.uniform(0, 2 * math.pi, size=(len(clean), 1, 1, 1))
    rows, cols = np.indices((SIDE, SIDE))
    ramp = (np.cos(angle) * cols[..., np.newaxis] + np.sin(angle) * rows[..., np.newaxis]) / (SIDE - 1)
    ramp = ramp - ramp.min(axis=(1, 2, 3), keepdims=True)
    ramp = ramp / np.maximum(ramp.max(axis=(1, 2, 3), keepdims=True), 1e-6)
    shadowed = np.clip(clean + strength * ramp, 0.0, 1.0).astype(np.float32)  # a darker page is lighter here
    return gaussian(shadowed, sigma, rng)


# ---- the suite -----------------------------------------------------------------------------------

SUITE_NOISE = 0.5  # the shape shifts are scored under the service's reference noise


@dataclass(frozen=True)
class Condition:
    """One fixed shift: ``apply(clean, rng)`` gives (target, corrupted)."""

    name: str
    family: str  # "shape" or "noise"
    apply: Callable[[FloatImages, Rng], tuple[FloatImages, FloatImages]]


def _shape(name: str, shift: Callable[[np.ndarray, Rng], np.ndarray]) -> Condition:
    def apply(clean: FloatImages, rng: Rng) -> tuple[FloatImages, FloatImages]:
        target = np.stack([shift(d, rng) for d in clean[..., 0]])[..., np.newaxis].astype(np.float32)
        target = np.clip(target, 0.0, 1.0)
        return target, gaussian(target, SUITE_NOISE, rng)

    return Condition(name, "shape", apply)


def _noise(name: str, corrupt: Callable[[FloatImages, Rng], FloatImages]) -> Condition:
    return Condition(name, "noise", lambda clean, rng: (clean, corrupt(clean, rng)))


def _fixed_gaussian(sigma: float, clean: FloatImages, rng: Rng) -> FloatImages:
    return gaussian(clean, sigma, rng)


def _fixed_impulses(share: float, clean: FloatImages, rng: Rng) -> FloatImages:
    return salt_and_pepper(clean, share, rng)


def _printed(clean: FloatImages, rng: Rng) -> tuple[FloatImages, FloatImages]:
    target = printed_digits(len(clean), int(rng.integers(1 << 31)))
    return target, gaussian(target, SUITE_NOISE, rng)


SUITE: tuple[Condition, ...] = (
    _shape("stroke +1 px", lambda d, r: stroke(d, 1)),
    _shape("stroke -1 px", lambda d, r: stroke(d, -1)),
    _shape("box 12 px", lambda d, r: resize_box(d, 12)),
    _shape("box 16 px", lambda d, r: resize_box(d, 16)),
    _shape("off-centre 4 px", lambda d, r: resize_box(d, MNIST_BOX, tuple(r.choice([-4.0, 4.0], 2)))),
    _shape("rotated 15°", lambda d, r: rotate(d, float(r.choice([-15.0, 15.0])))),
    _shape("slanted (shear 0.3)", lambda d, r: shear(d, float(r.choice([-0.3, 0.3])))),
    _shape("low resolution 8x8", lambda d, r: low_resolution(d, 8)),
    _shape("low resolution 14x14", lambda d, r: low_resolution(d, 14)),
    _shape("elastic (alpha 8, sigma 3)", lambda d, r: elastic(d, 8.0, 3.0, r)),
    Condition("printed digits", "shape", _printed),
    *(_noise(f"gaussian sigma {sigma / 10:.1f}", partial(_fixed_gaussian, sigma / 10)) for sigma in range(1, 9)),
    *(_noise(f"salt and pepper {share:.0%}", partial(_fixed_impulses, share)) for share in (0.1, 0.2, 0.3)),
    _noise("Poisson (peak 4)", lambda c, r: poisson(c, 4.0, r)),
    _noise("speckle 0.5", lambda c, r: speckle(c, 0.5, r)),
    _noise("uniform +-0.6", lambda c, r: uniform(c, 0.6, r)),
    _noise("blur 1 px then sigma 0.3", lambda c, r: blurred(c, 1.0, 0.3, r)),
    _noise("JPEG q30 (sigma 0.3)", lambda c, r: jpeg(c, 30, 0.3, r)),
    _noise("JPEG q75 (sigma 0.3)", lambda c, r: jpeg(c, 75, 0.3, r)),
    _noise("uneven light 0.5 (sigma 0.3)", lambda c, r: uneven_light(c, 0.5, 0.3, r)),
)


def run_condition(condition: Condition, clean: FloatImages, seed: int) -> tuple[FloatImages, FloatImages]:
    """(target, corrupted) for ``condition`` on ``clean``, the same for the same seed."""
    return condition.apply(clean, np.random.default_rng([seed, _stable_hash(condition.name)]))


def _stable_hash(text: str) -> int:
    return int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "little") ^ len(text)


# ---- training augmentation: wider and different ranges, drawn afresh ----------------------------


def augment(clean: FloatImages, rng: Rng, shape_share: float = 0.5) -> tuple[FloatImages, FloatImages]:
    """A training batch: (target, corrupted), each image with its own random shifts.

    About ``shape_share`` of the digits get a shape shift; every image gets one noise, Gaussian
    (0.05 to 0.9) for half of them, another kind for the rest.
    """
    targets = clean.copy()
    for i in np.flatnonzero(rng.random(len(clean)) < shape_share):
        targets[i, ..., 0] = random_shape(clean[i, ..., 0], rng)
    targets = np.clip(targets, 0.0, 1.0)
    return targets, corrupt(targets, rng)


def corrupt(images: FloatImages, rng: Rng) -> FloatImages:
    """Each image corrupted by a noise drawn at random from the training ranges."""
    corrupted = np.empty_like(images)
    kinds = rng.integers(0, len(_NOISES), len(images))
    for kind in np.unique(kinds):
        picked = np.flatnonzero(kinds == kind)
        corrupted[picked] = _NOISES[kind](images[picked], rng)
    return corrupted


def random_shape(digit: np.ndarray, rng: Rng) -> np.ndarray:
    """One shape shift at random from the training ranges (stroke, size and place, angle, slant, resolution, warp)."""
    choice = int(rng.integers(6))
    if choice == 0:
        return stroke(digit, int(rng.choice([-1, 1])))
    if choice == 1:
        return resize_box(digit, float(rng.uniform(10, 22)), tuple(rng.uniform(-5, 5, 2)))
    if choice == 2:
        return rotate(digit, float(rng.uniform(-25, 25)))
    if choice == 3:
        return shear(digit, float(rng.uniform(-0.45, 0.45)))
    if choice == 4:
        return low_resolution(digit, int(rng.integers(7, 17)))
    return elastic(digit, float(rng.uniform(4, 12)), float(rng.uniform(2.5, 4)), rng)


def _random_gaussian(clean: FloatImages, rng: Rng) -> FloatImages:
    sigma = rng.uniform(0.05, 0.9, (len(clean), 1, 1, 1)).astype(np.float32)
    return np.clip(clean + sigma * rng.standard_normal(clean.shape, dtype=np.float32), 0.0, 1.0)


def _random_impulses(clean: FloatImages, rng: Rng) -> FloatImages:
    return salt_and_pepper(clean, float(rng.uniform(0.03, 0.4)), rng)


def _random_light(clean: FloatImages, rng: Rng) -> FloatImages:
    if rng.random() < 0.5:
        return poisson(clean, float(rng.uniform(2, 30)), rng)
    return speckle(clean, float(rng.uniform(0.2, 0.8)), rng)


def _random_soft(clean: FloatImages, rng: Rng) -> FloatImages:
    if rng.random() < 0.5:
        return uniform(clean, float(rng.uniform(0.2, 0.8)), rng)
    return blurred(clean, float(rng.uniform(0.5, 1.5)), float(rng.uniform(0.1, 0.5)), rng)


def _random_photo(clean: FloatImages, rng: Rng) -> FloatImages:
    if rng.random() < 0.5:
        return jpeg(clean, int(rng.integers(15, 91)), float(rng.uniform(0.1, 0.5)), rng)
    return uneven_light(clean, float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.1, 0.5)), rng)


# Gaussian noise for half the images (four entries of eight), every other kind for the rest.
_NOISES: tuple[Callable[[FloatImages, Rng], FloatImages], ...] = (
    *(_random_gaussian,) * 4,
    _random_impulses,
    _random_light,
    _random_soft,
    _random_photo,
)
