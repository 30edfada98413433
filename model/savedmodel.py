"""A SavedModel version's ``serve`` endpoint as a function of numpy batches: what the evaluation
measures and what the digit scorer's training reads as its second channel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

Images = npt.NDArray[np.float32]
Predict = Callable[[Images], Images]


def load_savedmodel(path: Path) -> Predict:
    """The ``serve`` endpoint of a SavedModel, in chunks of 512 images."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept referenced: its variables die with it

    def predict(images: Images) -> Images:
        chunks = [np.asarray(loaded.serve(images[i : i + 512])) for i in range(0, len(images), 512)]
        return np.concatenate(chunks) if chunks else images.copy()

    return predict
