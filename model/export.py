"""Export a trained Keras model as a SavedModel plus its model card (metadata.json, MODEL_CARD.md)."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import keras

CARD_FILE = "metadata.json"
_LIBRARIES = ("tensorflow", "tensorflow-cpu", "keras", "numpy")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def export_model(model: keras.Model, out: Path, training: dict[str, Any], evaluation: dict[str, Any]) -> None:
    """Write the SavedModel (endpoint ``serve``: float32 [None, 28, 28, 1] -> same) and its card."""
    model.export(str(out), format="tf_saved_model", verbose=False)
    card = {
        "name": "mnist-denoiser",
        "version": int(out.name) if out.name.isdigit() else out.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "architecture": model.name,
        "parameters": int(model.count_params()),
        "signature": {
            "endpoint": "serve",
            "input": {"dtype": "float32", "shape": [None, 28, 28, 1], "range": [0.0, 1.0]},
            "output": {"dtype": "float32", "shape": [None, 28, 28, 1], "range": [0.0, 1.0]},
            "polarity": "light digit on dark background, as MNIST",
        },
        "training": training,
        "evaluation": evaluation,
        "libraries": library_versions(),
    }
    (out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    (out / "MODEL_CARD.md").write_text(render_card(card))


def update_card(out: Path, evaluation: dict[str, Any]) -> None:
    """Replace the evaluation section of an exported model's card (``model.evaluate --update-card``)."""
    card = json.loads((out / CARD_FILE).read_text())
    card["evaluation"] = evaluation
    (out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    (out / "MODEL_CARD.md").write_text(render_card(card))


def render_card(card: dict[str, Any]) -> str:
    """A readable model card from the same dict as metadata.json."""
    train, ev = card["training"], card["evaluation"]
    lines = [
        f"# Model card: {card['name']} v{card['version']}",
        "",
        f"Denoising autoencoder `{card['architecture']}`, {card['parameters']:,} parameters, "
        "maps a noisy 28x28 grayscale digit (float32 in [0, 1], light on dark) to a clean one.",
        "",
        "## Training",
        "",
        f"- Command: `{train['command']}`",
        f"- Optimizer {train['optimizer']} (lr {train['learning_rate']}), loss {train['loss']}, "
        f"batch {train['batch_size']}, {train['epochs_run']} of {train['epochs_requested']} epochs "
        f"(best: {train['best_epoch']}), {train['training_seconds']} s",
        f"- Noise: {train['noise']}; seed {train['seed']}",
        f"- Data: {train['data_source']}, sha256 `{train['data_sha256']}`; "
        f"{train['train_images']} training / {train['validation_images']} validation images",
        f"- Libraries: {', '.join(f'{k} {v}' for k, v in card['libraries'].items())}",
        "",
        "![loss curves](loss.png)",
        "",
        f"## Evaluation on {ev['test_images']} MNIST test digits (noise draw seed {ev['noise_seed']})",
        "",
        "| noise | noisy input PSNR (dB) | PSNR (dB) | SSIM | MSE |",
        "|---|---|---|---|---|",
    ]
    for key, row in ev.items():
        if key.startswith("noise_") and isinstance(row, dict):
            lines.append(
                f"| {key.removeprefix('noise_')} | {row['noisy_input_psnr_db']} | {row['psnr_db']} "
                f"| {row['ssim']} | {row['mse']} |"
            )
    lines += [
        "",
        "Reconstruction error (MSE between input and output):",
        "",
        "| input | p50 | p95 | p99 |",
        "|---|---|---|---|",
    ]
    for name, pct in ev["reconstruction_error"].items():
        lines.append(f"| {name} | {pct['p50']} | {pct['p95']} | {pct['p99']} |")
    check = ev.get("check", {})
    lines += [
        "",
        f"Anomaly threshold (p99 on noisy digits): {ev['anomaly_threshold']}",
        "",
        f"Reproducibility check (first {check.get('images')} test digits, noise 0.5): "
        f"PSNR {check.get('psnr_db')} dB, SSIM {check.get('ssim')}, MSE {check.get('mse')}",
        "",
        "![samples](samples.png)",
        "",
    ]
    return "\n".join(lines)
