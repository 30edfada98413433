"""Inference engines: each turns an exported SavedModel version into a call on a batch.

An engine module has one ``load(path, precision, threads) -> Compiled``. It knows nothing of the
service: ``app.inference`` picks the engine, checks what it compiled against the model card and
wraps it as the service's one ``Model``. Only the chosen engine's library is ever imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.framing import SIDE

Batch = npt.NDArray[np.float32]  # (N, 28, 28, 1) in [0, 1]
Scores = npt.NDArray[np.float32]  # (N,) anomaly scores in [0, 1]
Run = Callable[[Batch], tuple[Batch, Scores | None]]


class EngineName(StrEnum):
    OPENVINO = "openvino"  # the default: reads the SavedModel, a third of TensorFlow's memory
    TENSORFLOW = "tensorflow"  # the library that trained it; an optional extra
    IDENTITY = "identity"  # returns its input: measures the service's own path (benchmarks only)


class Precision(StrEnum):
    AUTO = "auto"  # bf16 where the CPU has it, else int8, each where the model card approves it; else f32
    F32 = "f32"
    BF16 = "bf16"
    INT8 = "int8"  # OpenVINO: the version's INT8 graph (python -m model.quantize), read beside its SavedModel


class ModelLoadError(Exception):
    """The model cannot be served as configured; the message names the path or the setting."""


@dataclass(frozen=True)
class Compiled:
    """A model version compiled by an engine, ready to run on any thread but the event loop's."""

    run: Run  # a batch to (denoised batch, anomaly scores or None when the model has no scorer)
    precision: Precision  # what runs: never AUTO
    has_scorer: bool  # ``run`` gives anomaly scores
    keep: Any = None  # objects the call needs alive (the engine's model and runtime)


def probe(path: Path, run: Run, size: int = 2) -> bool:
    """Run a blank batch of ``size`` (the warm-up call); whether it gave scores. Raises
    ``ModelLoadError`` when the call fails or its outputs are not of the right shapes."""
    try:
        denoised, scores = run(np.zeros((size, SIDE, SIDE, 1), dtype=np.float32))
    except Exception as exc:  # each engine raises its own errors for a graph that cannot run
        raise ModelLoadError(
            f"SavedModel {str(path)!r} does not accept float32 [N, {SIDE}, {SIDE}, 1]: {exc}".splitlines()[0]
        ) from exc
    if denoised.shape != (size, SIDE, SIDE, 1):
        raise ModelLoadError(
            f"SavedModel {str(path)!r} maps [{size}, {SIDE}, {SIDE}, 1] to {list(denoised.shape)}, not the same shape"
        )
    if scores is not None and scores.shape != (size,):
        raise ModelLoadError(f"SavedModel {str(path)!r} scores {size} images as {list(scores.shape)}, not [{size}]")
    return scores is not None
