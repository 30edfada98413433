"""Training batches of (noisy, clean) digits, for any Keras backend."""

from __future__ import annotations

import math

import keras
import numpy as np

from model.data import FloatImages, add_noise
from model.shifts import augment


class NoisyBatches(keras.utils.PyDataset):  # type: ignore[misc]
    """(noisy, clean) batches in a new order every epoch.

    Either one fixed noise draw for the whole run (``fixed_noise``: the seed recipe), or fresh
    noise every batch with a noise factor per image drawn from ``noise_range``; or, with
    ``augmented``, shape and noise shifts of every kind drawn afresh (``model.shifts.augment``).
    Fresh draws are a function of (seed, epoch, batch), so a run is reproducible whatever order
    Keras asks in.
    """

    def __init__(
        self,
        clean: FloatImages,
        batch_size: int,
        seed: int,
        *,
        fixed_noise: float | None = None,
        noise_range: tuple[float, float] | None = None,
        augmented: bool = False,
        plain_share: float = 0.0,
    ) -> None:
        super().__init__()
        if (fixed_noise is None) == (noise_range is None):
            raise ValueError("give exactly one of fixed_noise and noise_range")
        if augmented and fixed_noise is not None:
            raise ValueError("augmentation draws its noise afresh: it needs noise_range, not fixed_noise")
        self.augmented = augmented
        self.plain_share = plain_share  # of an augmented batch: MNIST's own digits, Gaussian noise only
        self.clean, self.batch_size, self.seed = clean, batch_size, seed
        self.fixed_noisy = None if fixed_noise is None else add_noise(clean, fixed_noise, seed)
        self.noise_range = noise_range or (0.0, 0.0)
        self.epoch = 0
        self.order = self._permutation()

    def __len__(self) -> int:
        return math.ceil(len(self.clean) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[FloatImages, FloatImages]:
        picked = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        clean = self.clean[picked]
        if self.fixed_noisy is not None:
            return self.fixed_noisy[picked], clean
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.augmented:
            targets, corrupted = augment(clean, rng)
            plain = np.flatnonzero(rng.random(len(clean)) < self.plain_share)
            targets[plain] = clean[plain]
            corrupted[plain] = self._gaussian(clean[plain], rng)
            return corrupted, targets
        return self._gaussian(clean, rng), clean

    def _gaussian(self, clean: FloatImages, rng: np.random.Generator) -> FloatImages:
        factor = rng.uniform(*self.noise_range, size=(len(clean), 1, 1, 1)).astype(np.float32)
        noisy = clean + factor * rng.standard_normal(clean.shape, dtype=np.float32)
        return np.clip(noisy, 0.0, 1.0)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._permutation()

    def _permutation(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.clean))
