"""What decoding an upload really holds, against what the decoding budget charges for it.

    python -m bench.decoding            # 40 MP uploads (the largest legal size); docs/decoding.json

Each case runs in a fresh process: the image is opened, charged (``decoding_cost``), then prepared
while the kernel tracks the process's peak resident memory (``VmHWM``, reset before each case).
Linux only. tests/bench/test_decoding.py runs the same measurement on smaller images.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.run import ROOT
from model.provenance import measured_on

# (name, Pillow mode of the upload, format, fit)
CASES = [
    ("gray PNG", "L", "PNG", "stretch"),
    ("gray PNG, fit=digit", "L", "PNG", "digit"),
    ("RGBA PNG", "RGBA", "PNG", "stretch"),
    ("RGBA PNG, fit=digit", "RGBA", "PNG", "digit"),
    ("RGB PNG", "RGB", "PNG", "stretch"),
    ("palette PNG", "P", "PNG", "stretch"),
    ("16-bit PNG", "I;16", "PNG", "stretch"),
    ("float TIFF", "F", "TIFF", "digit"),
    ("RGB JPEG", "RGB", "JPEG", "digit"),
    ("thin gray PNG, fit=digit", "L-thin", "PNG", "digit"),
    # Not decoding: drawing the answer of size=original (2048x2048 at most) once the digit is found.
    ("gray PNG, fit=digit: the size=original answer", "L", "PNG", "digit-answer"),
]


def sample(mode: str, side: int) -> bytes:
    """A ``side`` x ``side`` upload (or a strip of as many pixels) with a bar of ink on it."""
    height, width = (side * side // 100, 100) if mode == "L-thin" else (side, side)
    ink = np.zeros((height, width), np.uint8)
    ink[height // 3 : 2 * height // 3, width // 2 - max(1, width // 20) : width // 2 + max(1, width // 20)] = 255
    gray = Image.fromarray(ink)
    image = {
        "L-thin": gray,
        "L": gray,
        "RGBA": Image.merge("RGBA", (gray, gray, gray, Image.new("L", gray.size, 255))),
        "RGB": gray.convert("RGB"),
        "P": gray.convert("P"),
        "I;16": Image.fromarray(ink.astype(np.uint16) * 257),
        "F": Image.fromarray(ink.astype(np.float32) / 255),
    }[mode]
    buffer = io.BytesIO()
    if mode == "F":
        image.save(buffer, format="TIFF", compression="tiff_deflate")
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def upload(name: str, side: int) -> bytes:
    """The upload for case ``name``."""
    _, mode, fmt, _ = next(case for case in CASES if case[0] == name)
    if fmt != "JPEG":
        return sample(mode, side)
    buffer = io.BytesIO()
    Image.open(io.BytesIO(sample(mode, side))).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _child(name: str, path: Path, warm_up: Path) -> dict[str, Any]:
    kind = next(case for case in CASES if case[0] == name)[3]
    if kind == "digit-answer":
        return _child_answer(name, path, warm_up)
    from app.imaging import Fit, ImageError, Invert, decoding_cost, open_image, prepare

    fit = Fit(kind)

    def prepared(data: bytes) -> Image.Image:
        image = open_image(data, 10**9)
        with contextlib.suppress(ImageError):  # no digit on a bar is an answer too: decoding is measured
            prepare(image, Invert.AUTO, fit)
        return image

    prepared(warm_up.read_bytes())  # the code path warmed up on a small image: the peak is the large one's
    data = path.read_bytes()
    image = open_image(data, 10**9)
    cost = decoding_cost(image, fit)
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
    before = _status("VmRSS")
    prepared(data)
    peak = _status("VmHWM") - before
    return {
        "case": name,
        "size": f"{image.size[0]}x{image.size[1]}",
        "mode": image.mode,
        "upload_bytes": len(data),
        "charged_mib": round(cost / 2**20, 1),
        "peak_mib": round(peak / 2**20, 1),
    }


def _child_answer(name: str, path: Path, warm_up: Path) -> dict[str, Any]:
    from app.imaging import Fit, Invert, capped_size, decode, encode_png, rendering_cost

    def drawn(data: bytes) -> tuple[tuple[int, int], int]:
        prepared = decode(data, Invert.AUTO, 10**9, Fit.DIGIT)
        size = capped_size(prepared.size, 2048)  # MAX_OUTPUT_SIDE's default
        Path("/proc/self/clear_refs").write_text("5")
        before = _status("VmRSS")
        encode_png(prepared.pixels, prepared.inverted, size, prepared.framings)
        return size, _status("VmHWM") - before

    drawn(warm_up.read_bytes())
    size, peak = drawn(path.read_bytes())
    return {
        "case": name,
        "size": f"{size[0]}x{size[1]}",
        "mode": "L",
        "upload_bytes": path.stat().st_size,
        "charged_mib": round(rendering_cost(size, framed=True) / 2**20, 1),
        "peak_mib": round(peak / 2**20, 1),
    }


def measure(side: int, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Each case in its own process, which only reads its upload: nothing freed before hides a peak."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, name in enumerate(names or [case[0] for case in CASES]):
            path, warm_up = Path(scratch) / f"{index}", Path(scratch) / f"{index}-warm-up"
            path.write_bytes(upload(name, side))
            warm_up.write_bytes(upload(name, 300))
            done = subprocess.run(
                [sys.executable, "-m", "bench.decoding", "--child", name, str(path), str(warm_up)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=True,
            )
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decoding", description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=6300, help="pixels per side (6300: 40 MP)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "decoding.json")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child[0], Path(args.child[1]), Path(args.child[2]))))
        return 0
    rows = measure(args.side)
    result = {"context": measured_on(f"python -m bench.decoding --side {args.side}"), "rows": rows}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
