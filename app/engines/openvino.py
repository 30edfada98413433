"""The OpenVINO engine, the default: it reads the SavedModel's ``serving_default`` signature itself.

A third of TensorFlow's memory and faster calls on the same weights (docs/performance.md); the
SavedModel stays the artifact of record, read and compiled in memory at startup.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from app.engines import Batch, Compiled, ModelLoadError, Precision, Run, Scores, probe
from app.framing import SIDE
from model.card import DENOISED_OUTPUT, INT8_MODEL, SCORE_OUTPUT

CHUNK = 64  # a call of more images runs as whole 64s and the rest (``calls``)
FIXED_SIZES = (1, CHUNK)  # batch sizes that have a graph of their own
ANY_SIZE = 0  # the graph that takes any batch size


def _core() -> Any:
    try:
        import openvino
    except ImportError as exc:  # a broken install: it is a default dependency
        raise ModelLoadError("INFERENCE_ENGINE=openvino but OpenVINO is not installed: pip install openvino") from exc
    return openvino.Core()


def bf16_available() -> bool:
    """Whether this CPU runs bf16 natively (AVX512_BF16 or AMX), as OpenVINO reports it."""
    return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def int8_available(path: Path) -> bool:
    """Whether the version at ``path`` has its INT8 graph (python -m model.quantize)."""
    return (path / INT8_MODEL).is_file()


def load(path: Path, precision: Precision, threads: int) -> Compiled:
    """Read the SavedModel at ``path`` (or its INT8 graph), compile it for this CPU at ``precision``,
    check and warm it."""
    core = _core()
    if precision is Precision.BF16 and not bf16_available():
        capabilities = ", ".join(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        raise ModelLoadError(f"INFERENCE_PRECISION=bf16 but this CPU has no bf16 support (OpenVINO: {capabilities})")
    if precision is Precision.INT8 and not int8_available(path):
        raise ModelLoadError(
            f"INFERENCE_PRECISION=int8 but {str(path / INT8_MODEL)!r} does not exist: "
            f"make it with python -m model.quantize {path}"
        )
    source = path / INT8_MODEL if precision is Precision.INT8 else path
    try:
        # Core.read_model, not openvino.convert_model: the converter also starts a telemetry
        # session whose six background threads kept taking the GIL, so that every call in the
        # service waited for them (a batch-1 call took 23-50 ms instead of 3). read_model reads the
        # same SavedModel through the same TensorFlow frontend in a tenth of the time.
        network = core.read_model(str(source))
    except Exception as exc:  # the converter raises its own errors for anything it cannot read
        what = "an INT8 graph" if precision is Precision.INT8 else "a SavedModel"
        raise ModelLoadError(f"cannot load {what} from {str(source)!r} (OpenVINO): {exc}".splitlines()[0]) from exc
    # A version with one output is a denoiser alone (v3).
    names = [set(output.get_names()) for output in network.outputs]
    denoised_at: int
    score_at: int | None
    if len(names) == 1:
        denoised_at, score_at = 0, None
    elif len(names) == 2 and {DENOISED_OUTPUT} in names and {SCORE_OUTPUT} in names:
        denoised_at, score_at = names.index({DENOISED_OUTPUT}), names.index({SCORE_OUTPUT})
    else:
        raise ModelLoadError(
            f"SavedModel {str(path)!r}: its serving_default signature gives {names}, "
            f"not one denoised image or {{{DENOISED_OUTPUT!r}, {SCORE_OUTPUT!r}}}"
        )
    config: dict[str, Any] = {
        # INT8: the quantized layers run in INT8 whatever the hint; the rest (the convolutions
        # reading the image) in f32.
        "INFERENCE_PRECISION_HINT": "bf16" if precision is Precision.BF16 else "f32",
        # One stream: the service sends one batch at a time from one thread (app/batching.py).
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        # Workers share the cores: a pinned worker would fight the others for the core it holds.
        "ENABLE_CPU_PINNING": False,
    }
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    try:
        # Besides the graph that takes any batch, one with its batch fixed at 1 (a lone request)
        # and one at 64 (the batch route's most, and each whole 64 of a larger call): static
        # shapes let the CPU plugin plan every layer ahead, 8-17 % less time per image there
        # (docs/performance.md). With every size fixed, 15 images ran as calls of 8, 4, 2 and 1 in
        # 7.0 ms against one call's 6.0: moving between graphs cost more than fixed shapes saved.
        requests = {
            size: core.compile_model(_fixed(network, size), "CPU", config).create_infer_request()
            for size in FIXED_SIZES
        }
        requests[ANY_SIZE] = core.compile_model(network, "CPU", config).create_infer_request()
    except Exception as exc:
        raise ModelLoadError(f"OpenVINO cannot compile {str(path)!r}: {exc}".splitlines()[0]) from exc
    run = _runner(requests, denoised_at, score_at)
    # The warm-up calls, every graph once, so that no request pays a first call's allocations. Two
    # images go to the graph of any size, the SavedModel's own signature: the check that it takes
    # the service's input (a fixed graph of a model that only doubles its input would pass it).
    has_scorer = probe(path, run, 2)
    probe(path, run, CHUNK + 1)  # a call of 64 and one of 1
    return Compiled(run=run, precision=precision, has_scorer=has_scorer, keep=requests)


def _fixed(network: Any, size: int) -> Any:
    fixed = network.clone()
    fixed.reshape({fixed.inputs[0]: [size, SIDE, SIDE, 1]})
    return fixed


def calls(images: int) -> list[tuple[int, int]]:
    """(start, size) of the calls that run ``images``: each whole 64, then the rest in one call, so
    that 130 images are two calls of 64 and one of 2."""
    whole = images - images % CHUNK
    parts = [(start, CHUNK) for start in range(0, whole, CHUNK)]
    return [*parts, (whole, images - whole)] if images > whole else parts


def _runner(requests: dict[int, Any], denoised_at: int, score_at: int | None) -> Run:
    # One request object per graph, reused: its buffers are allocated once. The batcher calls from
    # one thread; the lock keeps any other caller (tests, tools) from sharing them at the same time.
    lock = threading.Lock()

    def run(batch: Batch) -> tuple[Batch, Scores | None]:
        denoised = np.empty(batch.shape, dtype=np.float32)
        scores = None if score_at is None else np.empty(len(batch), dtype=np.float32)
        with lock:
            for start, size in calls(len(batch)):
                request = requests.get(size, requests[ANY_SIZE])
                # share_inputs: no copy of the batch in; the outputs are copied out, since the
                # request reuses its buffers on the next call.
                results = request.infer({0: batch[start : start + size]}, share_inputs=True)
                denoised[start : start + size] = results[denoised_at]
                if scores is not None and score_at is not None:
                    scores[start : start + size] = np.reshape(results[score_at], -1)
        return denoised, scores

    return run
