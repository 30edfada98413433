"""INT8 (the served version's graph from ``python -m model.quantize``) against f32, both on OpenVINO:

    python -m bench.quantize --data ../shared/data/mnist.npz

Both loaded as the service loads them (``app.inference.load_version``, one thread per call), on
the same CPU and inputs, and bf16 beside them where the CPU has it: PSNR on 3,000 noisy test
digits (noise 0.5), anomaly flags on the card's test evaluation (100 per group), and ms per call
at batch 1 and 16 (median of 5 rounds, alternating). The rule INT8 is held to (issue 20): keep it
only if it is faster and costs at most 0.05 dB and 0.5 % of the flags. Writes docs/int8.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.inference import Inference
from bench.run import ROOT
from model.provenance import measured_on

MAX_PSNR_LOSS_DB = 0.05
MAX_FLAGS_CHANGED = 0.005


def main(argv: list[str] | None = None) -> int:
    from app.engines import EngineName, Precision
    from app.engines.openvino import bf16_available
    from app.inference import latest_version, load_version
    from app.settings import DEFAULT_MODEL_DIR
    from model.anomaly import evaluation_set
    from model.data import add_noise, load_mnist_or_report
    from model.evaluate import ANOMALY_SEED, TEST_NOISE_SEED
    from model.metrics import psnr

    parser = argparse.ArgumentParser(prog="python -m bench.quantize", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="Keras-layout mnist.npz (default: the Keras download)")
    args = parser.parse_args(argv)
    mnist = load_mnist_or_report(args.data)
    if mnist is None:
        return 2
    version = latest_version(DEFAULT_MODEL_DIR)
    # bf16 too where the CPU has it: INFERENCE_PRECISION=auto prefers it to INT8 there.
    precisions = [Precision.F32, Precision.INT8] + ([Precision.BF16] if bf16_available() else [])
    runs = {p.value: load_version(version, EngineName.OPENVINO, p, threads=1) for p in precisions}
    threshold = runs["f32"].anomaly_threshold
    if threshold is None:
        raise SystemExit(f"error: {version} has no scorer to check the flags of")
    clean = mnist.x_test[:3000].astype(np.float32).reshape(-1, 28, 28, 1)
    noisy = add_noise(clean, 0.5, TEST_NOISE_SEED).astype(np.float32)
    anomaly = evaluation_set(mnist.x_test, "test", 100, ANOMALY_SEED)
    rows: dict[str, dict[str, Any]] = {}
    for name, run in runs.items():
        denoised = np.concatenate([run(noisy[i : i + 256]).denoised for i in range(0, len(noisy), 256)])
        images = anomaly.images.astype(np.float32).reshape(-1, 28, 28, 1)
        scores = np.concatenate([_scores(run(images[i : i + 256])) for i in range(0, len(images), 256)])
        rows[name] = {"psnr_db": round(float(np.mean(psnr(clean, denoised))), 4), "flags": scores > threshold}
    times: dict[str, dict[int, list[float]]] = {name: {1: [], 16: []} for name in runs}
    for _ in range(5):
        for size in (1, 16):
            for name, run in runs.items():
                run(noisy[:size])
                calls, started = 0, time.perf_counter()
                while time.perf_counter() - started < 0.4:
                    run(noisy[:size])
                    calls += 1
                times[name][size].append((time.perf_counter() - started) / calls * 1000)
    for name in runs:
        for size in (1, 16):
            rows[name][f"batch_{size}_ms"] = round(statistics.median(times[name][size]), 3)
    f32, int8 = rows["f32"], rows["int8"]
    for name in runs:
        if name != "f32":
            rows[name]["flags_changed"] = round(float(np.mean(rows[name]["flags"] != f32["flags"])), 5)
    for row in rows.values():
        del row["flags"]
    flags_changed = int8["flags_changed"]
    psnr_change = round(int8["psnr_db"] - f32["psnr_db"], 4)
    faster = int8["batch_16_ms"] < f32["batch_16_ms"] and int8["batch_1_ms"] <= f32["batch_1_ms"]
    result = {
        "context": measured_on("python -m bench.quantize")
        | {
            "model_version": int(version.name),
            "engine": "openvino",  # the INT8 graph is OpenVINO's: every row runs on OpenVINO
        },
        **rows,
        "psnr_change_db": psnr_change,
        "flags_changed": round(flags_changed, 5),
        "kept": faster and -psnr_change <= MAX_PSNR_LOSS_DB and flags_changed <= MAX_FLAGS_CHANGED,
        "rule": f"faster, at most {MAX_PSNR_LOSS_DB} dB and {MAX_FLAGS_CHANGED:.1%} of the flags",
    }
    (ROOT / "docs" / "int8.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


def _scores(output: Inference) -> np.ndarray:
    assert output.scores is not None  # the served version has a scorer: checked above
    return output.scores


if __name__ == "__main__":
    raise SystemExit(main())
