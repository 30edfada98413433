"""model/anomaly.py: the negative families, the labelled sets and the score's statistics."""

from __future__ import annotations

import numpy as np
import pytest

from model.anomaly import TrainingBatches, calibrate, evaluation_set, families, report, roc_auc
from model.shifts import SUITE
from tests.images import mnist_digits

DIGITS = (mnist_digits()[:60] / 255.0).astype(np.float32)[..., np.newaxis]


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_every_family_draws_images_from_its_split(split: str) -> None:
    for name, family in families(DIGITS).items():
        images = family(6, np.random.default_rng(0), split)
        assert images.shape == (6, 28, 28), name
        assert 0.0 <= images.min() <= images.max() <= 1.0, name


def test_the_evaluation_set_has_every_group_labelled() -> None:
    data = evaluation_set(DIGITS, "test", per_group=4, seed=0)
    groups = list(dict.fromkeys(data.groups))
    assert len(groups) == len(SUITE) + len(families(DIGITS))
    assert data.images.shape == (4 * len(groups), 28, 28, 1)
    digit_groups = {g for g in groups if g.startswith("digit: ")}
    assert all(data.labels[data.groups == g].all() for g in digit_groups)
    assert not data.labels[~np.isin(data.groups, list(digit_groups))].any()


def test_training_batches_are_half_digits() -> None:
    x, y = TrainingBatches(DIGITS, batch_size=32, batches=1, seed=0).batch(0, 0)
    assert x.shape == (32, 28, 28, 1)
    assert y.sum() == 16


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
