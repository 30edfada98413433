"""model/anomaly.py: the negative families, the labelled sets and the score's statistics."""

from __future__ import annotations

import numpy as np
import pytest

from model.anomaly import (
    LETTERS,
    NOT_A_DIGIT,
    TYPESET_DIGITS,
    TrainingBatches,
    calibrate,
    cut_digits,
    evaluation_set,
    families,
    hard_shape,
    labelled_typeset_digits,
    report,
    roc_auc,
    turned_digits,
)
from model.fonts import split_designs
from model.shifts import SUITE
from tests.images import mnist_digits

DIGITS = (mnist_digits()[:60] / 255.0).astype(np.float32)[..., np.newaxis]


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_every_family_draws_images_from_its_split(split: str) -> None:
    for name, family in families(DIGITS, split, split_designs(split)).items():
        images = family(6, np.random.default_rng(0))
        assert images.shape == (6, 28, 28), name
        assert 0.0 <= images.min() <= images.max() <= 1.0, name


def test_the_evaluation_set_has_every_group_labelled() -> None:
    data = evaluation_set(DIGITS, "test", per_group=4, seed=0)
    groups = list(dict.fromkeys(data.groups))
    assert len(groups) == len(SUITE) + 1 + len(families(DIGITS, "test", split_designs("test")))
    assert data.images.shape == (4 * len(groups), 28, 28, 1)
    digit_groups = {g for g in groups if g.startswith("digit: ")}
    assert TYPESET_DIGITS in digit_groups
    assert all(data.labels[data.groups == g].all() for g in digit_groups)
    assert not data.labels[~np.isin(data.groups, list(digit_groups))].any()


def test_typeset_groups_name_each_glyphs_design_and_only_the_splits() -> None:
    data = evaluation_set(DIGITS, "validation", per_group=8, seed=0)
    for group in (LETTERS, TYPESET_DIGITS):
        used = set(data.designs[data.groups == group])
        assert used == {d.name for d in split_designs("validation")}
    assert set(data.designs[~np.isin(data.groups, [LETTERS, TYPESET_DIGITS])]) == {""}


def test_cut_digits_lose_a_third_to_three_fifths_of_their_ink() -> None:
    rng = np.random.default_rng(0)
    cut = cut_digits(DIGITS)(40, rng)
    whole = DIGITS[..., 0].sum(axis=(1, 2))
    kept = cut.sum(axis=(1, 2))
    # Each cut digit keeps less ink than the largest digit holds and more than nothing.
    assert (kept > 0).all()
    assert kept.max() <= 0.75 * whole.max()
    edge_ink = np.concatenate([cut[:, 0, :], cut[:, -1, :], cut[:, :, 0], cut[:, :, -1]], axis=1).max(axis=1)
    assert (edge_ink > 0.3).mean() > 0.8  # the cut shows at the frame's edge


def test_training_batches_are_half_digits_labelled_with_the_digit_they_show() -> None:
    # Every MNIST digit labelled 7: the handwritten positives come first and carry it.
    sevens = np.full(len(DIGITS), 7, np.uint8)
    x, y = TrainingBatches(DIGITS, sevens, batch_size=32, batches=1, seed=0).batch(0, 0)
    assert x.shape == (32, 28, 28, 1)
    assert y.shape == (32,)
    assert (y[16:] == NOT_A_DIGIT).all()
    assert y[0] == 7
    assert set(y[:16]) <= set(range(10))


def test_typeset_digits_say_which_digit_they_are() -> None:
    rng = np.random.default_rng(4)
    images, digits = labelled_typeset_digits(20, split_designs("train"), rng)
    assert images.shape == (20, 28, 28)
    assert digits.shape == (20,)
    assert set(digits) <= set(range(10))
    assert images.max() > 0.5


def test_roc_auc_and_calibration() -> None:
    anomalous = np.array([0, 0, 0, 1, 1, 1], bool)
    assert roc_auc(np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), anomalous) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1]), anomalous) == 0.0
    assert roc_auc(np.array([0.5] * 6), anomalous) == 0.5
    labels = np.concatenate([np.ones(100), np.zeros(10)])
    scores = np.concatenate([np.linspace(0, 1, 100), np.ones(10)])
    threshold = calibrate(scores, labels)
    assert (scores[:100] > threshold).mean() == pytest.approx(0.01, abs=0.01)


def test_report_counts_flags_by_group() -> None:
    data = evaluation_set(DIGITS, "validation", per_group=2, seed=1)
    scores = (data.labels == 0).astype(float)  # a perfect score
    summary = report(scores, data, threshold=0.5)
    assert summary["roc_auc"] == 1.0
    assert summary["digits_flagged"] == 0.0
    assert summary["non_digits_flagged"] == 1.0
    assert set(summary["flagged_by_group"]) == set(data.groups)


def test_turned_digits_are_only_the_allowed_digits_mirrored_or_turned_a_quarter() -> None:
    labels = np.zeros(len(DIGITS), np.uint8)  # a 0 turned is still a 0: never drawn
    labels[5] = 3
    three = DIGITS[5, ..., 0]
    variants = {"mirrored": three[:, ::-1], "left": np.rot90(three, 1), "right": np.rot90(three, 3)}
    seen = set()
    for image in turned_digits(DIGITS, labels)(40, np.random.default_rng(0)):
        seen |= {name for name, variant in variants.items() if np.array_equal(image, variant)}
        assert any(np.array_equal(image, variant) for variant in variants.values())
    assert seen == set(variants)


def test_hard_shapes_thin_shrink_or_coarsen_the_digit() -> None:
    rng = np.random.default_rng(0)
    digit = DIGITS[0, ..., 0]
    shapes = [hard_shape(digit, rng) for _ in range(40)]
    assert all(shape.shape == (28, 28) and 0.0 <= shape.min() <= shape.max() <= 1.0 for shape in shapes)
    assert not any(np.array_equal(shape, digit) for shape in shapes)
    # Thinned or shrunk, most lose a good part of their ink.
    assert sum(shape.sum() < 0.8 * digit.sum() for shape in shapes) >= 24
