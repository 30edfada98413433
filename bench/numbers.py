"""Numbers on pages and scans resized whole: what ``fit=digits`` and the levels of ``fit=stretch`` give.

    python -m bench.numbers --data ../shared/data/mnist.npz   # docs/numbers.{md,json}, the figure; ~3 min

Number pages are 2-10 MNIST *test* digits written side by side (60-140 px tall, gaps of 0-15 px
between their ink, so some pairs touch), dark on a white page, noise added, sent as PNG or JPEG
through the service's own decode, framing, model and encoding (in process, no HTTP), answered with
``size=original``. PSNR is measured on the number's region (the rectangle around its digits'
28x28 frames as drawn) against the clean page; a found box counts as a digit found when its IoU
with a true digit's ink box is at least 0.5 (each true digit matched once).

Scans are one MNIST test digit drawn dark on white at 112-280 px, noise added, saved as JPEG, sent
with the default ``fit=stretch`` and answered at the upload's size, against the clean scan.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from app.framing import MAX_DIGITS, WORKING_SIDE, Framing, find_digits, frame_digits
from app.imaging import Fit, ImageError, Invert, decode
from app.inference import Model, load_model
from app.routes.docs import FIT_DIGITS_PICTURE, STATIC_DIR
from app.settings import DEFAULT_MODEL_DIR
from bench.pages import MAX_PIXELS, Floats, answer, encode, iou, measured_with, psnr, read_upload, written_by
from model.data import load_mnist_or_report

CONDITIONS = (  # (name, noise sigma, JPEG quality or None for PNG)
    ("sigma 0.2", 0.2, None),
    ("sigma 0.3", 0.3, None),
    ("sigma 0.5", 0.5, None),
    ("sigma 0.3, JPEG q85", 0.3, 85),
)
SCAN_CONDITIONS = (("sigma 0.2, JPEG q85", 0.2, 85), ("sigma 0.3, JPEG q85", 0.3, 85))


@dataclass(frozen=True)
class NumberPage:
    clean: Floats  # dark ink on white, [0, 1]
    region: tuple[int, int, int, int]  # x0, y0, x1, y1 of the number's frames
    boxes: list[tuple[int, int, int, int]]  # each digit's ink box (x, y, width, height), in order


def make_number(digits: Floats, rng: np.random.Generator) -> NumberPage:
    """2-10 digits side by side, 60-140 px tall, 0-15 px between their ink, on a white page."""
    count = int(rng.integers(2, 11))
    height = int(rng.integers(60, 141))
    side = round(height * 28 / 20)  # MNIST's digits are 20 px tall in their 28 px frame
    drawn = []
    for index in rng.choice(len(digits), count, replace=False):
        image = Image.fromarray(digits[int(index)].astype(np.float32), mode="F")
        ink = np.clip(np.asarray(image.resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32), 0, 1)
        rows, cols = np.nonzero(ink >= 0.3)  # the edge the service's boxes reach (app/framing.py, EDGE)
        drawn.append((ink, int(cols.min()), int(cols.max()) + 1, int(rows.min()), int(rows.max()) + 1))
    gaps = [int(rng.integers(0, 16)) for _ in range(count - 1)] + [0]
    left, right, top, bottom = (int(rng.integers(20, 100)) for _ in range(4))
    width = left + sum(c1 - c0 for _, c0, c1, _, _ in drawn) + sum(gaps) + right
    page_height = top + side + bottom
    ink_page = np.zeros((page_height, width), dtype=np.float32)
    boxes, x = [], left
    for (ink, c0, c1, r0, r1), gap in zip(drawn, gaps, strict=True):
        frame_x = x - c0  # the digit's frame, placed so that its ink starts at x
        x0, x1 = max(0, frame_x), min(width, frame_x + side)
        target = ink_page[top : top + side, x0:x1]
        np.maximum(target, ink[:, x0 - frame_x : x1 - frame_x], out=target)
        boxes.append((x, top + r0, c1 - c0, r1 - r0))
        x += c1 - c0 + gap
    first = boxes[0][0] - drawn[0][1]
    region = (max(0, first), top, min(width, x - drawn[-1][2] + side), top + side)
    return NumberPage(1.0 - ink_page, region, boxes)


def _crop(pixels: Floats, region: tuple[int, int, int, int]) -> Floats:
    x0, y0, x1, y1 = region
    return pixels[y0:y1, x0:x1]


def _matched(truth: list[tuple[int, int, int, int]], found: list[tuple[int, int, int, int]]) -> int:
    """True digits matched one to one by a found box with IoU >= 0.5, greedily by IoU."""
    pairs = sorted(((iou(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)), reverse=True)
    used_true, used_found, matched = set(), set(), 0
    for overlap, i, j in pairs:
        if overlap < 0.5:
            break
        if i not in used_true and j not in used_found:
            used_true.add(i)
            used_found.add(j)
            matched += 1
    return matched


def score_numbers(model: Model, digits: Floats, pages_per_condition: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for name, sigma, quality in CONDITIONS:
        pages = [make_number(digits, rng) for _ in range(pages_per_condition)]
        uploads = [encode(np.clip(p.clean + sigma * rng.standard_normal(p.clean.shape), 0, 1), quality) for p in pages]
        row: dict[str, Any] = {"condition": name, "pages": len(pages), "digits": sum(len(p.boxes) for p in pages)}
        row["noisy_psnr"] = statistics.fmean(
            psnr(_crop(p.clean, p.region), _crop(read_upload(u), p.region)) for p, u in zip(pages, uploads, strict=True)
        )
        for fit in (Fit.STRETCH, Fit.DIGIT, Fit.DIGITS, Fit.AUTO):
            scores, found_total, matched, exact, refused = [], 0, 0, 0, 0
            for page, upload in zip(pages, uploads, strict=True):
                try:
                    ((prepared, out),) = answer(model, [upload], fit, original_size=True, max_digits=MAX_DIGITS)
                except ImageError:
                    refused += 1
                    continue
                scores.append(psnr(_crop(page.clean, page.region), _crop(out, page.region)))
                if fit is Fit.DIGITS:
                    boxes = [(f.box.x, f.box.y, f.box.width, f.box.height) for f in prepared.framings]
                    found_total += len(boxes)
                    matched += _matched(page.boxes, boxes)
                    exact += len(boxes) == len(page.boxes)
            row[f"{fit.value}_psnr"] = statistics.fmean(scores) if scores else None
            if fit is Fit.DIGITS:
                row["recall"] = matched / row["digits"]
                row["precision"] = matched / found_total if found_total else 0.0
                row["count_exact"] = exact / len(pages)
                row["refused"] = refused
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rows


def score_scans(model: Model, digits: Floats, scans: int, seed: int) -> list[dict[str, Any]]:
    """One digit filling a dark-on-light JPEG scan, resized whole (``fit=stretch``)."""
    rng = np.random.default_rng(seed + 1)
    rows = []
    for name, sigma, quality in SCAN_CONDITIONS:
        cleans, uploads = [], []
        for index in rng.choice(len(digits), scans, replace=False):
            side = int(rng.integers(112, 281))
            image = Image.fromarray(digits[int(index)].astype(np.float32), mode="F")
            ink = np.clip(np.asarray(image.resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32), 0, 1)
            clean = 1.0 - ink
            cleans.append(clean)
            uploads.append(encode(np.clip(clean + sigma * rng.standard_normal(clean.shape), 0, 1), quality))
        answers = answer(model, uploads, Fit.STRETCH, original_size=True)
        scores = [psnr(clean, out) for clean, (_, out) in zip(cleans, answers, strict=True)]
        row = {
            "condition": name,
            "scans": scans,
            "noisy_psnr": statistics.fmean(psnr(c, read_upload(u)) for c, u in zip(cleans, uploads, strict=True)),
            "stretch_psnr": statistics.fmean(scores),
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rows


def finding_cost(digits: Floats, pages: int, rounds: int, seed: int) -> dict[str, Any]:
    """Milliseconds per 1024x768 JPEG page holding a number: finding its digits (``find_digits``),
    finding and framing them (``frame_digits``), both on the working copy the service makes of it,
    and decode and prepare whole."""
    rng = np.random.default_rng(seed + 2)
    uploads: list[bytes] = []
    working: list[Floats] = []
    while len(uploads) < pages:
        number = make_number(digits, rng)
        height, width = number.clean.shape
        if width > 1024 or height > 768:
            continue
        page = np.ones((768, 1024), dtype=np.float32)
        y, x = int(rng.integers(0, 768 - height + 1)), int(rng.integers(0, 1024 - width + 1))
        page[y : y + height, x : x + width] = number.clean
        data = encode(np.clip(page + 0.3 * rng.standard_normal(page.shape), 0, 1), 90)
        uploads.append(data)
        reduced = Image.fromarray(np.rint(read_upload(data) * 255).astype(np.uint8)).reduce(768 // WORKING_SIDE)
        working.append(1.0 - np.asarray(reduced, dtype=np.float32) / 255.0)
    passes: dict[str, list[float]] = {"find_digits": [], "frame_digits": [], "decode_digits": [], "decode_digit": []}
    for _ in range(rounds):  # interleaved, so that a busy spell on a shared machine falls on all alike
        started = time.perf_counter()
        for ink in working:
            find_digits(ink)
        passes["find_digits"].append((time.perf_counter() - started) * 1000 / len(working))
        started = time.perf_counter()
        for ink in working:
            frame_digits(ink, (1024, 768), MAX_DIGITS)
        passes["frame_digits"].append((time.perf_counter() - started) * 1000 / len(working))
        for fit in (Fit.DIGITS, Fit.DIGIT):
            started = time.perf_counter()
            for data in uploads:
                decode(data, Invert.AUTO, MAX_PIXELS, fit, MAX_DIGITS)
            passes[f"decode_{fit.value}"].append((time.perf_counter() - started) * 1000 / len(uploads))
    cost: dict[str, Any] = {
        "pages": pages,
        "rounds": rounds,
        "working_copy": f"{working[0].shape[1]}x{working[0].shape[0]}",
    }
    for name, values in passes.items():
        cost[f"{name}_ms"] = statistics.median(values)
        cost[f"{name}_fastest_ms"] = min(values)
    return cost


def figure(model: Model, digits: Floats, path: Path, swagger_path: Path, seed: int) -> None:
    """A number page before and after ``fit=digits``: the README's picture, and the Swagger page's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rng = np.random.default_rng(seed + 3)
    number = make_number(digits[:20], rng)
    upload = encode(np.clip(number.clean + 0.3 * rng.standard_normal(number.clean.shape), 0, 1), None)
    ((prepared, page),) = answer(model, [upload], Fit.DIGITS, original_size=True, max_digits=MAX_DIGITS)
    ((_, tiles),) = answer(model, [upload], Fit.DIGITS, original_size=False, max_digits=MAX_DIGITS)
    fig, axes = plt.subplots(3, 1, figsize=(8, 6), gridspec_kw={"height_ratios": [3, 3, 1]})
    panels = [
        ("upload (sigma 0.3)", read_upload(upload)),
        ("fit=digits&size=original (boxes: X-Digit-Boxes)", page),
        ("fit=digits (size=28): the digits as 28x28 tiles", tiles),
    ]
    for axis, (title, pixels) in zip(axes, panels, strict=True):
        axis.imshow(pixels, cmap="gray", vmin=0, vmax=1)
        axis.set_title(title, fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
    for framing in prepared.framings:
        box = framing.box
        axes[1].add_patch(Rectangle((box.x, box.y), box.width, box.height, fill=False, color="tab:red", lw=1))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    swagger_figure(read_upload(upload), page, prepared.framings, swagger_path)


def swagger_figure(upload: Floats, answered: Floats, framings: Sequence[Framing], path: Path) -> None:
    """The same upload above its ``fit=digits&size=original`` answer, the boxes found in red, at half
    size: the picture the Swagger page shows beside ``fit`` (served from app/static)."""
    from PIL import ImageDraw

    height, width = upload.shape
    sheet = np.concatenate([upload, np.ones((8, width), np.float32), answered])
    image = Image.fromarray(np.rint(sheet * 255).astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for framing in framings:
        box = framing.box
        y = height + 8 + box.y
        draw.rectangle((box.x, y, box.x + box.width - 1, y + box.height - 1), outline=(214, 39, 40), width=2)
    image = image.reduce(2)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)


def render_markdown(report: dict[str, Any]) -> str:
    cost = report["cost"]
    lines = [
        "# Numbers on pages, and scans resized whole",
        "",
        written_by(report["context"]),
        "",
        "Number pages: 2-10 MNIST *test* digits side by side (60-140 px tall, 0-15 px between their ink, so some",
        "pairs touch), dark on a white page, noise added, sent as PNG or JPEG through the service's decode,",
        "framing, model and encoding, answered with `size=original`. PSNR on the number's region against the",
        "clean page; a digit is found when a box has IoU >= 0.5 with its ink box (one to one).",
        "",
        "| condition | pages | digits | noisy dB | `stretch` dB | `digit` dB | `digits` dB | `auto` dB "
        "| recall | precision | count exact |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["numbers"]:
        lines.append(
            f"| {row['condition']} | {row['pages']} | {row['digits']} | {row['noisy_psnr']:.2f} | "
            f"{row['stretch_psnr']:.2f} | {row['digit_psnr']:.2f} | {row['digits_psnr']:.2f} | "
            f"{row['auto_psnr']:.2f} | {row['recall']:.1%} | {row['precision']:.1%} | {row['count_exact']:.0%} |"
        )
    lines += [
        "",
        "Scans: one MNIST test digit drawn dark on white at 112-280 px, noise added, JPEG, sent with the",
        "default `fit=stretch` and answered at the upload's size, against the clean scan:",
        "",
        "| condition | scans | noisy dB | `fit=stretch` dB |",
        "|---|---:|---:|---:|",
    ]
    for row in report["scans"]:
        lines.append(f"| {row['condition']} | {row['scans']} | {row['noisy_psnr']:.2f} | {row['stretch_psnr']:.2f} |")
    lines += [
        "",
        f"Cost on a 1024x768 JPEG page holding a number (mean over {cost['pages']} pages; the median of "
        f"{cost['rounds']} passes, the fastest in brackets), on the {cost['working_copy']} working copy: finding "
        f"the digits (`find_digits`: where the ink is, its blobs grouped into digits' boxes) "
        f"{cost['find_digits_ms']:.2f} ms ({cost['find_digits_fastest_ms']:.2f}); finding and framing them for the "
        f"model (`frame_digits`) {cost['frame_digits_ms']:.2f} ms ({cost['frame_digits_fastest_ms']:.2f}); "
        "decode and prepare with `fit=digits` "
        f"{cost['decode_digits_ms']:.2f} ms ({cost['decode_digits_fastest_ms']:.2f}), with `fit=digit` "
        f"{cost['decode_digit_ms']:.2f} ms ({cost['decode_digit_fastest_ms']:.2f}). Every upload's digits go to "
        "the model in one call.",
        "",
        "![A number: the upload, fit=digits drawn back with its boxes, and the tiles](figures/number-digits.png)",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a Keras-layout mnist.npz; without it Keras downloads MNIST")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--pages", type=int, default=150, help="number pages per condition")
    parser.add_argument("--scans", type=int, default=300, help="scans per condition")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--md", type=Path, default=Path("docs/numbers.md"))
    parser.add_argument("--json", type=Path, default=Path("docs/numbers.json"))
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/number-digits.png"))
    parser.add_argument("--swagger-figure", type=Path, default=STATIC_DIR / FIT_DIGITS_PICTURE)
    args = parser.parse_args(argv)
    mnist = load_mnist_or_report(args.data)
    if mnist is None:
        return 2
    digits = mnist.x_test[..., 0]
    model = load_model(args.model_dir, threads=0)
    report: dict[str, Any] = {
        "context": measured_with(
            "python -m bench.numbers " + " ".join(argv if argv is not None else sys.argv[1:]), model
        ),
        "numbers": score_numbers(model, digits, args.pages, args.seed),
        "scans": score_scans(model, digits, args.scans, args.seed),
        "cost": finding_cost(digits, 50, 15, args.seed),
    }
    figure(model, digits, args.figure, args.swagger_figure, args.seed)
    args.md.write_text(render_markdown(report))
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(render_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
