"""The documents against their sources: links that resolve, measurements of the served model,
and the headline figures quoted from the committed bench outputs."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from app.inference import latest_version
from app.settings import DEFAULT_MODEL_DIR

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Documents a bench or evaluation command writes whole (their tables are its output); the others
# are written by hand.
HAND_WRITTEN = [d for d in DOCUMENTS if "Written by `" not in d.read_text()[:600]]
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


def _recorded(data: Any, name: str, path: str = "") -> list[tuple[str, Any]]:
    """Every value recorded under the key ``name`` in a bench output, with where."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key == name:
                found.append((f"{path}/{key}", value))
            else:
                found += _recorded(value, name, f"{path}/{key}")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _recorded(value, name, f"{path}[{index}]")
    return found


# Outputs that do not describe the served model: what they measured instead.
_NO_SERVED_MODEL = {
    "image.json": "the container image's size",
    "designs.json": "every design's parameter count, untrained",
    "decoding.json": "decoding alone, before any model",
    "model-fit.json": "models named in its rows, from training runs",
    "model-robust-selection.json": "models named in its rows, from training runs",
    "model-search.json": "models named in its rows, from training runs",
    "model-selection.json": "models named in its rows, from training runs",
    "model.json": "every committed version, named in its rows",
    "scorer-comparison.json": "the scorers of two versions, named in its rows",
    "scorer-runs.json": "two training runs of the scorer",
    "scorer-designs.json": "a scorer trained on more font designs, and v7's, on validation designs",
    "scorer-classes.json": "the eleven-class scorer's training run and a candidate export, before v8",
    "startup-ab.json": "two commits' startup against each other on v7: their difference is the finding",
    "startup-ab-2.json": "two commits' startup against each other on v7: their difference is the finding",
    "all-fixed-shapes-ab.json": "two commits against each other on v8: their difference is the finding",
    "fixed-shapes-ab.json": "two commits against each other on v8: their difference is the finding",
    "path-ab-2.json": "two commits' request paths against each other on v8: their difference is the finding",
    "stored-png-ab.json": "two commits against each other on v8: their difference is the finding",
    "threads-ab.json": "two commits against each other on v8: their difference is the finding",
    "scorer-two-channels.json": "the first two-channel scorer's run and a candidate export, before v9",
    "scorer-pen.json": "a scorer run with pen-drawn glyphs and a candidate export, after v9, not kept",
    "scorer-letters-weight.json": "a scorer run with letters twice as often and a candidate export, after v9, not kept",
}


@pytest.mark.parametrize(
    "output",
    [p for p in sorted((ROOT / "docs").glob("*.json")) if p.name not in _NO_SERVED_MODEL],
    ids=lambda p: p.name,
)
def test_bench_outputs_measured_the_served_model(output: Path) -> None:
    served = int(latest_version(DEFAULT_MODEL_DIR).name)
    stale = [(where, v) for where, v in _recorded(json.loads(output.read_text()), "model_version") if v != served]
    assert not stale, f"{output.name} measured model {stale}, but version {served} is served: rerun its command"


@pytest.mark.parametrize("output", sorted((ROOT / "docs").glob("*.json")), ids=lambda p: p.name)
def test_bench_outputs_record_the_commit_and_model_they_measured(output: Path) -> None:
    data = json.loads(output.read_text())
    context = data.get("context", data)
    assert isinstance(context.get("command"), str) or "note" in data, f"{output.name} records no command"
    assert re.fullmatch(r"[0-9a-f]{7,40}(\+changes)?", str(context.get("commit"))), (
        f"{output.name} records no commit (context.commit): rerun its command"
    )
    if output.name not in _NO_SERVED_MODEL and context.get("engine") != "identity":  # identity reads no model
        assert _recorded(data, "model_version"), f"{output.name} records no model_version: rerun its command"
        assert _recorded(data, "engine"), f"{output.name} records no engine: rerun its command"


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
        f"{numbers['cost']['find_digits_ms']:.2f} ms here",
        f"{numbers['cost']['frame_digits_ms']:.2f} ms with framing them",
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


# A measured figure in prose: a number with a unit of measure, or a ratio ("1.5x"). Targets and
# limits ("at most 300 MB", "<= 2.5 s") are requirements, not measurements; figures under 10 with no
# decimals ("4 s") are settings or counts more often than measurements, and would match any source by
# chance.
_NUMBER_WRITTEN = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_FIGURE = re.compile(  # a figure, or a range of two ("411.4-417.7 req/s"), with its unit; or a ratio
    rf"(?<![\w.,/-])(?P<low>{_NUMBER_WRITTEN})(?:-(?P<high>{_NUMBER_WRITTEN}))?"
    r"(?P<unit>\s?(?:req/s|ms|MB|MiB|GB|dB|%|images/s)| s)(?![\w/])"
    r"|(?<![\w.,/-])(?P<ratio>\d+\.\d+)(?P<times>x|\u00d7)(?![\w\d])"
)


def _measured(number: str) -> bool:
    """Whether a number reads as a measurement rather than a count or a setting ("4 s", "2 workers")."""
    return "." in number or "," in number or int(number) >= 10


_REQUIREMENT = re.compile(r"(≤|≥|<=|>=|<|>|at most|at least|target|limit|under|over|up to|budget|within)[\s*]*$")
_CITATION = re.compile(r"git show ([0-9a-f]{7,40}):([\w./-]+)")
_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])\d+(?:\.\d+)?")


# What a figure's unit says it measures, and the output keys that hold such measurements. A number
# sources a figure only under a key of the figure's kind (a count, a setting's value or a PSNR never
# sources a "ms" figure); a key of no kind of its own takes its parent's. Numbers under keys of no
# kind at all ("unkinded": seeds, sizes, names' numbers) source no figure with a unit.
_UNIT_KINDS = {
    "req/s": "rate",
    "images/s": "rate",
    "ms": "ms",
    "MB": "mb",
    "MiB": "mb",
    "GB": "mb",
    "dB": "db",
    "%": "share",
    "s": "s",
    "x": "ratio",
    "\u00d7": "ratio",
}
_KEY_KINDS = (
    ("rate", re.compile(r"(^|_)rps($|_)|per_s(_median)?$|throughput", re.IGNORECASE)),
    ("ms", re.compile(r"(^|_)ms($|_)|_ms_", re.IGNORECASE)),
    ("mb", re.compile(r"(^|_)(mb|mib)($|_)|rss|memory|bytes", re.IGNORECASE)),
    ("db", re.compile(r"psnr|(^|_)db($|_)|robustness", re.IGNORECASE)),
    ("s", re.compile(r"(^|_)s$|seconds|ready", re.IGNORECASE)),
    ("share", re.compile(r"flagged|recall|precision|share|fraction|(^|_)iou|auc|change|percent|_cost$", re.IGNORECASE)),
    ("ratio", re.compile(r"ratio|speedup|(^|_)x($|_)", re.IGNORECASE)),
    ("count", re.compile(r"(^|_)(images|digits|pages|requests|parameters|objects|scans|count)($|_)", re.IGNORECASE)),
)
_TEXT_FIGURE = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s?(req/s|images/s|ms|MB|MiB|GB|dB|%|x\b| s\b)")
Found = dict[str, set[float]]  # kind -> the numbers ("setting": a value in a file that defines settings)


def _kind_of_unit(unit: str) -> str:
    return _UNIT_KINDS[unit.strip()]


def _kind_of_key(key: str) -> str | None:
    return next((kind for kind, pattern in _KEY_KINDS if pattern.search(key)), None)


def _kind_of_title(title: str) -> str | None:
    """What a table's column (or row) heading says its numbers measure: a unit, or a key's kind."""
    unit = next((u for u in _UNIT_KINDS if re.search(rf"(?<![\w/]){re.escape(u)}(?![\w])", title)), None)
    return _kind_of_unit(unit) if unit else _kind_of_key(title.strip().replace(" ", "_"))


def _numbers_in(data: Any, found: Found, kind: str | None = None) -> Found:
    if isinstance(data, bool):
        return found
    if isinstance(data, int | float):
        # Prose says "0.06 dB worse", the output -0.06. A number under no kind sources only figures
        # without a unit, which are specific enough ("8,241", "0.9947") not to match by chance.
        found.setdefault(kind or "unkinded", set()).add(abs(float(data)))
    elif isinstance(data, dict):
        for key, value in data.items():
            _numbers_in(value, found, _kind_of_key(str(key)) or kind)
    elif isinstance(data, list):
        for value in data:
            _numbers_in(value, found, kind)
    elif isinstance(data, str):  # markdown: a table's cells by their own or their column's unit, prose by its own
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
            row_kind = _kind_of_title(cells[0])  # "| start to ready (s) | 2.71 | ...": a table turned on its side
            for title, cell in zip(header, cells, strict=False):
                for number, unit in _TEXT_FIGURE.findall(cell):
                    found.setdefault(_kind_of_unit(unit), set()).add(float(number.replace(",", "")))
                kind_here = _kind_of_title(title) or row_kind
                if not _TEXT_FIGURE.search(cell):
                    for number in _NUMBER.findall(cell):
                        found.setdefault(kind_here or "unkinded", set()).add(float(number.replace(",", "")))
    return found


def _renderings(found: Found) -> dict[str, set[str]]:
    """Every way prose writes a source's number, by kind: 0-3 decimals, thousands separators, shares as %."""
    written: dict[str, set[str]] = {}
    for kind, numbers in found.items():
        for number in numbers:
            for value in (number, 100 * number) if kind in ("share", "setting") else (number,):
                for digits in range(5):
                    written.setdefault(kind, set()).update((f"{value:.{digits}f}", f"{value:,.{digits}f}"))
    return written


def _sources_it(figure: str, kind: str, sources: dict[str, set[str]]) -> bool:
    return figure in sources.get(kind, set()) or figure in sources.get("setting", set())


def _derived(figure: str, kind: str, paragraph: str, sources: dict[str, set[str]]) -> bool:
    """Whether the figure is the difference, the ratio or the relative change of two sourced numbers
    the same paragraph quotes ("gained 0.45 dB (19.71 to 20.16)", "1.5x TensorFlow's requests")."""
    digits = len(figure.partition(".")[2])
    operand_kinds = {kind} if kind != "ratio" else {k for k in sources if k != "setting"}
    operands = {
        float(n.replace(",", ""))
        for n in _NUMBER.findall(paragraph)
        if any(n in sources.get(k, set()) for k in operand_kinds) and float(n.replace(",", "")) != 0
    }
    for a in operands:
        for b in operands:
            if a == b:
                continue
            derived = [a / b] if kind == "ratio" else [abs(a - b)]
            if kind == "share":
                derived.append(100 * abs(a - b) / b)
            if any(f"{value:,.{digits}f}" == figure or f"{value:.{digits}f}" == figure for value in derived):
                return True
    return False


# Where the settings a document may quote are defined: defaults, limits, budgets, bench parameters.
_SETTINGS = ["app/settings.py", "docker-compose.yml", "compose.scale.yml", "deploy/**/*.yaml", "bench/*.py"]


@cache  # the same for every document checked; read once
def _committed_outputs() -> dict[str, set[str]]:
    """The numbers of every committed bench output and model card, by kind, and of every setting."""
    found: Found = {}
    for path in [*(ROOT / "docs").glob("*.json"), *(ROOT / "model" / "artifacts").rglob("metadata.json")]:
        _numbers_in(json.loads(path.read_text()), found)
    for document in DOCUMENTS:  # a document a command writes whole is its output too
        if document not in HAND_WRITTEN:
            _numbers_in(document.read_text(), found)
    for pattern in _SETTINGS:
        for path in ROOT.glob(pattern):
            numbers = re.findall(r"\d+(?:\.\d+)?", path.read_text())
            found.setdefault("setting", set()).update(float(n) for n in numbers)
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


Sources = dict[str, set[str]]
Figures = Callable[[str], Iterator[tuple[str, str, str]]]  # paragraph -> (figure, kind, how to name it)
Sourced = Callable[[str, str, str, Sources], bool]  # figure, kind, paragraph, sources


def _unsourced(text: str, sources: Sources, figures: Figures, sourced: Sourced) -> list[str]:
    """The figures of each paragraph that are ``sourced`` neither by ``sources`` nor, beside them,
    by the earlier outputs the paragraph cites (read only when needed: one git call each)."""
    unsourced = []
    for paragraph in text.split("\n\n"):
        either: Sources | None = None
        for figure, kind, name in figures(paragraph):
            if sourced(figure, kind, paragraph, sources):
                continue
            if either is None:
                cited = _cited(paragraph)
                either = {k: sources.get(k, set()) | cited.get(k, set()) for k in {*sources, *cited}}
            if not sourced(figure, kind, paragraph, either):
                unsourced.append(name)
    return unsourced


def _requirement(paragraph: str, match: re.Match[str]) -> bool:
    return bool(_REQUIREMENT.search(paragraph[max(0, match.start() - 16) : match.start()]))


def _unit_figures(paragraph: str) -> Iterator[tuple[str, str, str]]:
    for match in _FIGURE.finditer(paragraph):
        if _requirement(paragraph, match):
            continue
        if match["ratio"]:
            figures, kind = [match["ratio"]], "ratio"
        else:
            figures = [n for n in (match["low"], match["high"]) if n and _measured(n)]
            kind = _kind_of_unit(match["unit"])
        for figure in figures:
            yield figure, kind, f"{figure} in {match.group(0)!r}"


def unsourced_figures(text: str, sources: Sources) -> list[str]:
    """The measured figures of a document found neither in the sources, of their kind, nor in the
    outputs their paragraph cites, nor derived from sourced numbers of their paragraph."""

    def sourced(figure: str, kind: str, paragraph: str, found: Sources) -> bool:
        return _sources_it(figure, kind, found) or _derived(figure, kind, paragraph, found)

    return _unsourced(text, sources, _unit_figures, sourced)


# A figure without a unit: a count written with thousands separators ("10,000 test digits") or a
# number with three decimals or more ("ROC AUC 0.9947"). Found under a key of any kind, in the
# output its paragraph cites, or derived from two sourced numbers its paragraph quotes.
_BARE_FIGURE = re.compile(
    r"(?<![\w.,/-])(\d+\.\d{3,}|\d{1,3}(?:,\d{3})+)"
    r"(?![\w,/-]|\.\d|\s?(?:req/s|ms|MB|MiB|GB|dB|%|images/s|s\b|x\b))"
)


def _bare_figures(paragraph: str) -> Iterator[tuple[str, str, str]]:
    for match in _BARE_FIGURE.finditer(paragraph):
        if not _requirement(paragraph, match):
            yield match.group(1), "any", match.group(1)


def unsourced_bare_figures(text: str, sources: Sources) -> list[str]:
    """The unitless figures of a document found in no source of any kind, nor derived from two."""

    def sourced(figure: str, _: str, paragraph: str, found: Sources) -> bool:
        return any(figure in found[kind] or _derived(figure, kind, paragraph, found) for kind in found)

    return _unsourced(text, sources, _bare_figures, sourced)


@pytest.mark.parametrize("document", HAND_WRITTEN, ids=lambda p: p.name)
def test_every_unitless_figure_written_by_hand_is_in_a_committed_output(document: Path) -> None:
    """Counts and ratios written by hand come from an output too (generated documents are outputs)."""
    unsourced = unsourced_bare_figures(document.read_text(), _committed_outputs())
    assert not unsourced, f"{document.name} quotes unitless figures found in no committed output: {unsourced}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_measured_figure_is_in_a_committed_output(document: Path) -> None:
    """Each number with a unit in the prose is in a committed bench output or model card under a key
    of its kind, or in the earlier output the same paragraph cites (``git show REV:PATH``), or is the
    difference or ratio of two such numbers the paragraph quotes: a stale or invented figure fails."""
    unsourced = unsourced_figures(document.read_text(), _committed_outputs())
    assert not unsourced, f"{document.name} quotes figures found in no committed output: {unsourced}"


def test_the_figure_check_fails_on_stale_invented_and_underived_figures() -> None:
    sources = _renderings({"db": {21.57, 21.62}, "ms": {2.078}, "share": {0.109}, "setting": {512.0}})
    assert unsourced_figures("v4 scores 21.62 dB in 2.08 ms, HAProxy costs 10.9% of it.", sources) == []
    assert unsourced_figures("v4 scores 21.63 dB.", sources) == ["21.63 in '21.63 dB'"]  # stale or mistyped
    assert unsourced_figures("a call takes 21.62 ms.", sources) == ["21.62 in '21.62 ms'"]  # a PSNR is no time
    assert unsourced_figures("it gains 0.05 dB (21.62 against 21.57).", sources) == []
    assert unsourced_figures("it gains 0.05 dB.", sources) == ["0.05 in '0.05 dB'"]  # a difference of what?
    assert unsourced_figures("it gains 0.05 dB (21.62 against 21.58).", sources) == ["0.05 in '0.05 dB'"]
    assert unsourced_figures("between 21.57-21.62 dB", sources) == []
    assert unsourced_figures("between 21.57-21.64 dB", sources) == ["21.64 in '21.57-21.64 dB'"]  # a range's end
    assert unsourced_figures("21.62 dB, 1.0x the PSNR of the 21.57 dB model", sources) == []
    assert unsourced_figures("a limit of 512 MiB; at most 900 MiB", sources) == []  # a setting, a requirement
    counts = _renderings({"count": {10_000.0}, "unkinded": {0.9947}})
    assert unsourced_bare_figures("On the 10,000 test digits, ROC AUC 0.9947.", counts) == []
    assert unsourced_bare_figures("On the 10,001 test digits, ROC AUC 0.9948.", counts) == ["10,001", "0.9948"]
