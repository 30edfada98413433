"""``make train`` builds the served versions the way their cards say they were built."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from model.card import CARD_FILE

ROOT = Path(__file__).resolve().parents[2]
SERVED = sorted((ROOT / "model" / "artifacts" / "denoiser").iterdir())


def _arguments(command: str) -> tuple[str, ...]:
    """A command's module and arguments, without where it writes (``--out``, ``--no-export``):
    the same training whatever directory it lands in."""
    words = shlex.split(command)
    words = words[words.index("-m") :]
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--out":
            skip = True
        elif word != "--no-export":
            kept.append(word)
    return tuple(kept)


@pytest.fixture(scope="module")
def make_train() -> set[tuple[str, ...]]:
    printed = subprocess.run(
        ["make", "-n", "-o", ".venv/.dev", "train"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.replace("\\\n", " ")
    return {_arguments(line) for line in printed.splitlines() if " -m model." in line}


@pytest.mark.parametrize("version", SERVED, ids=lambda p: p.name)
def test_make_train_runs_the_commands_the_card_records(version: Path, make_train: set[tuple[str, ...]]) -> None:
    card = json.loads((version / CARD_FILE).read_text())
    scorer = card.get("anomaly", {}).get("training", {})  # v3 has no scorer
    recorded = [card["training"]["command"], scorer.get("command"), scorer.get("calibration")]
    missing = [command for command in recorded if command and _arguments(command) not in make_train]
    assert not missing, f"make train does not run what version {version.name}'s card records: {missing}"
