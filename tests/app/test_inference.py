"""app/inference.py with the committed SavedModels: one call per batch gives what each endpoint gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import tensorflow as tf

from app.inference import Model, latest_version, load_model
from app.settings import DEFAULT_MODEL_DIR
from tests.images import noisy


def _batch(digits: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.float32]:
    images = [noisy(digit, seed=index) for index, digit in enumerate(digits[:size])]
    return (np.stack(images).astype(np.float32) / 255.0)[..., np.newaxis]


@pytest.fixture(scope="module")
def served() -> Model:
    return load_model(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="module")
def endpoints() -> Any:
    """The served SavedModel as TensorFlow loads it, its endpoints called one by one."""
    return tf.saved_model.load(str(latest_version(DEFAULT_MODEL_DIR)))


@pytest.mark.parametrize("size", [1, 5])
def test_one_call_denoises_and_scores_as_the_two_endpoints_do(
    served: Model, endpoints: Any, digits: npt.NDArray[np.uint8], size: int
) -> None:
    batch = _batch(digits, size)
    inference = served(batch)
    assert inference.scores is not None
    np.testing.assert_allclose(inference.denoised, endpoints.serve(tf.constant(batch)).numpy(), atol=1e-6)
    np.testing.assert_allclose(inference.scores, endpoints.score(tf.constant(batch)).numpy(), atol=1e-6)
    assert inference.scores.shape == (size,)


def test_a_version_without_a_scorer_denoises_and_gives_no_scores(digits: npt.NDArray[np.uint8], tmp_path: Path) -> None:
    # Version 3 (the seed recipe) was exported before the scorer existed.
    (tmp_path / "3").symlink_to(DEFAULT_MODEL_DIR / "3", target_is_directory=True)
    model = load_model(tmp_path)
    inference = model(_batch(digits, 3))
    assert model.version == 3
    assert inference.scores is None
    assert inference.denoised.shape == (3, 28, 28, 1)
    assert model.anomaly_threshold is not None  # the card's reconstruction-error threshold
