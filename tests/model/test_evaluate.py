from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from model.card import CARD_FILE
from model.data import add_noise
from model.evaluate import (
    CHECK_IMAGES,
    MODELS_ROOT,
    SUITE_BASELINES,
    TEST_NOISE_SEED,
    anomaly_check,
    check_metrics,
    load_scorer,
    main,
    quality,
    robustness_check,
)
from model.savedmodel import load_savedmodel
from model.shifts import SUITE
from tests.images import SAMPLE

COMMITTED = sorted(p for p in MODELS_ROOT.iterdir() if p.name.isdigit())
SERVED = max(COMMITTED, key=lambda p: int(p.name))


def _card(path: Path) -> dict[str, Any]:
    card: dict[str, Any] = json.loads((path / CARD_FILE).read_text())
    return card


def _sample_digits() -> npt.NDArray[np.float32]:
    with np.load(SAMPLE) as npz:
        return np.asarray(npz["x_test"], dtype=np.float32)[..., np.newaxis] / 255.0


def test_evaluation_on_a_subset_writes_the_table_and_json(tmp_path: Path) -> None:
    md, js, figure = tmp_path / "model.md", tmp_path / "model.json", tmp_path / "comparison.png"
    argv = [
        "--data",
        str(SAMPLE),
        "--limit",
        "40",
        "--printed",
        "20",
        "--skip",
        "BM3D",
        "--suite",
        "6",
        "--anomaly",
        "3",
        "--md",
        str(md),
        "--json",
        str(js),
    ]
    assert main([*argv, "--figure", str(figure)]) == 0

    rows = {row["method"]: row for row in json.loads(js.read_text())["rows"]}
    assert {"noisy input", "median 3x3", "Gaussian blur", "non-local means", "total variation"} <= set(rows)
    assert "BM3D" not in rows
    model_rows = [name for name in rows if name.startswith("model v")]
    assert len(model_rows) == len(COMMITTED)
    for name in model_rows:
        assert rows[name]["images"] == 40
        # Every committed model must beat the noisy input and the best classic method by a wide margin.
        assert rows[name]["noise_0.5"]["psnr_db"] > rows["median 3x3"]["noise_0.5"]["psnr_db"] + 3
        assert rows[name]["ms_per_image_batch_256"] > 0
        # ...and on printed digits it never saw, too.
        assert rows[name]["printed_images"] == 20
        assert rows[name]["printed_noise_0.5"]["psnr_db"] > rows["median 3x3"]["printed_noise_0.5"]["psnr_db"]
    result = json.loads(js.read_text())["context"]
    suite = result["robustness"]
    assert [row["condition"] for row in suite] == [condition.name for condition in SUITE]
    for row in suite:
        assert set(row["models"]) == set(model_rows)
        assert row["best_classic"]["method"] in SUITE_BASELINES
    assert set(result["anomaly"]["models"]) == {f"v{p.name}" for p in COMMITTED}
    table = md.read_text()
    main_table = table.split("## Robustness suite")[0]
    assert sum(line.startswith("| ") for line in main_table.splitlines()) == len(rows) + 1  # header + a row each
    assert "## Robustness suite" in table
    assert "## Anomaly score" in table
    assert figure.stat().st_size > 0


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: f"v{p.name}")
def test_committed_card_metrics_are_reproduced(path: Path) -> None:
    card = json.loads((path / CARD_FILE).read_text())
    recorded = card["evaluation"]["check"]
    with np.load(SAMPLE) as npz:
        x_test = (npz["x_test"].astype(np.float32) / 255.0)[..., np.newaxis]
    measured = check_metrics(load_savedmodel(path), x_test)
    assert measured["images"] == recorded["images"] == CHECK_IMAGES
    assert measured["psnr_db"] == pytest.approx(recorded["psnr_db"], abs=0.02)
    assert measured["ssim"] == pytest.approx(recorded["ssim"], abs=0.002)
    assert measured["mse"] == pytest.approx(recorded["mse"], rel=0.01)


# The 300 sample training digits: model.train holds 10 % out for validation and fits on the rest.
@pytest.mark.parametrize(("split", "images"), [("validation", 30), ("training", 270)])
def test_models_are_compared_on_the_training_digits_without_the_test_set(
    tmp_path: Path, split: str, images: int
) -> None:
    js = tmp_path / f"{split}.json"
    argv = ["--data", str(SAMPLE), "--split", split, "--no-baselines", "--printed", "5", "--json", str(js)]
    argv += ["--suite", "0", "--anomaly", "0"]
    assert main([*argv, str(COMMITTED[-1])]) == 0
    result = json.loads(js.read_text())
    assert result["context"]["split"] == split
    assert [row["images"] for row in result["rows"]] == [images]


@pytest.mark.parametrize("split", ["validation", "training"])
def test_only_test_metrics_go_into_a_model_card(capsys: pytest.CaptureFixture[str], split: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(SAMPLE), "--split", split, "--update-card"])
    assert exit_info.value.code == 2
    assert f"--update-card records test metrics: it does not go with --split {split}" in capsys.readouterr().err


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: f"v{p.name}")
def test_committed_robustness_check_is_reproduced(path: Path) -> None:
    recorded = _card(path)["evaluation"]["robustness_check"]
    measured = robustness_check(load_savedmodel(path), _sample_digits())
    assert set(measured) == set(recorded)
    for condition, psnr_db in recorded.items():
        assert measured[condition] == pytest.approx(psnr_db, abs=0.05), condition


def test_the_served_models_anomaly_check_is_reproduced() -> None:
    anomaly = _card(SERVED)["anomaly"]
    scorer = load_scorer(SERVED)
    assert scorer is not None, "the served model has no score endpoint"
    measured = anomaly_check(scorer, _sample_digits(), anomaly["threshold"])
    recorded = anomaly["check"]
    assert measured["roc_auc"] == pytest.approx(recorded["roc_auc"], abs=0.005)
    assert measured["digits_flagged"] == pytest.approx(recorded["digits_flagged"], abs=0.01)
    assert measured["non_digits_flagged"] == pytest.approx(recorded["non_digits_flagged"], abs=0.01)


# The full MNIST file where this machine has it (the Makefile's DATA); elsewhere the full-set test skips.
FULL_MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist.npz"


@pytest.mark.skipif(not FULL_MNIST.is_file(), reason=f"the full MNIST file is not at {FULL_MNIST}")
def test_the_served_models_full_test_set_psnr_is_reproduced() -> None:
    """The card's headline figure (and the README's), recomputed on all 10,000 test digits."""
    with np.load(FULL_MNIST) as npz:
        x_test = (npz["x_test"].astype(np.float32) / 255.0)[..., np.newaxis]
    recorded = _card(SERVED)["evaluation"]["noise_0.5"]
    measured = quality(x_test, load_savedmodel(SERVED)(add_noise(x_test, 0.5, TEST_NOISE_SEED)))
    assert measured["psnr_db"] == pytest.approx(recorded["psnr_db"], abs=0.01)
    assert measured["psnr_db"] >= 21.5


def test_the_served_model_meets_its_targets_on_its_card() -> None:
    """The issue's targets, as the card records them from the full test evaluation."""
    card = _card(SERVED)
    assert card["evaluation"]["noise_0.5"]["psnr_db"] >= 21.5
    assert card["anomaly"]["test"]["roc_auc"] >= 0.97
    seed = _card(min(COMMITTED, key=lambda p: int(p.name)))
    assert seed["architecture"] == "seed"
    ours = {row["condition"]: row["psnr_db"] for row in card["robustness"]}
    theirs = {row["condition"]: row["psnr_db"] for row in seed["robustness"]}
    assert set(ours) == set(theirs)
    assert sum(ours.values()) / len(ours) >= sum(theirs.values()) / len(theirs) + 1.5


def test_the_served_scorer_meets_issue_24s_targets_on_its_card() -> None:
    """The flag's targets on the card's test evaluation: font designs never seen in training or when
    the threshold was chosen; the threshold chosen on validation alone."""
    anomaly = _card(SERVED)["anomaly"]
    test, fonts = anomaly["test"], anomaly["fonts"]
    assert set(fonts["test"]).isdisjoint(fonts["train"] + fonts["validation"])
    assert set(test["flagged_by_design"]["letters and symbols"]) == set(fonts["test"])
    by_group = test["flagged_by_group"]
    assert by_group["shapes"] >= 0.90
    assert by_group["several digits"] >= 0.90
    plain = [by_group[f"digit: gaussian sigma 0.{tenth}"] for tenth in range(1, 6)]
    assert max(plain) <= 0.02
    suite = [by_group[f"digit: {condition.name}"] for condition in SUITE]
    assert sum(suite) / len(suite) <= 0.05
    assert test["roc_auc"] >= 0.99
    assert anomaly["threshold"] == pytest.approx(anomaly["validation"]["threshold"], abs=1e-6)


@pytest.mark.xfail(strict=True, reason="issue 24's target is not met: v9 flags 79% of held-out designs' letters")
def test_the_served_scorer_flags_85_percent_of_letters_in_held_out_designs() -> None:
    """Strict: when a version meets the target, this passes, the run fails, and the mark must go."""
    assert _card(SERVED)["anomaly"]["test"]["flagged_by_group"]["letters and symbols"] >= 0.85
