from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.evaluate import CHECK_IMAGES, MODELS_ROOT, SUITE_BASELINES, check_metrics, load_savedmodel, main
from model.shifts import SUITE
from tests.images import SAMPLE

COMMITTED = sorted(p for p in MODELS_ROOT.iterdir() if p.name.isdigit())


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
    card = json.loads((path / "metadata.json").read_text())
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
