"""Evaluate exported denoisers against classic ones on the MNIST test digits.

    python -m model.evaluate --data ../shared/data/mnist.npz            # every committed version
    python -m model.evaluate model/artifacts/denoiser/4 --data PATH --update-card

Writes a markdown table and JSON (``--md``, ``--json``) and a comparison figure; with
``--update-card`` also rewrites each model's card from this measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from model.card import read_card, tradeoff_table, update_card
from model.data import (
    TRAINING_SEED,
    VALIDATION_FRACTION,
    Mnist,
    add_noise,
    load_mnist_or_report,
    printed_digits,
    split_validation,
)
from model.metrics import mse, psnr
from model.provenance import measured_on
from model.savedmodel import Predict, load_savedmodel
from model.shifts import SUITE, run_condition

Images = npt.NDArray[np.float32]
Score = Callable[[Images], npt.NDArray[np.float32]]  # the anomaly score per image

NOISE_FACTORS = (0.3, 0.5, 0.7)
TEST_NOISE_SEED = 2026  # one fixed draw, shared by every method and every run
PERCENTILES = (50, 95, 99)
PRINTED_SEED = 7
CHECK_IMAGES = 500  # the card's reproducibility check: the first 500 test digits, noise 0.5
MODELS_ROOT = Path(__file__).resolve().parent / "artifacts" / "denoiser"
SUITE_SEED = 11  # the robustness suite's draws, the same for every method and run
# The classic denoisers compared on the suite (BM3D is left out: seconds per condition per image).
SUITE_BASELINES = ("median 3x3", "Gaussian blur", "non-local means", "total variation")
ANOMALY_SEED = 2
CHECK_PER_CONDITION = 50  # the card's suite check: small enough for make test to reproduce
CHECK_PER_GROUP = 25  # likewise for the anomaly check


def ssim(reference: Images, estimate: Images) -> npt.NDArray[np.float64]:
    """Per-image SSIM (Gaussian window 11, sigma 1.5, as in Wang et al. 2004)."""
    import tensorflow as tf

    values = tf.image.ssim(tf.constant(reference), tf.constant(estimate.astype(np.float32)), max_val=1.0)
    return np.asarray(values, dtype=np.float64)


def quality(clean: Images, estimate: Images) -> dict[str, float]:
    return {
        "psnr_db": round(float(np.mean(psnr(clean, estimate))), 3),
        "ssim": round(float(np.mean(ssim(clean, estimate))), 4),
        "mse": round(float(np.mean(mse(clean, estimate))), 6),
    }


def reconstruction_error(predict: Predict, images: Images) -> npt.NDArray[np.float64]:
    """What the service reports: MSE between the model's input and its output."""
    return mse(images, predict(images))


def check_metrics(predict: Predict, x_test: Images) -> dict[str, float]:
    """Quality on the first CHECK_IMAGES test digits at noise 0.5: small enough to rerun in tests."""
    subset = x_test[:CHECK_IMAGES]
    return {"images": len(subset)} | quality(subset, predict(add_noise(subset, 0.5, TEST_NOISE_SEED)))


def card_metrics(predict: Predict, x_test: Images) -> dict[str, Any]:
    """The model card's quality section: metrics per noise level and the error distribution."""
    metrics: dict[str, Any] = {"test_images": len(x_test), "noise_seed": TEST_NOISE_SEED}
    for factor in NOISE_FACTORS:
        noisy = add_noise(x_test, factor, TEST_NOISE_SEED)
        metrics[f"noise_{factor}"] = quality(x_test, predict(noisy)) | {
            "noisy_input_psnr_db": round(float(np.mean(psnr(x_test, noisy))), 3)
        }
    errors = {
        "clean": reconstruction_error(predict, x_test),
        "noisy_0.5": reconstruction_error(predict, add_noise(x_test, 0.5, TEST_NOISE_SEED)),
    }
    metrics["reconstruction_error"] = {
        name: {f"p{p}": round(float(np.percentile(values, p)), 6) for p in PERCENTILES}
        for name, values in errors.items()
    }
    # Above the 99th percentile of noisy test digits an upload is unlikely to be a digit like MNIST's.
    metrics["anomaly_threshold"] = metrics["reconstruction_error"]["noisy_0.5"]["p99"]
    metrics["check"] = check_metrics(predict, x_test)
    return metrics


# --- the methods compared ---------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    name: str
    denoise: Callable[[Images, float], Images]  # (noisy batch, noise factor) -> denoised batch
    max_images: int | None = None  # too slow for all 10,000: evaluated on the first N
    batched: bool = False  # one call per batch (models) rather than a loop over images
    timed: bool = True
    note: str = ""


def _per_image(function: Callable[[npt.NDArray[np.float32], float], Any]) -> Callable[[Images, float], Images]:
    def run(batch: Images, sigma: float) -> Images:
        return np.stack([np.asarray(function(image[..., 0], sigma), dtype=np.float32) for image in batch])[..., None]

    return run


def classic_methods() -> list[Method]:
    """Classic denoisers with parameters set from the noise level, never tuned on the test set."""
    from scipy import ndimage
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

    methods = [
        Method("noisy input", lambda batch, sigma: batch, batched=True, timed=False),
        Method("median 3x3", _per_image(lambda im, s: ndimage.median_filter(im, size=3))),
        Method("Gaussian blur", _per_image(lambda im, s: ndimage.gaussian_filter(im, 1.0)), note="sigma 1 px"),
        Method(
            "non-local means",
            _per_image(lambda im, s: denoise_nl_means(im, h=0.8 * s, sigma=s, patch_size=3, patch_distance=5)),
            note="h = 0.8 sigma",
        ),
        Method(
            "total variation",
            _per_image(lambda im, s: denoise_tv_chambolle(im, weight=0.6 * s)),
            note="Chambolle, weight 0.6 sigma",
        ),
    ]
    try:
        import bm3d
    except ImportError:  # its wheels exist for few platforms; the table then says it is missing
        return methods
    methods.append(
        Method(
            "BM3D",
            _per_image(lambda im, s: bm3d.bm3d(im, sigma_psd=s)),
            max_images=200,
            note="sigma_psd = sigma; hundreds of ms per image, so the first 200 digits",
        )
    )
    return methods


def load_scorer(path: Path) -> Score | None:
    """The ``score`` endpoint of a SavedModel (the anomaly score), or None for a model without one."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if not hasattr(loaded, "score"):
        return None

    def score(images: Images) -> npt.NDArray[np.float32]:
        chunks = [np.asarray(loaded.score(images[i : i + 1024])) for i in range(0, len(images), 1024)]
        return np.concatenate(chunks).reshape(-1).astype(np.float32)

    return score


def model_method(path: Path) -> Method:
    predict = load_savedmodel(path)
    card = read_card(path)
    name = f"v{path.name}" if path.name.isdigit() else path.name
    label = f"model {name} ({card.architecture if card else '?'})"
    where = os.path.relpath(path) if path.is_absolute() else str(path)
    return Method(label, lambda batch, sigma: predict(batch), batched=True, note=where)


def ms_per_image(method: Method, images: Images, batch_size: int) -> float:
    """Median wall time per image of denoising ``batch_size`` images in one call.

    Classic methods loop over images, so their per-image time does not depend on the batch:
    they are timed once over 16 images.
    """
    batch = images[:batch_size] if method.batched else images[:16]
    repeats = max(5, min(200, 2000 // len(batch))) if method.batched else 1
    method.denoise(batch, 0.5)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        method.denoise(batch, 0.5)
        times.append((time.perf_counter() - started) / len(batch))
    return round(statistics.median(times) * 1000, 4)


def evaluate(methods: list[Method], x_test: Images, printed: Images) -> list[dict[str, Any]]:
    """Quality of each method on MNIST test digits at every noise level, and on printed digits at 0.5."""
    rows = []
    for method in methods:
        n = min(len(x_test), method.max_images or len(x_test))
        clean = x_test[:n]
        row: dict[str, Any] = {"method": method.name, "images": n, "note": method.note}
        for factor in NOISE_FACTORS:
            noisy = add_noise(x_test, factor, TEST_NOISE_SEED)[:n]
            row[f"noise_{factor}"] = quality(clean, method.denoise(noisy, factor))
        m = min(len(printed), method.max_images or len(printed))
        row["printed_images"] = m
        row["printed_noise_0.5"] = quality(
            printed[:m], method.denoise(add_noise(printed, 0.5, TEST_NOISE_SEED)[:m], 0.5)
        )
        if method.timed:
            row["ms_per_image_batch_1"] = ms_per_image(method, x_test, 1)
            row["ms_per_image_batch_256"] = (
                ms_per_image(method, x_test, 256) if method.batched else row["ms_per_image_batch_1"]
            )
        print(f"{method.name:>24}: PSNR at 0.5 = {row['noise_0.5']['psnr_db']:.2f} dB", file=sys.stderr)
        rows.append(row)
    return rows


def robustness(
    models: list[Method], baselines: list[Method], x_test: Images, per_condition: int
) -> list[dict[str, Any]]:
    """Mean PSNR per condition of ``model.shifts.SUITE``: the noisy input, the best classic denoiser, each model.

    The classic denoisers get the noise's true RMS as their sigma (an oracle, in their favour).
    """
    baselines = [m for m in baselines if m.name in SUITE_BASELINES]
    rows = []
    for condition in SUITE:
        target, corrupted = run_condition(condition, x_test[:per_condition], SUITE_SEED)
        sigma = float(np.sqrt(np.mean((corrupted - target) ** 2)))
        classic = {m.name: _mean_psnr(target, m.denoise(corrupted, sigma)) for m in baselines}
        best = max(classic, key=lambda name: classic[name]) if classic else None
        scores = {m.name: _mean_psnr(target, m.denoise(corrupted, sigma)) for m in models}
        rows.append(
            {
                "condition": condition.name,
                "family": condition.family,
                "images": len(target),
                "noisy_input": _mean_psnr(target, corrupted),
                "best_classic": {"method": best, "psnr_db": classic[best]} if best else None,
                "models": scores,
            }
        )
        print(f"{condition.name:>32}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()), file=sys.stderr)
    return rows


def robustness_check(predict: Predict, x_test: Images) -> dict[str, float]:
    """Mean PSNR per suite condition on the first CHECK_IMAGES test digits: for tests to reproduce."""
    checked = {}
    for condition in SUITE:
        target, corrupted = run_condition(condition, x_test[:CHECK_IMAGES][:CHECK_PER_CONDITION], SUITE_SEED)
        checked[condition.name] = _mean_psnr(target, predict(corrupted))
    return checked


def anomaly_check(
    score: Callable[[Images], npt.NDArray[np.float32]], x_test: Images, threshold: float
) -> dict[str, Any]:
    """The anomaly report on a small set from the first CHECK_IMAGES test digits: for tests to reproduce.

    Its glyphs come from matplotlib's test design only, which every machine has.
    """
    from model.anomaly import evaluation_set, report
    from model.fonts import split_designs

    fonts = split_designs("test", bundled_only=True)
    data = evaluation_set(x_test[:CHECK_IMAGES], "test", CHECK_PER_GROUP, ANOMALY_SEED, fonts)
    return report(score(data.images), data, threshold)


def _threshold(path: Path) -> float:
    card = read_card(path)
    if card is None or card.anomaly is None:
        raise ValueError(f"{str(path)!r}: its card gives no anomaly threshold")
    return card.anomaly.threshold


def _card_row(row: dict[str, Any], model: str) -> dict[str, Any]:
    """A suite row as one model's card records it: its own PSNR beside the references."""
    return {key: value for key, value in row.items() if key != "models"} | {"psnr_db": row["models"][model]}


def _mean_psnr(clean: Images, estimate: Images) -> float:
    return round(float(np.mean(psnr(clean, estimate))), 3)


def anomaly_evaluation(model_dirs: list[Path], x_test: Images, split: str, per_group: int) -> dict[str, Any]:
    """Digits (every suite condition) against non-digits (every family): each model's anomaly score.

    Models with a ``score`` endpoint are measured at their card's threshold; every model also
    has its input-output MSE (the old rule) measured, for comparison.
    """
    from model.anomaly import evaluation_set, report, roc_auc

    data = evaluation_set(x_test, split, per_group, ANOMALY_SEED)
    results: dict[str, Any] = {"split": split, "per_group": per_group, "models": {}}
    for path in model_dirs:
        predict = load_savedmodel(path)
        entry: dict[str, Any] = {
            "mse_roc_auc": round(roc_auc(mse(data.images, predict(data.images)), data.labels == 0), 4)
        }
        scorer = load_scorer(path)
        card = read_card(path)
        if scorer is not None and card is not None and card.anomaly is not None:
            entry["score"] = report(scorer(data.images), data, card.anomaly.threshold)
            entry["tradeoff"] = card.anomaly.model_dump().get("tradeoff", [])
        results["models"][f"v{path.name}"] = entry
    return results


SPLITS = {
    "test": "test digits",
    "validation": "validation digits (held out of training by model.train)",
    "training": "training digits (the part model.train fitted on, never held out)",
}


def _split(mnist: Mnist, split: str) -> Images:
    if split == "test":
        return mnist.x_test
    fitted, held_out = split_validation(mnist.x_train, VALIDATION_FRACTION, TRAINING_SEED)
    return held_out if split == "validation" else fitted


def render_markdown(rows: list[dict[str, Any]], context: dict[str, Any], figures: dict[str, str]) -> str:
    """The evaluation page: how it was made, the table, and links to the figures."""
    lines = [
        "# Model evaluation",
        "",
        f"Written by `{context['command']}` at commit {context['commit']} on {context['machine']} "
        f"({context['cpus']} CPUs), "
        f"{context['test_images']} MNIST {SPLITS[context['split']]} from `{context['data_source']}`"
        + (f" (sha256 `{context['data_sha256'][:12]}…`)." if context["data_sha256"] else "."),
        "",
        "| method | images | PSNR 0.3 | PSNR 0.5 | SSIM 0.5 | MSE 0.5 | PSNR 0.7 | printed digits: PSNR 0.5 "
        "| ms/img batch 1 | ms/img batch 256 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['images']} | {r['noise_0.3']['psnr_db']:.2f} | **{r['noise_0.5']['psnr_db']:.2f}** "
            f"| {r['noise_0.5']['ssim']:.3f} | {r['noise_0.5']['mse']:.4f} | {r['noise_0.7']['psnr_db']:.2f} "
            f"| {r['printed_noise_0.5']['psnr_db']:.2f} "
            f"| {_ms(r, 'ms_per_image_batch_1')} | {_ms(r, 'ms_per_image_batch_256')} |"
        )
    lines += [
        "",
        "PSNR in dB and SSIM are means over images; the noise is clip(x + sigma N(0, 1), 0, 1) at sigma 0.3, 0.5 "
        f"and 0.7, one fixed draw (seed {TEST_NOISE_SEED}) shared by all methods. Classic methods run image by "
        "image, so both time columns are per image; models are timed through their SavedModel `serve` endpoint. "
        f"Printed digits: {context['printed_images']} digits typeset with Pillow's font, jittered in stroke and slant, "
        "framed like MNIST (`model.data.printed_digits`): digits the models never saw.",
        "",
        "Parameters: " + "; ".join(f"{r['method']}: {r['note']}" for r in rows if r["note"]) + ".",
    ]
    if context.get("robustness"):
        lines += render_robustness(context["robustness"])
    if context.get("anomaly"):
        lines += render_anomaly(context["anomaly"])
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{title}]({path})" for title, path in figures.items()]
    return "\n".join(lines) + "\n"


def render_robustness(rows: list[dict[str, Any]]) -> list[str]:
    models = list(rows[0]["models"])
    lines = [
        "",
        "## Robustness suite",
        "",
        f"Each condition on {rows[0]['images']} digits of the split (`model/shifts.py`, `SUITE`; seed {SUITE_SEED}). "
        "Shape shifts move the clean digit (the target moves with it) and add noise at sigma 0.5; noise shifts "
        "corrupt the clean digit another way. Best classic: the best of "
        f"{', '.join(SUITE_BASELINES)}, each given the noise's true RMS as its sigma. Mean PSNR in dB.",
        "",
        "| condition | noisy input | best classic | " + " | ".join(models) + " |",
        "|---|---:|---:|" + "---:|" * len(models),
    ]
    for row in rows:
        best = row["best_classic"] or {"psnr_db": float("nan"), "method": "not run"}
        lines.append(
            f"| {row['condition']} | {row['noisy_input']:.2f} | {best['psnr_db']:.2f} ({best['method']}) | "
            + " | ".join(f"{row['models'][m]:.2f}" for m in models)
            + " |"
        )
    mean = {m: statistics.fmean(r["models"][m] for r in rows) for m in models}
    lines.append(
        f"| **mean of {len(rows)} conditions** | {statistics.fmean(r['noisy_input'] for r in rows):.2f} | "
        f"{statistics.fmean(r['best_classic']['psnr_db'] if r['best_classic'] else float('nan') for r in rows):.2f} | "
        + " | ".join(f"**{mean[m]:.2f}**" for m in models)
        + " |"
    )
    return lines


def render_anomaly(result: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Anomaly score",
        "",
        f"Digits at every suite condition and non-digits of every family (`model/anomaly.py`), "
        f"{result['per_group']} of each group from the {result['split']} split's sources (seed {ANOMALY_SEED}). "
        "ROC AUC of the old rule (input-output MSE) beside the score's, and the score's rates at the threshold "
        "calibrated on the validation split (recorded in the model card).",
        "",
        "| model | ROC AUC, input-output MSE | ROC AUC, anomaly score | threshold | digits flagged "
        "| non-digits flagged |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    scored = {}
    for name, entry in result["models"].items():
        score = entry.get("score")
        if score is None:
            lines.append(f"| {name} | {entry['mse_roc_auc']:.3f} | no score | | | |")
            continue
        scored[name] = score
        lines.append(
            f"| {name} | {entry['mse_roc_auc']:.3f} | **{score['roc_auc']:.3f}** | {score['threshold']:.4f} | "
            f"{score['digits_flagged']:.1%} | {score['non_digits_flagged']:.1%} |"
        )
    for name, score in scored.items():
        lines += ["", f"Flagged by group, {name}:", "", "| group | flagged |", "|---|---:|"]
        lines += [f"| {group} | {share:.1%} |" for group, share in score["flagged_by_group"].items()]
        for group, rates in score.get("flagged_by_design", {}).items():
            lines += ["", f"{group}, {name}, flagged by font design of the split:", "", "| design | flagged |"]
            lines += ["|---|---:|", *(f"| {design} | {share:.1%} |" for design, share in rates.items())]
        tradeoff = result["models"][name].get("tradeoff")
        if tradeoff:
            lines += render_tradeoff(name, tradeoff)
    return lines


def render_tradeoff(name: str, rows: list[dict[str, Any]]) -> list[str]:
    """The card's trade-off: thresholds that flag other shares of the validation digits, on the test set."""
    return [
        "",
        f"Trade-off, {name} (from its card, `model.export`): each threshold set to flag a share of the validation "
        "digits, then measured on the card's test set (held-out font designs and photographs):",
        "",
        *tradeoff_table(rows),
    ]


def _ms(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:.3f}" if key in row else "n/a"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="SavedModel directories (default: every version)")
    parser.add_argument("--data", type=Path, default=None, help="Keras-layout mnist.npz (default: Keras download)")
    parser.add_argument(
        "--split",
        choices=tuple(SPLITS),
        default="test",
        help="validation: the training digits model.train held out (--seed 42, 10%%), to choose between models "
        "without looking at the test set; training: the digits it fitted on, to measure what a model memorised",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N digits of the split")
    parser.add_argument("--printed", type=int, default=1000, help="printed (non-MNIST) digits to test on")
    parser.add_argument("--no-baselines", action="store_true", help="skip the classic denoisers")
    parser.add_argument(
        "--suite", type=int, default=500, help="digits per condition of the robustness suite (0: skip it)"
    )
    parser.add_argument(
        "--anomaly", type=int, default=300, help="images per group of the anomaly evaluation (0: skip it)"
    )
    parser.add_argument("--skip", action="append", default=[], metavar="METHOD", help="skip a method by name")
    parser.add_argument("--md", type=Path, default=None, help="write the markdown table here")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--figure", type=Path, default=None, help="write a comparison figure (PNG) here")
    parser.add_argument("--update-card", action="store_true", help="rewrite each model's card from this run")
    args = parser.parse_args(argv)
    if args.update_card and args.split != "test":
        parser.error(f"--update-card records test metrics: it does not go with --split {args.split}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mnist = load_mnist_or_report(args.data)
    if mnist is None:
        return 2
    model_dirs = args.models or sorted(
        (p for p in MODELS_ROOT.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    )
    digits = _split(mnist, args.split)  # the split measured: test or validation
    digits = digits[: args.limit] if args.limit else digits
    baselines = [] if args.no_baselines else classic_methods()
    skipped = {name.lower() for name in args.skip}
    methods = [m for m in baselines if m.name.lower() not in skipped] + [model_method(p) for p in model_dirs]
    rows = evaluate(methods, digits, printed_digits(args.printed, PRINTED_SEED))
    models = [m for m in methods if m.batched and m.timed]
    context = {
        "data_source": mnist.source,
        "data_sha256": mnist.sha256,
        "split": args.split,
        "test_images": len(digits),
        "printed_images": args.printed,
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
        "cpus": os.cpu_count(),
        **measured_on("python -m model.evaluate " + " ".join(sys.argv[1:] if argv is None else argv)),
        "robustness": robustness(models, methods, digits, args.suite) if args.suite else None,
        "anomaly": anomaly_evaluation(model_dirs, digits, args.split, args.anomaly) if args.anomaly else None,
    }
    figures: dict[str, str] = {}
    if args.figure:
        from model.figures import save_samples

        samples = digits[:10]
        noisy = add_noise(samples, 0.5, TEST_NOISE_SEED)
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        save_samples({"original": samples} | {m.name: m.denoise(noisy, 0.5) for m in methods}, args.figure)
        figures["ten test digits at noise 0.5, denoised by each method"] = str(args.figure)
    if args.md:
        for path in model_dirs:  # the loss curves that training wrote beside each committed model
            if (path / "loss.png").is_file() and MODELS_ROOT in path.resolve().parents:
                figures[f"training loss, model v{path.name}"] = str(path / "loss.png")
        args.md.parent.mkdir(parents=True, exist_ok=True)
        linked = {title: os.path.relpath(where, args.md.parent) for title, where in figures.items()}
        args.md.write_text(render_markdown(rows, context, linked))
    print(render_markdown(rows, context, figures))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"context": context, "rows": rows}, indent=2) + "\n")
    if args.update_card:
        anomaly = context["anomaly"]["models"] if context["anomaly"] else {}
        for path, method in zip(model_dirs, models, strict=True):
            suite = [_card_row(row, method.name) for row in context["robustness"] or []]
            scored = anomaly[f"v{path.name}"].get("score") if f"v{path.name}" in anomaly else None
            predict = load_savedmodel(path)
            evaluation = card_metrics(predict, digits) | {"robustness_check": robustness_check(predict, digits)}
            scorer = load_scorer(path)
            check = None if scorer is None else anomaly_check(scorer, digits, _threshold(path))
            update_card(path, evaluation, robustness=suite, anomaly_test=scored, anomaly_check=check)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
