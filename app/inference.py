"""The service's one model interface: a SavedModel version, compiled by the configured engine.

Which engine runs it is a setting (``INFERENCE_ENGINE``); each lives in ``app/engines/`` and only
the chosen one's library is imported. Every model call in the service goes through ``Model``.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.engines import Batch, Compiled, EngineName, ModelLoadError, Precision, Scores
from model.card import CARD_FILE, ModelCard, read_card

log = logging.getLogger(__name__)


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

    @staticmethod
    def concatenate(parts: list[Inference]) -> Inference:
        """Several calls' outputs, in order, as one."""
        scores = [p.scores for p in parts if p.scores is not None]
        return Inference(
            np.concatenate([p.denoised for p in parts]), np.concatenate(scores) if len(scores) == len(parts) else None
        )


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
    """One model version with its card, compiled by an engine."""

    path: Path
    version: int
    card: ModelCard | None
    engine: EngineName
    precision: Precision  # what runs: f32, bf16 or int8
    anomaly_threshold: float | None  # what the flag compares: the score's, or (no scorer) the MSE's
    _compiled: Compiled

    def __call__(self, batch: Batch) -> Inference:
        """Denoise (and score) a batch; call it from any thread but the event loop's."""
        denoised, scores = self._compiled.run(batch)
        return Inference(denoised, scores)


def load_model(
    model_dir: Path,
    engine: EngineName = EngineName.OPENVINO,
    precision: Precision = Precision.AUTO,
    threads: int = 1,
) -> Model:
    """Load, check and warm the highest version under ``model_dir`` with ``engine``."""
    return load_version(latest_version(model_dir), engine, precision, threads)


def load_version(path: Path, engine: EngineName, precision: Precision, threads: int) -> Model:
    """Load, check and warm the version at ``path`` with ``engine``."""
    if not path.name.isdigit():
        raise ModelLoadError(f"{str(path)!r} is not a version directory: its name must be an integer")
    try:
        card = read_card(path)
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise ModelLoadError(f"model card {str(path / CARD_FILE)!r} cannot be read: {exc}") from exc
    module = importlib.import_module(f"app.engines.{engine.value}")
    if precision is Precision.AUTO:
        precision = _auto_precision(engine, path, card)
    compiled: Compiled = module.load(path, precision, threads)
    if engine is EngineName.IDENTITY:  # it reads no SavedModel: the flag falls back to the error's
        threshold = card.evaluation.anomaly_threshold if card else None
    elif compiled.has_scorer:
        if card is None or card.anomaly is None:
            raise ModelLoadError(f"SavedModel {str(path)!r} has an anomaly scorer but its card gives no threshold")
        threshold = card.anomaly.threshold
    elif card is not None and card.anomaly is not None:
        raise ModelLoadError(
            f"the card of {str(path)!r} has an anomaly scorer that INFERENCE_ENGINE={engine.value} does not find "
            "in the SavedModel (OpenVINO reads the serving_default signature: re-export with python -m model.export)"
        )
    else:
        threshold = card.evaluation.anomaly_threshold if card else None
    log.info(
        "loaded model version %s from %s",
        path.name,
        path,
        extra={"fields": {"engine": engine.value, "precision": compiled.precision.value}},
    )
    return Model(
        path=path,
        version=int(path.name),
        card=card,
        engine=engine,
        precision=compiled.precision,
        anomaly_threshold=threshold,
        _compiled=compiled,
    )


def _auto_precision(engine: EngineName, path: Path, card: ModelCard | None) -> Precision:
    """bf16 where the CPU runs it natively, else INT8, each where the card says that it changes
    nothing that matters; else f32. On a CPU with bf16 it was both the faster and the closer to
    f32 of the two (docs/performance.md, "INT8"); elsewhere INT8 is the one that is faster than f32."""
    if engine is not EngineName.OPENVINO or card is None:
        return Precision.F32
    from app.engines.openvino import bf16_available, int8_available

    if card.serving.bf16_approved and bf16_available():
        return Precision.BF16
    return Precision.INT8 if card.serving.int8_approved and int8_available(path) else Precision.F32
