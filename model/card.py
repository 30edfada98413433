"""The model card: metadata.json beside each exported SavedModel, and its readable MODEL_CARD.md.

One module reads, writes and renders it, so that export, evaluation and the service agree on
where it lives and what it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

CARD_FILE = "metadata.json"
CARD_MARKDOWN = "MODEL_CARD.md"
# The outputs of an exported version's serving_default signature, the one OpenVINO reads.
DENOISED_OUTPUT = "denoised"
SCORE_OUTPUT = "anomaly_score"
# The version's graph quantized to INT8 for OpenVINO (python -m model.quantize), beside the
# SavedModel with its weights (openvino-int8.bin).
INT8_MODEL = "openvino-int8.xml"


class _Section(BaseModel):
    # Typed where code reads a field; the rest of a section is kept as written (extra="allow"),
    # so a card gains a measurement without a change here.
    model_config = ConfigDict(extra="allow", frozen=True)


class Evaluation(_Section):
    """``model.evaluate`` on the MNIST test set."""

    test_images: int
    noise_seed: int
    reconstruction_error: dict[str, dict[str, float]]  # input kind -> percentile -> MSE
    anomaly_threshold: float  # input-output MSE p99 on noisy digits: the flag without a scorer
    check: dict[str, Any] = {}  # the reproducibility check that make test repeats


class Anomaly(_Section):
    """The digit / not-digit score exported beside the denoiser (``score`` endpoint)."""

    score: str  # what the score is
    flag: str  # what the flag compares
    threshold: float
    validation: dict[str, Any]
    test: dict[str, Any]
    check: dict[str, Any] = {}


class Serving(_Section):
    """How the version runs on the serving engines (``python -m model.export --serving-check``)."""

    bf16_approved: bool = False  # INFERENCE_PRECISION=auto runs bf16 only where this is true
    int8_approved: bool = False  # and INT8 (INT8_MODEL) on CPUs without bf16, only where this is true


class ModelCard(_Section):
    """metadata.json: what was trained, how, and what it measured."""

    name: str
    version: int
    created: str
    architecture: str
    parameters: int
    signature: dict[str, Any]
    training: dict[str, Any]  # the training run's record (model.train), as written
    evaluation: Evaluation
    libraries: dict[str, str]
    anomaly: Anomaly | None = None
    robustness: list[dict[str, Any]] = []
    serving: Serving = Serving()


def read_card(version_dir: Path) -> ModelCard | None:
    """The card of an exported version; None when it has none. Raises ``ValueError`` if unreadable."""
    path = version_dir / CARD_FILE
    if not path.is_file():
        return None
    return ModelCard.model_validate_json(path.read_text())


def write_card(version_dir: Path, card: ModelCard) -> None:
    """metadata.json and MODEL_CARD.md, from the same card."""
    (version_dir / CARD_FILE).write_text(card.model_dump_json(indent=2, exclude_none=True) + "\n")
    (version_dir / CARD_MARKDOWN).write_text(render_card(card))


def update_card(
    out: Path,
    evaluation: dict[str, Any],
    robustness: list[dict[str, Any]] | None = None,
    anomaly_test: dict[str, Any] | None = None,
    anomaly_check: dict[str, Any] | None = None,
) -> None:
    """Replace the measured sections of an exported model's card (``model.evaluate --update-card``)."""
    card = read_card(out)
    if card is None:
        raise FileNotFoundError(f"{str(out / CARD_FILE)!r}: no model card to update")
    changes: dict[str, Any] = {"evaluation": Evaluation.model_validate(evaluation)}
    if robustness:
        changes["robustness"] = robustness
    if card.anomaly is not None:
        measured = {"test": anomaly_test, "check": anomaly_check}
        changes["anomaly"] = card.anomaly.model_copy(update={k: v for k, v in measured.items() if v})
    write_card(out, card.model_copy(update=changes))


def render_card(card: ModelCard) -> str:
    """A readable model card from the same card as metadata.json."""
    train, ev = card.training, card.evaluation.model_dump()
    lines = [
        f"# Model card: {card.name} v{card.version}",
        "",
        f"Denoising autoencoder `{card.architecture}`, {card.parameters:,} parameters, "
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
        f"- Trained with Keras backend {train.get('backend', 'tensorflow')} on {train.get('device', 'cpu')}; "
        f"exported with {', '.join(f'{k} {v}' for k, v in card.libraries.items())}",
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
    lines += _robustness_lines(card.robustness) + _anomaly_lines(card.anomaly) + _serving_lines(card.serving)
    lines += [
        "",
        f"Input-output MSE p99 on noisy digits (the flag's rule for models without a score): {ev['anomaly_threshold']}",
        "",
        f"Reproducibility check (first {check.get('images')} test digits, noise 0.5): "
        f"PSNR {check.get('psnr_db')} dB, SSIM {check.get('ssim')}, MSE {check.get('mse')}",
        "",
        "![samples](samples.png)",
        "",
    ]
    return "\n".join(lines)


def _robustness_lines(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        f"## Robustness suite ({rows[0]['images']} test digits per condition; model/shifts.py)",
        "",
        "| condition | noisy input PSNR (dB) | best classic (dB) | this model (dB) |",
        "|---|---|---|---|",
    ]
    for row in rows:
        best = row["best_classic"]
        lines.append(
            f"| {row['condition']} | {row['noisy_input']} | {best['psnr_db']} ({best['method']}) | {row['psnr_db']} |"
        )
    mean = sum(row["psnr_db"] for row in rows) / len(rows)
    lines.append(f"| mean of {len(rows)} conditions | | | {mean:.3f} |")
    return lines


def _anomaly_lines(anomaly: Anomaly | None) -> list[str]:
    if anomaly is None:
        return []
    lines = [
        "",
        "## Anomaly score",
        "",
        f"- Score: {anomaly.score}",
        f"- Flag: {anomaly.flag} (threshold {anomaly.threshold:.4f})",
        "",
        "| split | ROC AUC | digits flagged | non-digits flagged |",
        "|---|---|---|---|",
    ]
    for rep, split in ((anomaly.validation, "validation"), (anomaly.test, "test")):
        lines.append(f"| {split} | {rep['roc_auc']} | {rep['digits_flagged']:.1%} | {rep['non_digits_flagged']:.1%} |")
    lines += ["", "Flagged on the test evaluation, by group:", "", "| group | flagged |", "|---|---|"]
    lines += [f"| {group} | {share:.1%} |" for group, share in anomaly.test["flagged_by_group"].items()]
    extra = anomaly.model_dump()
    fonts = extra.get("fonts")
    if fonts:
        lines += ["", "Font designs by split (model/fonts.py; a design is never in two splits):", ""]
        lines += [f"- {split} ({len(names)}): {', '.join(names)}" for split, names in fonts.items()]
    for group, rates in anomaly.test.get("flagged_by_design", {}).items():
        lines += ["", f"{group}, flagged by test design:", "", "| design | flagged |", "|---|---|"]
        lines += [f"| {design} | {share:.1%} |" for design, share in rates.items()]
    tradeoff = extra.get("tradeoff")
    if tradeoff:
        lines += [
            "",
            "Trade-off: other thresholds, each set to flag a share of the validation digits, measured on the test set:",
            "",
            *tradeoff_table(tradeoff),
        ]
    return lines


def tradeoff_table(rows: list[dict[str, Any]]) -> list[str]:
    """The anomaly trade-off as a table: per threshold, digits and each non-digit family flagged."""
    groups = [g for g in rows[0]["flagged_by_group"] if not g.startswith("digit: ")]
    lines = [
        "| validation digits flagged | threshold | test digits flagged | non-digits flagged | "
        + " | ".join(groups)
        + " |",
        "|" + "---:|" * (4 + len(groups)),
    ]
    for row in rows:
        cells = " | ".join(f"{row['flagged_by_group'][g]:.1%}" for g in groups)
        lines.append(
            f"| {row['validation_digits_flagged']:.1%} | {row['threshold']:.4f} | {row['digits_flagged']:.1%} "
            f"| {row['non_digits_flagged']:.1%} | {cells} |"
        )
    return lines


def _serving_lines(serving: Serving) -> list[str]:
    rows = serving.model_dump().get("engines", [])
    if not rows:
        return []
    lines = [
        "",
        "## Serving engines (python -m model.serving_check)",
        "",
        f"Against {serving.model_dump()['reference']} on the same inputs, on {serving.model_dump()['cpu']}:",
        "",
        "| engine | precision | PSNR at 0.5 (dB) | change (dB) | largest difference | flags changed |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['engine']} | {row['precision']} | {row['psnr_db_noise_0.5']} | {row.get('psnr_change_db', '')} "
            f"| {row.get('max_abs_difference', '')} | {row.get('flags_changed', '')} |"
        )
    # In the order auto tries them: bf16 where the CPU has it, else INT8.
    for precision, approved in (("bf16", serving.bf16_approved), ("int8", serving.int8_approved)):
        rule = serving.model_dump().get(f"{precision}_rule")
        if rule is not None:
            verdict = "approved" if approved else "not approved"
            lines += ["", f"{precision} for INFERENCE_PRECISION=auto: {verdict} ({rule})."]
    return lines
