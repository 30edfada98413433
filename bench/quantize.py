"""One measured try of INT8 post-training quantization (NNCF) of the served model, against f32:

    pip install nncf && python -m bench.quantize --data ../shared/data/mnist.npz

Quantizes the served SavedModel as OpenVINO reads it, calibrated on 300 noisy training digits,
and compares it with f32 on the same CPU and inputs: PSNR on 3,000 noisy test digits (noise 0.5),
anomaly flags on the card's test evaluation (100 per group), and ms per call at batch 1 and 16
(median of 5 rounds, alternating). The rule it is held to (issue 20): keep INT8 only if it is
faster and costs at most 0.05 dB and 0.5 % of the flags. Writes docs/int8.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.run import ROOT
from model.provenance import measured_on

MAX_PSNR_LOSS_DB = 0.05
MAX_FLAGS_CHANGED = 0.005


def _runner(compiled: Any) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    request = compiled.create_infer_request()

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        out = request.infer({0: batch})
        return {n: np.asarray(out[o]) for o in compiled.outputs for n in o.get_names()}

    return run


def main(argv: list[str] | None = None) -> int:
    import nncf  # a developer's try, not a dependency: pip install nncf
    import openvino

    from app.inference import latest_version
    from app.settings import DEFAULT_MODEL_DIR
    from model.anomaly import evaluation_set
    from model.card import read_card
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
    card = read_card(version)
    if card is None or card.anomaly is None:
        raise SystemExit(f"error: {version} has no scorer to check the flags of")
    core = openvino.Core()
    network = core.read_model(str(version))
    calibration = add_noise(mnist.x_train[:300], 0.5, 1).astype(np.float32).reshape(-1, 1, 28, 28, 1)
    quantized = nncf.quantize(network, nncf.Dataset(list(calibration)), subset_size=len(calibration))
    config = {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
    clean = mnist.x_test[:3000].astype(np.float32).reshape(-1, 28, 28, 1)
    noisy = add_noise(clean, 0.5, TEST_NOISE_SEED).astype(np.float32)
    anomaly = evaluation_set(mnist.x_test, "test", 100, ANOMALY_SEED)
    runs = {
        name: _runner(core.compile_model(model, "CPU", config | {"INFERENCE_PRECISION_HINT": "f32"}))
        for name, model in (("f32", network), ("int8", quantized))
    }
    rows: dict[str, dict[str, Any]] = {}
    for name, run in runs.items():
        denoised = np.concatenate([run(noisy[i : i + 256])["denoised"] for i in range(0, len(noisy), 256)])
        images = anomaly.images.astype(np.float32)
        scores = np.concatenate(
            [run(images[i : i + 256])["anomaly_score"].reshape(-1) for i in range(0, len(images), 256)]
        )
        rows[name] = {
            "psnr_db": round(float(np.mean(psnr(clean, denoised))), 4),
            "flags": scores > card.anomaly.threshold,
        }
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
    flags_changed = float(np.mean(int8.pop("flags") != f32.pop("flags")))
    psnr_change = round(int8["psnr_db"] - f32["psnr_db"], 4)
    faster = int8["batch_16_ms"] < f32["batch_16_ms"] and int8["batch_1_ms"] <= f32["batch_1_ms"]
    result = {
        "context": measured_on("python -m bench.quantize")
        | {
            "model_version": int(version.name),
            "engine": "openvino",  # NNCF quantizes the OpenVINO model: both sides run on OpenVINO
            "nncf": nncf.__version__,
        },
        "f32": f32,
        "int8": int8,
        "psnr_change_db": psnr_change,
        "flags_changed": round(flags_changed, 5),
        "kept": faster and -psnr_change <= MAX_PSNR_LOSS_DB and flags_changed <= MAX_FLAGS_CHANGED,
        "rule": f"faster, at most {MAX_PSNR_LOSS_DB} dB and {MAX_FLAGS_CHANGED:.1%} of the flags",
    }
    (ROOT / "docs" / "int8.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
