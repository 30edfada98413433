"""app/inference.py and its engines with the committed SavedModels: the engines agree, and a model
that cannot be served as configured stops with a message naming the setting or the version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import tensorflow as tf

from app.engines import EngineName, ModelLoadError, Precision
from app.engines.openvino import CHUNK, bf16_available, calls, int8_available
from app.inference import Model, latest_version, load_model, load_version
from app.settings import DEFAULT_MODEL_DIR, Settings
from model.card import CARD_FILE, INT8_MODEL
from tests.images import noisy

SERVED = latest_version(DEFAULT_MODEL_DIR)
COMMITTED = sorted((p for p in DEFAULT_MODEL_DIR.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
# bf16 keeps 8 bits of mantissa: the largest pixel difference measured against TensorFlow on a
# bf16 CPU was 0.016 (issue 20); the card's serving check records it per version.
BF16_TOLERANCE = 0.03
# INT8 moved a pixel by at most 0.21 over 1,000 noisy test digits (the served card's serving
# check); what matters is that images and scores stay close on the whole (its rule: the card's
# PSNR within 0.05 dB, flags within 0.5 %).
INT8_TOLERANCE = 0.3
INT8_MEAN_TOLERANCE = 0.01


def _batch(digits: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.float32]:
    images = [noisy(digit, seed=index) for index, digit in enumerate(digits[:size])]
    return (np.stack(images).astype(np.float32) / 255.0)[..., np.newaxis]


@pytest.fixture(scope="module")
def served() -> Model:
    return load_model(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="module")
def endpoints() -> Any:
    """The served SavedModel as TensorFlow loads it, its endpoints called one by one."""
    return tf.saved_model.load(str(SERVED))


def test_the_default_engine_is_openvino_at_the_precision_the_card_approves(served: Model) -> None:
    assert served.engine is EngineName.OPENVINO
    assert served.version == int(SERVED.name)
    assert served.card is not None
    if served.card.serving.bf16_approved and bf16_available():
        assert served.precision is Precision.BF16
    else:
        int8 = served.card.serving.int8_approved and int8_available(SERVED)
        assert served.precision is (Precision.INT8 if int8 else Precision.F32)


def test_the_served_version_ships_its_int8_graph_approved_by_its_card(served: Model) -> None:
    assert int8_available(SERVED), f"python -m model.quantize {SERVED} makes {INT8_MODEL}"
    assert served.card is not None
    row = next(r for r in served.card.serving.model_dump()["engines"] if r["precision"] == "int8")
    assert abs(row["psnr_change_db"]) <= 0.05
    assert row["flags_changed"] <= 0.005
    assert served.card.serving.int8_approved


def test_a_batch_runs_as_whole_64s_then_the_rest_in_one_call() -> None:
    assert calls(130) == [(0, 64), (64, 64), (128, 2)]
    assert calls(64) == [(0, 64)]
    assert calls(1) == [(0, 1)]
    assert calls(0) == []
    for images in range(1, 300):
        parts = calls(images)
        assert [start for start, _ in parts] == [CHUNK * i for i in range(len(parts))]
        assert sum(size for _, size in parts) == images
        assert all(size == CHUNK for _, size in parts[:-1])


@pytest.mark.parametrize("version", COMMITTED, ids=lambda p: f"v{p.name}")
@pytest.mark.parametrize("size", [1, 7, 64, 100])  # graphs of 1, any size, 64; 100: 64 and 36
def test_openvino_f32_gives_what_tensorflow_gives(digits: npt.NDArray[np.uint8], version: Path, size: int) -> None:
    batch = _batch(digits, size)
    reference = load_version(version, EngineName.TENSORFLOW, Precision.F32, threads=1)(batch)
    measured = load_version(version, EngineName.OPENVINO, Precision.F32, threads=1)(batch)
    np.testing.assert_allclose(measured.denoised, reference.denoised, atol=1e-5)
    assert (measured.scores is None) == (reference.scores is None)
    if reference.scores is not None:
        assert measured.scores is not None
        np.testing.assert_allclose(measured.scores, reference.scores, atol=1e-5)


def test_openvino_bf16_stays_within_its_measured_bound(digits: npt.NDArray[np.uint8]) -> None:
    if not bf16_available():
        pytest.skip("this CPU has no bf16 (OpenVINO's OPTIMIZATION_CAPABILITIES): bf16 cannot run here")
    batch = _batch(digits, 32)
    reference = load_version(SERVED, EngineName.TENSORFLOW, Precision.F32, threads=1)(batch)
    measured = load_version(SERVED, EngineName.OPENVINO, Precision.BF16, threads=1)(batch)
    assert np.abs(measured.denoised - reference.denoised).max() <= BF16_TOLERANCE


def test_openvino_int8_stays_within_its_measured_bound(digits: npt.NDArray[np.uint8]) -> None:
    batch = _batch(digits, 64)
    reference = load_version(SERVED, EngineName.TENSORFLOW, Precision.F32, threads=1)(batch)
    measured = load_version(SERVED, EngineName.OPENVINO, Precision.INT8, threads=1)(batch)
    assert measured.scores is not None
    assert reference.scores is not None
    difference = np.abs(measured.denoised - reference.denoised)
    assert difference.max() <= INT8_TOLERANCE
    assert difference.mean() <= INT8_MEAN_TOLERANCE
    assert np.abs(measured.scores - reference.scores).mean() <= INT8_MEAN_TOLERANCE
    assert difference.max() > 0  # it is the INT8 graph that ran, not f32 under another name


def test_int8_for_a_version_without_its_graph_names_the_file_and_the_command(tmp_path: Path) -> None:
    version = tmp_path / "3"
    shutil.copytree(DEFAULT_MODEL_DIR / "3", version)
    assert not int8_available(version)
    with pytest.raises(ModelLoadError, match=f"INFERENCE_PRECISION=int8 but '{version / INT8_MODEL}' does not exist"):
        load_version(version, EngineName.OPENVINO, Precision.INT8, threads=1)
    assert load_version(version, EngineName.OPENVINO, Precision.AUTO, threads=1).precision is Precision.F32


@pytest.mark.parametrize("engine", [EngineName.OPENVINO, EngineName.TENSORFLOW])
def test_one_call_denoises_and_scores_as_the_two_endpoints_do(
    endpoints: Any, digits: npt.NDArray[np.uint8], engine: EngineName
) -> None:
    batch = _batch(digits, 5)
    inference = load_version(SERVED, engine, Precision.F32, threads=1)(batch)
    assert inference.scores is not None
    np.testing.assert_allclose(inference.denoised, endpoints.serve(tf.constant(batch)).numpy(), atol=1e-5)
    np.testing.assert_allclose(inference.scores, endpoints.score(tf.constant(batch)).numpy(), atol=1e-5)
    assert inference.scores.shape == (5,)


@pytest.mark.parametrize("engine", [EngineName.OPENVINO, EngineName.TENSORFLOW])
def test_a_version_without_a_scorer_denoises_and_gives_no_scores(
    digits: npt.NDArray[np.uint8], engine: EngineName
) -> None:
    # Version 3 (the seed recipe) was exported before the scorer existed.
    model = load_version(DEFAULT_MODEL_DIR / "3", engine, Precision.AUTO, threads=1)
    inference = model(_batch(digits, 3))
    assert model.version == 3
    assert inference.scores is None
    assert inference.denoised.shape == (3, 28, 28, 1)
    assert model.card is not None
    assert model.anomaly_threshold == model.card.evaluation.anomaly_threshold


def test_the_identity_engine_returns_its_input_and_reads_no_savedmodel(
    digits: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    (tmp_path / "6").mkdir()
    shutil.copyfile(SERVED / CARD_FILE, tmp_path / "6" / CARD_FILE)  # a card, and no SavedModel
    model = load_model(tmp_path, EngineName.IDENTITY)
    batch = _batch(digits, 4)
    inference = model(batch)
    np.testing.assert_array_equal(inference.denoised, batch)
    assert inference.scores is None
    assert model.card is not None
    assert model.anomaly_threshold == model.card.evaluation.anomaly_threshold


@pytest.mark.parametrize("precision", [Precision.BF16, Precision.INT8])
def test_bf16_or_int8_on_the_tensorflow_engine_names_the_settings(precision: Precision) -> None:
    with pytest.raises(ModelLoadError, match=f"INFERENCE_PRECISION={precision.value} needs INFERENCE_ENGINE=openvino"):
        load_version(SERVED, EngineName.TENSORFLOW, precision, threads=1)


def test_bf16_on_a_cpu_without_it_names_the_setting() -> None:
    if bf16_available():
        pytest.skip("this CPU has bf16: the refusal cannot be seen here")
    with pytest.raises(ModelLoadError, match="INFERENCE_PRECISION=bf16 but this CPU has no bf16 support"):
        load_version(SERVED, EngineName.OPENVINO, Precision.BF16, threads=1)


def test_a_card_with_a_scorer_the_signature_lacks_is_refused(tmp_path: Path) -> None:
    # Version 3's SavedModel (no scorer) under a card that promises one, as a version exported
    # before the serving signature would be read by OpenVINO.
    version = tmp_path / "3"
    shutil.copytree(DEFAULT_MODEL_DIR / "3", version)
    card = json.loads((version / CARD_FILE).read_text())
    card["anomaly"] = json.loads((SERVED / CARD_FILE).read_text())["anomaly"]
    (version / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match=f"the card of '{version}' has an anomaly scorer"):
        load_version(version, EngineName.OPENVINO, Precision.F32, threads=1)


@pytest.mark.parametrize(
    ("variable", "value"), [("INFERENCE_ENGINE", "onnx"), ("INFERENCE_PRECISION", "fp8"), ("INFERENCE_THREADS", "-1")]
)
def test_an_unknown_setting_value_is_refused_with_its_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable.lower()):
        Settings()


def test_settings_read_engine_precision_and_log_level_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERENCE_ENGINE", "TensorFlow")
    monkeypatch.setenv("INFERENCE_PRECISION", "F32")
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    monkeypatch.setenv("TF_INTRA_OP_THREADS", "3")  # the setting's old name still works
    settings = Settings()
    assert settings.inference_engine is EngineName.TENSORFLOW
    assert settings.inference_precision is Precision.F32
    assert settings.log_level == "info"
    assert settings.inference_threads == 3


def test_an_empty_api_key_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "  ")
    assert Settings().api_key is None
    monkeypatch.setenv("API_KEY", "k")
    assert Settings().api_key == "k"
