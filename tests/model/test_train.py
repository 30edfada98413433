from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.card import CARD_FILE
from model.designs import DESIGNS
from model.train import main
from tests.images import SAMPLE


@pytest.mark.parametrize("arch", sorted(DESIGNS))
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

    card = json.loads((out / CARD_FILE).read_text())
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
        card = json.loads((out / CARD_FILE).read_text())
        return {"val_loss": card["training"]["history"]["val_loss"][-1], **card["evaluation"]["noise_0.5"]}

    first, second = run(tmp_path / "a" / "1"), run(tmp_path / "b" / "1")
    assert second["val_loss"] == pytest.approx(first["val_loss"], rel=1e-3)
    assert second["psnr_db"] == pytest.approx(first["psnr_db"], abs=0.02)


def test_a_run_without_export_is_finished_by_model_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tensorflow as tf

    from model import export

    out = tmp_path / "7"
    argv = ["--arch", "seed", "--data", str(SAMPLE), "--epochs", "1", "--batch-size", "64", "--no-export"]
    assert main([*argv, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [export.WEIGHTS_FILE, export.RUN_FILE]
    assert f"python -m model.export {out}" in capsys.readouterr().out

    assert export.main([str(out), "--data", str(SAMPLE)]) == 0
    card = json.loads((out / CARD_FILE).read_text())
    assert card["version"] == 7
    assert card["training"]["backend"] == "tensorflow"
    assert card["training"]["command"].endswith("--no-export --out " + str(out))
    loaded = tf.saved_model.load(str(out))  # kept referenced: its variables die with it
    output = np.asarray(loaded.serve(np.zeros((2, 28, 28, 1), np.float32)))
    assert output.shape == (2, 28, 28, 1)


def test_export_of_a_directory_that_is_not_a_run_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from model import export

    assert export.main([str(tmp_path), "--data", str(SAMPLE)]) == 2
    assert "is not a training run: it lacks ['training.json', 'model.weights.h5']" in capsys.readouterr().err


def test_fresh_noise_depends_on_seed_epoch_and_batch_not_on_call_order() -> None:
    from model.batches import NoisyBatches

    clean = np.random.default_rng(0).random((10, 28, 28, 1), dtype=np.float32)
    a = NoisyBatches(clean, 4, seed=5, noise_range=(0.25, 0.75))
    b = NoisyBatches(clean, 4, seed=5, noise_range=(0.25, 0.75))
    assert len(a) == 3
    last_first = [b[i] for i in (2, 1, 0)][::-1]
    for (noisy_a, clean_a), (noisy_b, clean_b) in zip([a[i] for i in range(3)], last_first, strict=True):
        np.testing.assert_array_equal(noisy_a, noisy_b)
        np.testing.assert_array_equal(clean_a, clean_b)
        assert noisy_a.min() >= 0.0
        assert noisy_a.max() <= 1.0
    first_epoch = a[0][0]
    a.on_epoch_end()
    assert not np.array_equal(a[0][0], first_epoch)  # new order and new noise every epoch


def test_the_seed_recipe_keeps_one_noise_draw_for_the_whole_run() -> None:
    from model.batches import NoisyBatches

    clean = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    batches = NoisyBatches(clean, 8, seed=5, fixed_noise=0.5)
    noisy, target = batches[0]
    batches.on_epoch_end()
    noisy_again, target_again = batches[0]
    # The same images with the same noise, reshuffled: sort both by the clean image to compare.
    first, again = np.argsort(target.sum(axis=(1, 2, 3))), np.argsort(target_again.sum(axis=(1, 2, 3)))
    np.testing.assert_array_equal(noisy[first], noisy_again[again])


def test_augmented_training_records_its_noise(tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = ["--arch", "unet", "--augment", "--data", str(SAMPLE), "--epochs", "1", "--batch-size", "64"]
    assert main([*argv, "--no-export", "--out", str(out)]) == 0
    run = json.loads((out / "training.json").read_text())
    assert run["noise"] == "shape and noise shifts drawn afresh per batch (model.shifts.augment)"
    assert np.isfinite(run["history"]["val_loss"][0])


def test_the_seed_recipe_is_not_augmented(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--arch", "seed", "--augment", "--out", str(tmp_path / "1")])
    assert "--augment is not for the seed recipe" in capsys.readouterr().err


def test_fine_tuning_starts_from_an_exported_version(tmp_path: Path) -> None:
    first = tmp_path / "1"
    base = ["--data", str(SAMPLE), "--epochs", "1", "--batch-size", "64"]
    assert main(["--arch", "seed", *base, "--out", str(first)]) == 0
    second = tmp_path / "2"
    assert main(["--arch", "seed", *base, "--init-from", str(first), "--no-export", "--out", str(second)]) == 0
    run = json.loads((second / "training.json").read_text())
    assert run["initial_weights"] == str(first)
    # Started from trained weights, the first epoch starts where the first run ended, not at random.
    first_run = json.loads((first / CARD_FILE).read_text())["training"]
    assert run["history"]["loss"][0] < first_run["history"]["loss"][0]
    with pytest.raises(SystemExit, match="does not hold the weights of 'unet'"):
        main(["--arch", "unet", *base, "--init-from", str(first), "--no-export", "--out", str(tmp_path / "3")])


def test_an_export_with_a_scorer_gives_both_outputs_to_openvino_as_tensorflow_does(tmp_path: Path) -> None:
    import tensorflow as tf

    from app.engines import Precision
    from app.engines.openvino import load
    from model.anomaly import build_scorer, served_score
    from model.export import _export_with_scorer

    out = tmp_path / "1"
    model, scorer = DESIGNS["seed"].build(), build_scorer()
    _export_with_scorer(model, scorer, out)
    compiled = load(out, Precision.F32, threads=1)
    assert compiled.has_scorer
    batch = np.random.default_rng(1).random((3, 28, 28, 1), dtype=np.float32)
    denoised, scores = compiled.run(batch)
    loaded = tf.saved_model.load(str(out))
    np.testing.assert_allclose(denoised, loaded.serve(batch).numpy(), atol=1e-5)
    assert scores is not None
    np.testing.assert_allclose(scores, loaded.score(batch).numpy(), atol=1e-5)
    # The scorer reads the input beside the denoised image that the same call returns.
    np.testing.assert_allclose(scores, served_score(scorer, batch, model(batch)).numpy(), atol=1e-5)


def test_a_version_re_exported_with_a_new_scorer_serves_the_score_of_its_own_denoised_image(tmp_path: Path) -> None:
    """``model.export --from-version V --scorer RUN``: the new version keeps V's denoiser, and its
    score (under ``score`` and ``serving_default``, as OpenVINO reads it) is the run's scorer on the
    input beside that denoiser's output."""
    import tensorflow as tf

    from app.engines import Precision
    from app.engines.openvino import load
    from model.anomaly import SCORER_FILE, build_scorer, served_score
    from model.data import load_mnist
    from model.export import _export_with_scorer, export_serving_signature

    source, run, out = tmp_path / "1", tmp_path / "run", tmp_path / "2"
    model = DESIGNS["seed"].build()
    _export_with_scorer(model, build_scorer(), source)
    scorer = build_scorer()  # another scorer: its own random weights
    run.mkdir()
    scorer.save_weights(run / SCORER_FILE)
    record = {"command": "python -m model.anomaly", "seed": 0, "per_group": 2, "threshold": 0.5, "validation": {}}
    (run / "scorer.json").write_text(json.dumps(record))
    export_serving_signature(source, out, run, load_mnist(SAMPLE))

    batch = np.random.default_rng(2).random((4, 28, 28, 1), dtype=np.float32)
    expected = served_score(scorer, batch, model(batch)).numpy()
    loaded = tf.saved_model.load(str(out))
    np.testing.assert_allclose(loaded.serve(batch).numpy(), model(batch).numpy(), atol=1e-5)
    np.testing.assert_allclose(loaded.score(batch).numpy(), expected, atol=1e-5)
    denoised, scores = load(out, Precision.F32, threads=1).run(batch)
    np.testing.assert_allclose(denoised, model(batch).numpy(), atol=1e-5)
    assert scores is not None
    np.testing.assert_allclose(scores, expected, atol=1e-5)
