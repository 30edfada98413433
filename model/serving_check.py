"""Check an exported version on the serving engines against TensorFlow, and record it in its card.

    python -m model.serving_check model/artifacts/denoiser/9 --data ../shared/data/mnist.npz --update-card

For each engine and precision this CPU can run (TensorFlow f32, the reference; OpenVINO f32; OpenVINO
bf16 where the CPU has it; OpenVINO INT8 where the version has its INT8 graph, from
``python -m model.quantize``), on the same inputs: the card's quality metrics on the 10,000 test
digits, the largest difference from TensorFlow's output, and the anomaly flags on the card's test
evaluation. bf16 is approved for ``INFERENCE_PRECISION=auto`` only when it changes the PSNR by at
most 0.02 dB and the flags of at most 0.1% of the images; INT8 (issue 20's rule for it) by at most
0.05 dB and 0.5%.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from app.engines import EngineName, Precision
from app.inference import Model, load_version
from model.card import read_card, write_card
from model.data import add_noise, load_mnist_or_report
from model.evaluate import ANOMALY_SEED, NOISE_FACTORS, TEST_NOISE_SEED, Images, card_metrics

# Per precision: the largest PSNR change (dB) and share of anomaly flags changed it may cost.
ALLOWED_CHANGE = {Precision.BF16: (0.02, 0.001), Precision.INT8: (0.05, 0.005)}
BATCH = 256


def _predict(model: Model, images: Images) -> tuple[Images, np.ndarray | None]:
    denoised, scores = [], []
    for start in range(0, len(images), BATCH):
        batch = images[start : start + BATCH].astype(np.float32)
        output = model(batch if batch.ndim == 4 else batch[..., np.newaxis])
        denoised.append(output.denoised.reshape(batch.shape))
        if output.scores is not None:
            scores.append(output.scores)
    return np.concatenate(denoised), (np.concatenate(scores) if scores else None)


def check(version: Path, x_test: Images, per_group: int) -> dict[str, Any]:
    from app.engines.openvino import bf16_available, int8_available
    from model.anomaly import evaluation_set

    runs = [(EngineName.TENSORFLOW, Precision.F32), (EngineName.OPENVINO, Precision.F32)]
    if bf16_available():
        runs.append((EngineName.OPENVINO, Precision.BF16))
    if int8_available(version):
        runs.append((EngineName.OPENVINO, Precision.INT8))
    card = read_card(version)
    anomaly = evaluation_set(x_test, "test", per_group, ANOMALY_SEED)
    probe = add_noise(x_test[:1000], 0.5, TEST_NOISE_SEED)
    rows: list[dict[str, Any]] = []
    reference: dict[str, Any] = {}
    for engine, precision in runs:
        model = load_version(version, engine, precision, threads=0)

        def denoise(images: Images, model: Model = model) -> Images:
            return _predict(model, images)[0]

        metrics = card_metrics(denoise, x_test)
        outputs, _ = _predict(model, probe)
        _, scores = _predict(model, anomaly.images)
        flags = None if scores is None or model.anomaly_threshold is None else scores > model.anomaly_threshold
        row: dict[str, Any] = {
            "engine": engine.value,
            "precision": precision.value,
            **{f"psnr_db_noise_{f}": metrics[f"noise_{f}"]["psnr_db"] for f in NOISE_FACTORS},
            "anomaly_threshold_mse": metrics["anomaly_threshold"],
        }
        if not reference:
            reference = {"outputs": outputs, "flags": flags, "row": row}
        else:
            row["max_abs_difference"] = float(np.abs(outputs - reference["outputs"]).max())
            row["psnr_change_db"] = round(row["psnr_db_noise_0.5"] - reference["row"]["psnr_db_noise_0.5"], 4)
            if flags is not None and reference["flags"] is not None:
                row["flags_changed"] = round(float(np.mean(flags != reference["flags"])), 5)
        if flags is not None:
            row["flagged"] = round(float(flags.mean()), 4)
        rows.append(row)
        print(json.dumps(row))
    result: dict[str, Any] = {
        "reference": "tensorflow f32",
        "test_images": len(x_test),
        "anomaly_images": len(anomaly.images),
        "cpu": _cpu(),
        "engines": rows,
    }
    unmeasured = {
        Precision.BF16: "the CPU that ran the check has no bf16",
        Precision.INT8: "the version has no INT8 graph (python -m model.quantize)",
    }
    for precision, (max_psnr_change, max_flags_changed) in ALLOWED_CHANGE.items():
        measured = next((r for r in rows if r["precision"] == precision.value), None)
        result[f"{precision.value}_approved"] = (
            measured is not None
            and abs(measured["psnr_change_db"]) <= max_psnr_change
            and measured.get("flags_changed", 0.0) <= max_flags_changed
        )
        result[f"{precision.value}_rule"] = (
            f"PSNR within {max_psnr_change} dB and flags changed on at most {max_flags_changed:.1%} "
            "of the anomaly images, against TensorFlow"
            + ("" if row is not None else f"; not measured: {unmeasured[precision]}")
        )
    result["card_psnr_db_noise_0.5"] = None if card is None else card.evaluation.model_dump()["noise_0.5"]["psnr_db"]
    return result


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.serving_check", description=__doc__.splitlines()[0])
    parser.add_argument("version", type=Path, help="an exported version directory")
    parser.add_argument("--data", type=Path, default=None, help="Keras-layout mnist.npz (default: the Keras download)")
    parser.add_argument("--per-group", type=int, default=100, help="anomaly images per group")
    parser.add_argument("--update-card", action="store_true", help="write the result into the card's serving section")
    args = parser.parse_args(argv)
    mnist = load_mnist_or_report(args.data)
    if mnist is None:
        return 2
    result = check(args.version, mnist.x_test, args.per_group)
    card = read_card(args.version)
    if args.update_card and card is not None:
        write_card(args.version, card.model_copy(update={"serving": card.serving.model_validate(result)}))
    print(json.dumps({k: v for k, v in result.items() if k != "engines"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
