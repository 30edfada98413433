"""The TensorFlow engine: the library that trained and exported the model (an optional extra)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from app.engines import Batch, Compiled, ModelLoadError, Precision, Run, Scores, probe
from app.framing import SIDE
from model.card import DENOISED_OUTPUT, SCORE_OUTPUT

log = logging.getLogger(__name__)


def load(path: Path, precision: Precision, threads: int) -> Compiled:
    """One TensorFlow call per batch: ``serving_default`` where it gives both outputs (the
    denoiser runs once, and the scorer reads its output), else ``serve`` and ``score`` side by side."""
    if precision is not Precision.F32:
        raise ModelLoadError(
            f"INFERENCE_PRECISION={precision.value} needs INFERENCE_ENGINE=openvino: the tensorflow engine runs f32"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before the import; the operator may override
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ModelLoadError(
            "INFERENCE_ENGINE=tensorflow but TensorFlow is not installed: pip install 'denoise-service[tensorflow]'"
        ) from exc
    try:
        # With one worker per core, a second thread per call only adds hand-offs (docs/performance.md).
        tf.config.threading.set_intra_op_parallelism_threads(threads)
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
    score = getattr(loaded, "score", None)
    signature = loaded.signatures.get("serving_default")
    # Called as concrete functions, not through the endpoints: no tracing or signature matching
    # per call, which is a third of a batch-1 call's time.
    try:
        if signature is not None and {DENOISED_OUTPUT, SCORE_OUTPUT} <= set(signature.structured_outputs):
            run = _from_signature(signature, tf)
        elif score is None:
            run = _denoise_only(serve.get_concrete_function(spec), tf)
        else:
            # Both graphs in one call, side by side: less time than two calls, the same CPU.
            both = tf.function(lambda images: (serve(images), score(images)), input_signature=[spec])
            run = _denoise_and_score(both.get_concrete_function(), tf)
    except Exception as exc:  # tracing fails on a signature that takes another input
        raise ModelLoadError(
            f"SavedModel {str(path)!r} does not accept float32 [N, {SIDE}, {SIDE}, 1]: {exc}".splitlines()[0]
        ) from exc
    return Compiled(run=run, precision=Precision.F32, has_scorer=probe(path, run), keep=loaded)


def _denoise_only(denoise: Any, tf: Any) -> Run:
    def run(batch: Batch) -> tuple[Batch, Scores | None]:
        return np.asarray(denoise(tf.constant(batch)), dtype=np.float32), None

    return run


def _from_signature(signature: Any, tf: Any) -> Run:
    (name,) = signature.structured_input_signature[1]  # the input's name: "images" or "inputs"

    def run(batch: Batch) -> tuple[Batch, Scores | None]:
        outputs = signature(**{name: tf.constant(batch)})
        scores = np.asarray(outputs[SCORE_OUTPUT], dtype=np.float32).reshape(-1)
        return np.asarray(outputs[DENOISED_OUTPUT], dtype=np.float32), scores

    return run


def _denoise_and_score(both: Any, tf: Any) -> Run:
    def run(batch: Batch) -> tuple[Batch, Scores | None]:
        denoised, scores = both(tf.constant(batch))
        return np.asarray(denoised, dtype=np.float32), np.asarray(scores, dtype=np.float32).reshape(-1)

    return run
