"""Loading the SavedModel and running it. Every TensorFlow call in the service lives here."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.framing import SIDE
from model.card import CARD_FILE, ModelCard, read_card

log = logging.getLogger(__name__)

Batch = npt.NDArray[np.float32]  # (N, 28, 28, 1) in [0, 1]
Scores = npt.NDArray[np.float32]  # (N,) anomaly scores in [0, 1]


@dataclass(frozen=True)
class Inference:
    """What one model call gives for a batch: the denoised images and, if the model has a scorer,
    each image's anomaly score."""

    denoised: Batch
    scores: Scores | None

    def __len__(self) -> int:
        return len(self.denoised)

    def __getitem__(self, rows: slice) -> Inference:
        return Inference(self.denoised[rows], None if self.scores is None else self.scores[rows])


class ModelLoadError(Exception):
    """The model directory cannot be served; the message names the path and the problem."""


def latest_version(model_dir: Path) -> Path:
    """The highest integer-numbered subdirectory of ``model_dir`` (TF Serving's layout)."""
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory {str(model_dir)!r} does not exist")
    versions = [p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    if not versions:
        raise ModelLoadError(f"model directory {str(model_dir)!r} holds no integer-numbered version")
    return max(versions, key=lambda p: int(p.name))


@dataclass(frozen=True)
class Model:
    """One loaded SavedModel version with its model card."""

    path: Path
    version: int
    card: ModelCard | None
    anomaly_threshold: float | None  # what the flag compares: the score's, or (no scorer) the MSE's
    _saved_model: Any  # holds the variables the function below uses
    _run: Callable[[Batch], Inference]

    def __call__(self, batch: Batch) -> Inference:
        """Denoise (and score) a batch; safe to call from any thread but the event loop's."""
        return self._run(batch)


def configure_tensorflow() -> None:
    """Quiet TensorFlow's C++ logs before it is imported (setdefault: the operator may override)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_model(model_dir: Path, intra_op_threads: int = 0) -> Model:
    """Load, check and warm the highest version under ``model_dir``."""
    path = latest_version(model_dir)
    configure_tensorflow()
    import tensorflow as tf

    try:
        # With one worker per core, a second thread per call only adds hand-offs: a batch-1 call
        # takes 40% less time on one thread (docs/performance.md).
        tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
    except RuntimeError:  # TensorFlow already ran in this process (tests): keep what it has
        log.debug("TensorFlow is initialised; its intra-op thread count stays as it is")

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # TF raises many types (OSError, ValueError, its own errors)
        raise ModelLoadError(f"cannot load a SavedModel from {str(path)!r}: {exc}".splitlines()[0]) from exc
    serve = getattr(loaded, "serve", None)
    if serve is None:
        raise ModelLoadError(f"SavedModel {str(path)!r} has no 'serve' endpoint")
    spec = tf.TensorSpec([None, SIDE, SIDE, 1], tf.float32)
    denoise = _denoiser(serve, spec, path, tf)
    try:
        card = read_card(path)
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise ModelLoadError(f"model card {str(path / CARD_FILE)!r} cannot be read: {exc}") from exc
    score = getattr(loaded, "score", None)
    if score is None:
        threshold = card.evaluation.anomaly_threshold if card else None
        run = _denoise_only(denoise, tf)
    elif card is None or card.anomaly is None:
        raise ModelLoadError(f"SavedModel {str(path)!r} has a 'score' endpoint but its card gives no threshold")
    else:
        threshold = card.anomaly.threshold
        run = _denoise_and_score(denoise, _scorer(score, spec, path, tf), spec, tf)
    log.info("loaded model version %s from %s", path.name, path)
    return Model(
        path=path,
        version=int(path.name),
        card=card,
        anomaly_threshold=threshold,
        _saved_model=loaded,
        _run=run,
    )


def _denoiser(serve: Any, spec: Any, path: Path, tf: Any) -> Any:
    """The ``serve`` endpoint's concrete function for float32 [N, 28, 28, 1], checked on one image.

    Called directly, not through ``serve``: no tracing or signature matching per call, which is a
    third of a batch-1 call's time.
    """
    probe = np.zeros((1, SIDE, SIDE, 1), dtype=np.float32)
    try:
        concrete = serve.get_concrete_function(spec)
        output = np.asarray(concrete(tf.constant(probe)))  # also the warm-up call
    except Exception as exc:
        raise ModelLoadError(
            f"SavedModel {str(path)!r} does not accept float32 [N, {SIDE}, {SIDE}, 1]: {exc}".splitlines()[0]
        ) from exc
    if output.shape != probe.shape:
        raise ModelLoadError(
            f"SavedModel {str(path)!r} maps [1, {SIDE}, {SIDE}, 1] to {list(output.shape)}, not the same shape"
        )
    return concrete


def _scorer(score: Any, spec: Any, path: Path, tf: Any) -> Any:
    """The ``score`` endpoint's concrete function (float32 [N, 28, 28, 1] -> [N]), checked."""
    try:
        concrete = score.get_concrete_function(spec)
        probe = np.asarray(concrete(tf.constant(np.zeros((2, SIDE, SIDE, 1), dtype=np.float32))))
    except Exception as exc:
        raise ModelLoadError(f"SavedModel {str(path)!r}: its 'score' endpoint fails: {exc}".splitlines()[0]) from exc
    if probe.shape != (2,):
        raise ModelLoadError(f"SavedModel {str(path)!r} scores 2 images as {list(probe.shape)}, not [2]")
    return concrete


def _denoise_only(denoise: Any, tf: Any) -> Callable[[Batch], Inference]:
    """A version without a scorer: one call, no scores."""

    def run(batch: Batch) -> Inference:
        return Inference(np.asarray(denoise(tf.constant(batch)), dtype=np.float32), None)

    return run


def _denoise_and_score(denoise: Any, score: Any, spec: Any, tf: Any) -> Callable[[Batch], Inference]:
    """Both endpoints as one TensorFlow call, which runs the two graphs side by side: a batch takes
    less time than two calls one after the other, for about the same CPU (python -m bench.micro)."""
    both = tf.function(lambda images: (denoise(images), score(images)), input_signature=[spec])
    concrete = both.get_concrete_function()

    def run(batch: Batch) -> Inference:
        denoised, scores = concrete(tf.constant(batch))
        return Inference(np.asarray(denoised, dtype=np.float32), np.asarray(scores, dtype=np.float32).reshape(-1))

    run(np.zeros((1, SIDE, SIDE, 1), dtype=np.float32))  # traced and warmed now, not on a request
    return run
