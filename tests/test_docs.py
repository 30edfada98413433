"""The documents against their sources: links that resolve, measurements of the served model,
and the headline figures quoted from the committed bench outputs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.inference import latest_version
from app.settings import DEFAULT_MODEL_DIR

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for target in _LINK.findall(document.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        if not (document.parent / target.split("#", 1)[0]).exists():
            broken.append(target)
    assert not broken, f"{document.name} links to files that do not exist: {broken}"


def _model_versions(data: Any, path: str = "") -> list[tuple[str, int]]:
    """Every ``model_version`` recorded in a bench output, with where."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "model_version" and isinstance(value, int):
                found.append((f"{path}/{key}", value))
            elif key in ("context", "rows") or not path:
                found += _model_versions(value, f"{path}/{key}")
    return found


@pytest.mark.parametrize("output", sorted((ROOT / "docs").glob("*.json")), ids=lambda p: p.name)
def test_bench_outputs_measured_the_served_model(output: Path) -> None:
    served = int(latest_version(DEFAULT_MODEL_DIR).name)
    stale = [(where, v) for where, v in _model_versions(json.loads(output.read_text())) if v != served]
    assert not stale, f"{output.name} measured model {stale}, but version {served} is served: rerun its command"


def _cells(document: Path, section: str) -> dict[str, str]:
    """The two-column table under ``## section``: first cell -> second cell."""
    text = document.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    return {key.strip(): value.strip() for key, value in rows[1:]}  # the first is the header


def test_the_capacity_table_quotes_the_latest_make_bench() -> None:
    bench = json.loads((ROOT / "docs" / "benchmarks.json").read_text())

    def row(payload: str, clients: int, target: str = "service") -> dict[str, Any]:
        wanted = (target, payload, clients)
        return next(r for r in bench["rows"] if (r["target"], r["payload"], r["connections"]) == wanted)

    png32 = row("png28", 32)
    best_batch = max(r["images_per_s"] for r in bench["rows"] if r["target"] == "service" and r["payload"] == "batch64")
    process = bench["process"]["service"]
    expected = {
        "28x28 PNG, 32 clients": f"{png32['rps']:,.0f} req/s, p99 {png32['p99_ms']:.0f} ms",
        "28x28 PNG, 1 client": f"p50 {row('png28', 1)['p50_ms']:.2f} ms",
        "1024x768 JPEG, 32 clients": f"{row('jpeg1024x768', 32)['rps']:,.0f} req/s",
        "batches of 64 PNGs": f"{best_batch:,.0f} images/s",
        "the service's own path (identity engine), 28x28 PNG, 32 clients": (
            f"{row('png28', 32, 'service (identity)')['rps']:,.0f} req/s "
            f"(a plain FastAPI echo: {row('png28', 32, 'FastAPI echo')['rps']:,.0f})"
        ),
        "resident memory, largest worker": (
            f"{process['worker_rss_idle_mb']:.0f} MB when ready, {process['worker_rss_after_mb']:.0f} MB after the load"
        ),
        "start to ready": f"{process['ready_s']} s",
    }
    assert _cells(ROOT / "docs" / "operations.md", "Capacity") == expected


def test_the_overload_summary_quotes_the_latest_check() -> None:
    overload = json.loads((ROOT / "docs" / "overload.json").read_text())
    text = (ROOT / "docs" / "operations.md").read_text()
    for setup in overload["setups"]:
        rounds = setup["rounds"]
        peak = max(rounds, key=lambda r: r["peak_share_of_limit"])
        quoted = f"{peak['peak_mib']} MiB ({peak['peak_share_of_limit']:.0%}".replace("%", " %")
        assert quoted in text, f"operations.md does not quote {setup['compose']}'s peak as {quoted!r}"
        failures = sum(r["oom_kills"] + r["restarts"] + r["connection_errors"] for r in rounds)
        assert failures == 0, f"{setup['compose']}: the overload check recorded failures; the docs say none"


def _paragraph(document: Path, starts: str) -> str:
    text = document.read_text()
    return text[text.index(starts) :].split("\n\n", 1)[0].replace("\n", " ")


def _span(values: list[float], digits: int, unit: str) -> str:
    """How prose quotes a range of measurements: "21.5-23.6 dB", or one value when they agree."""
    low, high = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return f"{low}{unit}" if low == high else f"{low}-{high}{unit}"


def test_the_readme_quotes_the_latest_numbers_and_pages_runs() -> None:
    numbers = json.loads((ROOT / "docs" / "numbers.json").read_text())
    framing = json.loads((ROOT / "docs" / "framing.json").read_text())
    rows = {row["condition"]: row for row in numbers["numbers"]}
    png = [row for name, row in rows.items() if "JPEG" not in name]
    quoted = _paragraph(ROOT / "README.md", "On number pages built from MNIST test digits")
    expected = [
        f"{rows['sigma 0.3']['digits_psnr']:.1f} dB with `fit=digits` at noise 0.3",
        _span([r["digits_psnr"] for r in png], 1, " dB from noise 0.5 to 0.2"),
        f"{rows['sigma 0.3, JPEG q85']['digits_psnr']:.1f} dB for JPEG pages",
        f"{rows['sigma 0.3']['digit_psnr']:.1f} dB with `fit=digit`",
        f"{rows['sigma 0.3']['stretch_psnr']:.1f} dB with `fit=stretch`",
        _span([100 * r["recall"] for r in rows.values()], 1, "% of the digits are found"),
        _span([100 * r["precision"] for r in rows.values()], 1, "% of the boxes found are digits"),
        f"within {max(r['digit_psnr'] - r['digits_psnr'] for r in framing['pages']):.2f} dB of `fit=digit`",
        f"{numbers['cost']['frame_digits_ms']:.2f} ms here",
        _span([r["stretch_psnr"] for r in numbers["scans"]], 1, " dB."),
    ]
    missing = [claim for claim in expected if claim not in quoted]
    assert not missing, f"README's numbers paragraph does not quote docs/numbers.json, framing.json: {missing}"
    pages = framing["pages"]
    quoted = _paragraph(ROOT / "README.md", "On 200 pages per noise level")
    expected = [
        _span([r["digit_psnr"] for r in pages if "JPEG" not in r["condition"]], 1, " dB with `fit=digit`"),
        _span([r["stretch_psnr"] for r in pages if "JPEG" not in r["condition"]], 1, " dB with `fit=stretch`"),
        _span([100 * r["iou_at_least_0.8"] for r in pages], 1, "% of pages"),
        f"{next(r for r in pages if 'JPEG' in r['condition'])['digit_psnr']:.1f} dB for JPEG pages",
        f"within {-framing['mnist']['digit_minus_stretch_db']:.2f} dB of `fit=stretch`",
        f"{framing['cost']['frame_digit_ms']:.2f} ms here",
        f"`fit=digit` {framing['cost']['decode_digit_ms']:.2f} ms",
    ]
    missing = [claim for claim in expected if claim not in quoted]
    assert not missing, f"README's pages paragraph does not quote docs/framing.json: {missing}"


# A measured figure in prose: a number with a unit of measure. Targets and limits ("at most 300
# MB", "<= 2.5 s") are requirements, not measurements; figures under 10 with no decimals ("4 s")
# are settings or counts more often than measurements, and would match any source by chance.
_FIGURE = re.compile(
    r"(?<![\w.,/-])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d{2,})(\s?(?:req/s|ms|MB|MiB|GB|dB|%|images/s)| s)(?![\w/])"
)
_REQUIREMENT = re.compile(r"(≤|≥|<=|>=|<|>|at most|at least|target|limit|under|over|up to|budget|within)[\s*]*$")
_CITATION = re.compile(r"git show ([0-9a-f]{7,40}):([\w./-]+)")


# What a figure's unit says it measures, and the output keys that hold such measurements. A number
# under a key of another kind (a count, a setting, a PSNR for a "ms" figure) does not source it;
# keys that name no kind (a condition's name, a list's items) may source any.
_UNIT_KINDS = {"req/s": "rate", "images/s": "rate", "ms": "ms", "MB": "mb", "MiB": "mb", "GB": "mb", "dB": "db"}
_KEY_KINDS = (
    ("rate", re.compile(r"(^|_)rps($|_)|per_s$|throughput", re.IGNORECASE)),
    ("ms", re.compile(r"(^|_)ms($|_)|_ms_", re.IGNORECASE)),
    ("mb", re.compile(r"(^|_)(mb|mib)($|_)|rss|memory|bytes", re.IGNORECASE)),
    ("db", re.compile(r"psnr|(^|_)db($|_)", re.IGNORECASE)),
    ("s", re.compile(r"(^|_)s$|seconds|ready", re.IGNORECASE)),
)
_TEXT_FIGURE = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s?(req/s|images/s|ms|MB|MiB|GB|dB|%| s\b)")
Found = dict[str, set[float]]  # kind ("any" for keys of no kind) -> the numbers


def _kind_of_unit(unit: str) -> str:
    unit = unit.strip()
    return _UNIT_KINDS.get(unit, "share" if unit == "%" else "s")


def _kind_of_key(key: str) -> str:
    return next((kind for kind, pattern in _KEY_KINDS if pattern.search(key)), "any")


def _numbers_in(data: Any, found: Found, kind: str = "any") -> Found:
    if isinstance(data, bool):
        return found
    if isinstance(data, int | float):
        found.setdefault(kind, set()).add(abs(float(data)))  # prose says "0.06 dB worse", the output -0.06
    elif isinstance(data, dict):
        for key, value in data.items():
            own = _kind_of_key(str(key))  # a key's own kind, else its parent's
            _numbers_in(value, found, kind if own == "any" else own)
    elif isinstance(data, list):
        for value in data:
            _numbers_in(value, found, kind)
    elif isinstance(data, str):  # markdown: a table's cells by their column's unit, prose by its own
        header: list[str] = []
        for line in data.splitlines():
            if not line.startswith("|"):
                header = []
                for number, unit in _TEXT_FIGURE.findall(line):
                    found.setdefault(_kind_of_unit(unit), set()).add(float(number.replace(",", "")))
                continue
            cells = line.strip().strip("|").split("|")
            if not header:
                header = cells
                continue
            for title, cell in zip(header, cells, strict=False):
                unit = next((u for u in (*_UNIT_KINDS, "%", " s") if u in f" {title} "), "")
                kind = _kind_of_unit(unit) if unit else "any"
                for number in re.findall(r"\d[\d,]*(?:\.\d+)?", cell):
                    found.setdefault(kind, set()).add(float(number.replace(",", "")))
    return found


def _renderings(found: Found) -> dict[str, set[str]]:
    """Every way prose writes a source's number, by kind: 0-3 decimals, thousands separators, shares as %."""
    written: dict[str, set[str]] = {}
    for kind, numbers in found.items():
        for number in numbers:
            for value in (number, 100 * number) if kind in ("any", "share") else (number,):
                for digits in range(4):
                    written.setdefault(kind, set()).update((f"{value:.{digits}f}", f"{value:,.{digits}f}"))
    return written


def _sources_it(figure: str, unit: str, sources: dict[str, set[str]]) -> bool:
    kind = _kind_of_unit(unit)
    return figure in sources.get(kind, set()) or figure in sources.get("any", set())


# Where the settings a document may quote are defined: defaults, limits, budgets, bench parameters.
_SETTINGS = ["app/settings.py", "docker-compose.yml", "compose.scale.yml", "deploy/**/*.yaml", "bench/*.py"]


def _committed_outputs() -> dict[str, set[str]]:
    """The numbers of every committed bench output and model card, by kind, and of every setting."""
    found: Found = {}
    for path in [*(ROOT / "docs").glob("*.json"), *(ROOT / "model" / "artifacts").rglob("metadata.json")]:
        _numbers_in(json.loads(path.read_text()), found)
    for pattern in _SETTINGS:
        for path in ROOT.glob(pattern):
            found.setdefault("any", set()).update(float(n) for n in re.findall(r"\d+(?:\.\d+)?", path.read_text()))
    return _renderings(found)


def _cited(paragraph: str) -> dict[str, set[str]]:
    """The numbers of the committed outputs a paragraph cites as ``git show REV:PATH``, by kind."""
    found: Found = {}
    for revision, path in _CITATION.findall(paragraph):
        shown = subprocess.run(
            ["git", "show", f"{revision}:{path}"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert shown.returncode == 0, f"cannot read the cited git show {revision}:{path}: {shown.stderr.strip()}"
        _numbers_in(json.loads(shown.stdout) if path.endswith(".json") else shown.stdout, found)
    return _renderings(found)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_measured_figure_is_in_a_committed_output(document: Path) -> None:
    """Each number with a unit in the prose is in a committed bench output or model card, or in the
    earlier output the same paragraph cites (``git show REV:PATH``): a stale or invented figure fails."""
    sources = _committed_outputs()
    unsourced = []
    for paragraph in document.read_text().split("\n\n"):
        cited: dict[str, set[str]] | None = None
        for match in _FIGURE.finditer(paragraph):
            if _REQUIREMENT.search(paragraph[max(0, match.start() - 16) : match.start()]):
                continue
            figure, unit = match.group(1), match.group(2)
            if _sources_it(figure, unit, sources):
                continue
            cited = _cited(paragraph) if cited is None else cited
            if not _sources_it(figure, unit, cited):
                unsourced.append(match.group(0))
    assert not unsourced, f"{document.name} quotes figures found in no committed output: {unsourced}"
