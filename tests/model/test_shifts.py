"""model/shifts.py: every suite condition and the training augmentation, on a few real digits."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from model.shifts import SUITE, augment, corrupt, low_resolution, resize_box, rotate, run_condition, stroke
from tests.images import mnist_digits


@pytest.fixture(scope="module")
def clean() -> npt.NDArray[np.float32]:
    return (mnist_digits()[:12] / 255.0).astype(np.float32)[..., np.newaxis]


@pytest.mark.parametrize("condition", SUITE, ids=lambda c: c.name)
def test_every_condition_corrupts_and_is_reproducible(clean: npt.NDArray[np.float32], condition: object) -> None:
    target, corrupted = run_condition(condition, clean, seed=3)  # type: ignore[arg-type]
    assert target.shape == corrupted.shape == clean.shape
    assert target.dtype == corrupted.dtype == np.float32
    assert 0.0 <= corrupted.min() <= corrupted.max() <= 1.0
    assert 0.0 <= target.min() <= target.max() <= 1.0
    assert float(np.mean((target - corrupted) ** 2)) > 1e-4  # it did corrupt
    again_target, again = run_condition(condition, clean, seed=3)  # type: ignore[arg-type]
    np.testing.assert_array_equal(again, corrupted)
    np.testing.assert_array_equal(again_target, target)


def test_the_suite_covers_shape_and_noise_shifts() -> None:
    families = {condition.family for condition in SUITE}
    assert families == {"shape", "noise"}
    names = [condition.name for condition in SUITE]
    assert len(names) == len(set(names))
    assert sum(name.startswith("gaussian sigma") for name in names) == 8  # 0.1 to 0.8


def test_shape_shifts_move_the_ink_as_named(clean: npt.NDArray[np.float32]) -> None:
    digit = clean[0, ..., 0]
    ink = float(digit.sum())
    assert stroke(digit, 1).sum() > ink * 1.3
    assert stroke(digit, -1).sum() < ink * 0.7
    rows = np.nonzero(resize_box(digit, 12).max(axis=1) > 0.3)[0]
    assert np.ptp(rows) + 1 <= 14  # a 20 px digit shrunk into a 12 px box
    assert rotate(digit, 15).sum() == pytest.approx(ink, rel=0.1)
    assert low_resolution(digit, 8).shape == (28, 28)


def test_augment_draws_afresh_and_keeps_the_ranges(clean: npt.NDArray[np.float32]) -> None:
    target, corrupted = augment(clean, np.random.default_rng(1))
    assert target.shape == corrupted.shape == clean.shape
    assert 0.0 <= corrupted.min() <= corrupted.max() <= 1.0
    other_target, other = augment(clean, np.random.default_rng(2))
    assert not np.array_equal(other, corrupted)
    assert not np.allclose(target, clean) or not np.allclose(other_target, clean)  # some digits change shape
    noisy = corrupt(clean, np.random.default_rng(3))
    assert float(np.mean((noisy - clean) ** 2)) > 1e-3
