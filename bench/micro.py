"""The model alone, engine by engine, each in a fresh process, written to docs/micro.{md,json}:

    python -m bench.micro

For TensorFlow f32, OpenVINO f32, (on a CPU with bf16) OpenVINO bf16 and OpenVINO INT8 (the version's
INT8 graph, from ``python -m model.quantize``), with the served model and
one thread per call (as each worker runs it): median ms per call at batch 1, 8, 16 and 64 and per
image, the largest difference from TensorFlow's output on the same noisy digits, the process's
resident memory once loaded, and a full garbage collection before and after ``gc.freeze()`` (why
the lifespan freezes). Calls of one batch size alternate rounds, so the machine's noise hits them
alike; the engines run one after another, minutes apart at most.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from model.provenance import measured_on

ROOT = Path(__file__).resolve().parent.parent
BATCHES = (1, 8, 16, 64)
RUNS = (("tensorflow", "f32"), ("openvino", "f32"), ("openvino", "bf16"), ("openvino", "int8"))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _child(engine: str, precision: str, outputs: Path) -> dict[str, Any]:
    import gc

    from app.engines import EngineName, Precision
    from app.inference import load_model
    from app.settings import DEFAULT_MODEL_DIR
    from tests.images import mnist_digits

    started = time.perf_counter()
    model = load_model(DEFAULT_MODEL_DIR, EngineName(engine), Precision(precision), threads=1)
    result: dict[str, Any] = {
        "engine": engine,
        "precision": model.precision.value,
        "model_version": model.version,
        "load_s": round(time.perf_counter() - started, 2),
        "rss_mb": round(_rss_mb(), 1),
        "objects": len(gc.get_objects()),
    }
    started = time.perf_counter()
    gc.collect()
    result["full_gc_ms"] = round((time.perf_counter() - started) * 1000, 2)
    gc.freeze()
    started = time.perf_counter()
    gc.collect()
    result["full_gc_after_freeze_ms"] = round((time.perf_counter() - started) * 1000, 2)
    rng = np.random.default_rng(0)
    digits = mnist_digits()[:64] / 255.0
    noisy = np.clip(digits + 0.5 * rng.standard_normal(digits.shape), 0, 1).astype(np.float32)[..., np.newaxis]
    np.save(outputs, model(noisy).denoised)
    times: dict[int, list[float]] = {size: [] for size in BATCHES}
    for _ in range(7):  # rounds, alternating the batch sizes
        for size in BATCHES:
            batch = noisy[:size]
            model(batch)
            calls = max(5, 200 // size)
            wall = time.perf_counter()
            for _ in range(calls):
                model(batch)
            times[size].append((time.perf_counter() - wall) / calls)
    for size in BATCHES:
        ms = statistics.median(times[size]) * 1000
        result[f"batch_{size}_ms"] = round(ms, 3)
        result[f"batch_{size}_ms_per_image"] = round(ms / size, 3)
    result["rss_after_mb"] = round(_rss_mb(), 1)
    if engine == "openvino" and model.card is not None and model.card.anomaly is not None:
        result["scorer_batch_16_ms_per_image"] = round(_scorer_ms_per_image(model.path, precision, noisy[:16]), 4)
    return result


def _scorer_ms_per_image(path: Path, precision: str, batch: np.ndarray) -> float:
    """What the digit score adds to a call: the served graph against the same graph cut down to its
    denoised output (the scorer reads that output, so it cannot run alone), both compiled as the
    engine compiles them (one thread); the difference of their medians over 7 alternating rounds,
    ms per image."""
    import openvino

    from model.card import DENOISED_OUTPUT, INT8_MODEL

    core = openvino.Core()
    network = core.read_model(str(path / INT8_MODEL if precision == "int8" else path))
    denoised = next(output for output in network.outputs if DENOISED_OUTPUT in output.get_names())
    denoiser = openvino.Model([denoised], network.get_parameters(), "denoiser")
    hint = "bf16" if precision == "bf16" else "f32"  # INT8's quantized layers run INT8 under either
    config = {"INFERENCE_PRECISION_HINT": hint, "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": 1}
    requests = [core.compile_model(graph, "CPU", config).create_infer_request() for graph in (network, denoiser)]
    rounds: list[list[float]] = [[], []]
    for _ in range(7):
        for request, times in zip(requests, rounds, strict=True):
            request.infer({0: batch})
            wall = time.perf_counter()
            for _ in range(50):
                request.infer({0: batch})
            times.append((time.perf_counter() - wall) / 50)
    both, alone = (statistics.median(times) for times in rounds)
    return (both - alone) * 1000 / len(batch)


def render(result: dict[str, Any]) -> str:
    ctx, rows = result["context"], result["rows"]
    lines = [
        "# The model alone, by engine",
        "",
        f"Written by `{ctx['command']}` on {ctx['date']} at commit {ctx['commit']}: {ctx['cpu']}, "
        f"{ctx['cpus']} CPUs; model version {rows[0]['model_version']}, one thread per call, each engine "
        "in a fresh process. Median of 7 rounds.",
        "",
        "| engine | precision | batch 1 ms | batch 8 ms/image | batch 16 ms/image | batch 64 ms/image "
        "| largest difference from TensorFlow | resident MB after load | load s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['precision']} | {r['batch_1_ms']:.2f} | {r['batch_8_ms_per_image']:.3f} "
            f"| {r['batch_16_ms_per_image']:.3f} | {r['batch_64_ms_per_image']:.3f} "
            f"| {r['max_abs_difference']:.2g} | {r['rss_mb']:.0f} | {r['load_s']} |"
        )
    lines += ["", "Full garbage collection once loaded, and after `gc.freeze()` (what the lifespan does):", ""]
    lines += [
        f"- {r['engine']} {r['precision']}: {r['objects']:,} objects, {r['full_gc_ms']:.1f} ms; "
        f"after freeze {r['full_gc_after_freeze_ms']:.2f} ms"
        for r in rows
    ]
    scorer_rows = [r for r in rows if "scorer_batch_16_ms_per_image" in r]
    if scorer_rows:
        lines += [
            "",
            "What the digit score adds to a call (the served graph against it cut to its denoised output, one thread):",
            "",
        ]
    lines += [
        f"- {r['engine']} {r['precision']}: {r['scorer_batch_16_ms_per_image']:.3f} ms per image at batch 16"
        for r in scorer_rows
    ]
    if result.get("skipped"):
        lines += ["", f"Not measured: {result['skipped']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 4 and args[0] == "--child":
        print(json.dumps(_child(args[1], args[2], Path(args[3]))))
        return 0
    from app.engines.openvino import bf16_available

    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    rows: list[dict[str, Any]] = []
    reference: np.ndarray | None = None
    skipped = ""
    with tempfile.TemporaryDirectory() as work:
        for engine, precision in RUNS:
            if precision == "bf16" and not bf16_available():
                skipped = "OpenVINO bf16 (this CPU has no bf16)"
                continue
            outputs = Path(work) / f"{engine}-{precision}.npy"
            out = subprocess.run(
                [sys.executable, "-m", "bench.micro", "--child", engine, precision, str(outputs)],
                capture_output=True, text=True, env=env, check=True, cwd=ROOT,
            ).stdout  # fmt: skip
            row = json.loads(out.strip().splitlines()[-1])
            denoised = np.load(outputs)
            reference = denoised if reference is None else reference
            row["max_abs_difference"] = float(np.abs(denoised - reference).max())
            print(json.dumps(row), flush=True)
            rows.append(row)
    result = {
        "context": measured_on("python -m bench.micro")
        | {
            "cpus": os.cpu_count(),
        },
        "rows": rows,
        "skipped": skipped,
    }
    (ROOT / "docs" / "micro.json").write_text(json.dumps(result, indent=2) + "\n")
    (ROOT / "docs" / "micro.md").write_text(render(result))
    print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
