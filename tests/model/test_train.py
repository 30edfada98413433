from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.train import RECIPES, main
from tests.images import SAMPLE


@pytest.mark.parametrize("arch", sorted(RECIPES))
def test_one_epoch_exports_a_servable_savedmodel_with_its_card(tmp_path: Path, arch: str) -> None:
    import tensorflow as tf

    out = tmp_path / "1"
    code = main(["--arch", arch, "--data", str(SAMPLE), "--epochs", "1", "--batch-size", "64", "--out", str(out)])
    assert code == 0

    loaded = tf.saved_model.load(str(out))
    batch = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    output = np.asarray(loaded.serve(batch))
    assert output.shape == (5, 28, 28, 1)
    assert output.dtype == np.float32
    assert 0.0 <= output.min() <= output.max() <= 1.0

    card = json.loads((out / "metadata.json").read_text())
    assert card["version"] == 1
    assert card["architecture"] == arch
    assert card["training"]["epochs_run"] == 1
    assert card["training"]["train_images"] + card["training"]["validation_images"] == 300
    assert len(card["training"]["data_sha256"]) == 64
    assert np.isfinite(card["evaluation"]["noise_0.5"]["psnr_db"])
    for name in ("MODEL_CARD.md", "loss.png", "samples.png"):
        assert (out / name).stat().st_size > 0


def test_missing_data_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.npz"
    assert main(["--data", str(missing), "--out", str(tmp_path / "1")]) == 2
    assert f"error: data file {str(missing)!r} does not exist" in capsys.readouterr().err


def test_malformed_data_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_text("not an archive")
    assert main(["--data", str(bad), "--out", str(tmp_path / "1")]) == 2
    assert "is not a readable .npz archive" in capsys.readouterr().err


def test_data_file_without_mnist_arrays_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, images=np.zeros((3, 28, 28), np.uint8))
    assert main(["--data", str(wrong), "--out", str(tmp_path / "1")]) == 2
    assert "lacks the arrays ['x_train', 'y_train', 'x_test', 'y_test']" in capsys.readouterr().err


def test_the_same_command_gives_the_same_metrics(tmp_path: Path) -> None:
    def run(out: Path) -> dict[str, float]:
        argv = ["--arch", "unet", "--data", str(SAMPLE), "--epochs", "1", "--batch-size", "64", "--seed", "3"]
        assert main([*argv, "--out", str(out)]) == 0
        card = json.loads((out / "metadata.json").read_text())
        return {"val_loss": card["training"]["history"]["val_loss"][-1], **card["evaluation"]["noise_0.5"]}

    first, second = run(tmp_path / "a" / "1"), run(tmp_path / "b" / "1")
    assert second["val_loss"] == pytest.approx(first["val_loss"], rel=1e-3)
    assert second["psnr_db"] == pytest.approx(first["psnr_db"], abs=0.02)
