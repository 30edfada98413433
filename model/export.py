"""Export a trained model as a SavedModel plus its model card (metadata.json, MODEL_CARD.md).

    python -m model.export OUT --data ../shared/data/mnist.npz

finishes a ``python -m model.train --no-export --out OUT`` run (or one trained on another Keras
backend): it rebuilds the architecture, loads the weights, evaluates them on the test digits and
writes the SavedModel, the card and the figures into OUT.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.anomaly import served_score
from model.card import DENOISED_OUTPUT, SCORE_OUTPUT, Anomaly, ModelCard, Serving, read_card, write_card
from model.data import Mnist, load_mnist_or_report
from model.designs import DESIGNS
from model.evaluate import ANOMALY_SEED, TEST_NOISE_SEED, anomaly_check, card_metrics, robustness_check
from model.savedmodel import Predict

if TYPE_CHECKING:
    import keras

RUN_FILE = "training.json"  # what model.train records of a run, before export
WEIGHTS_FILE = "model.weights.h5"  # the trained weights, for any Keras backend
_LIBRARIES = ("tensorflow", "tensorflow-cpu", "keras", "numpy")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def export_model(
    model: keras.Model,
    out: Path,
    training: dict[str, Any],
    evaluation: dict[str, Any],
    scorer: keras.Model | None = None,
    anomaly: Anomaly | None = None,
) -> None:
    """Write the SavedModel and its card.

    Endpoint ``serve``: float32 [None, 28, 28, 1] -> the same, denoised. With a ``scorer``, also
    ``score``: the same input -> float32 [None], the anomaly score P(not a digit) = 1 - P(digit),
    which the scorer gives from the input and ``model``'s output.
    """
    if scorer is None:
        model.export(str(out), format="tf_saved_model", verbose=False)
    else:
        _export_with_scorer(model, scorer, out)
    card: dict[str, Any] = {
        "name": "mnist-denoiser",
        "version": int(out.name) if out.name.isdigit() else out.name,
        "created": _now(),
        "architecture": model.name,
        "parameters": int(model.count_params()),
        "signature": {
            "endpoint": "serve",
            "input": {"dtype": "float32", "shape": [None, 28, 28, 1], "range": [0.0, 1.0]},
            "output": {"dtype": "float32", "shape": [None, 28, 28, 1], "range": [0.0, 1.0]},
            "polarity": "light digit on dark background, as MNIST",
        },
        "training": training,
        "evaluation": evaluation,
        "libraries": library_versions(),
    }
    if anomaly is not None:
        card["anomaly"] = anomaly.model_dump()
    write_card(out, ModelCard.model_validate(card))


def _export_with_scorer(model: keras.Model, scorer: keras.Model, out: Path) -> None:
    import keras
    import tensorflow as tf

    spec = [tf.TensorSpec([None, 28, 28, 1], tf.float32, name="inputs")]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(scorer)
    archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=spec)
    archive.add_endpoint("score", lambda x: served_score(scorer, x, model(x, training=False)), input_signature=spec)

    def both(x: Any) -> dict[str, Any]:
        """What OpenVINO and TF Serving read: both outputs of one call, named; the model runs once."""
        denoised = model(x, training=False)
        return {DENOISED_OUTPUT: denoised, SCORE_OUTPUT: served_score(scorer, x, denoised)}

    archive.add_endpoint("serving_default", both, input_signature=spec)
    archive.write_out(str(out), verbose=False)


def export_serving_signature(
    source: Path, out: Path, scorer_dir: Path | None = None, mnist: Mnist | None = None
) -> None:
    """Re-export the version at ``source`` into ``out`` with the serving signature; the same weights.

    Versions exported before the signature existed give only the denoised image under
    ``serving_default`` (what OpenVINO reads), and their scorer only under ``score``. The new
    version keeps ``serve`` and ``score`` and adds ``serving_default`` returning both, named
    ``denoised`` and ``anomaly_score``; the card is copied with the new version number. Only the
    variables the endpoints use are written (Keras' archive wrote each one twice).

    With ``scorer_dir`` (a ``python -m model.anomaly`` run) that scorer replaces the source's, and
    the card's anomaly section is measured anew on ``mnist``'s test digits.
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(str(source))
    spec = tf.TensorSpec([None, 28, 28, 1], tf.float32, name="images")
    serve = tf.function(lambda images: loaded.serve(images), input_signature=[spec])
    endpoints = {"serve": serve}
    # The score from the input and its denoised image, so that serving_default runs the model once.
    score_of: Callable[[Any, Any], Any] | None = None
    anomaly = None
    if scorer_dir is not None:
        if mnist is None:
            raise ValueError("a new scorer is measured on the test digits: give mnist")
        scorer, anomaly = _scorer_and_card(scorer_dir, mnist, lambda images: loaded.serve(tf.constant(images)))
        score_of = partial(served_score, scorer)
        endpoints["score"] = tf.function(
            lambda images: served_score(scorer, images, loaded.serve(images)), input_signature=[spec]
        )
    elif hasattr(loaded, "score"):
        score_of = lambda images, _: loaded.score(images)  # noqa: E731 (an older scorer reads the input alone)
        endpoints["score"] = tf.function(lambda images: loaded.score(images), input_signature=[spec])

    def outputs(images: Any) -> dict[str, Any]:
        denoised = loaded.serve(images)
        if score_of is None:
            return {DENOISED_OUTPUT: denoised}
        return {DENOISED_OUTPUT: denoised, SCORE_OUTPUT: score_of(images, denoised)}

    both = tf.function(outputs, input_signature=[spec])
    module = tf.Module()
    used = {id(v): v for f in [*endpoints.values(), both] for v in f.get_concrete_function().variables}
    module.weights = list(used.values())
    for name, function in endpoints.items():
        setattr(module, name, function)
    tf.saved_model.save(module, str(out), signatures={"serving_default": both, **endpoints})
    card = read_card(source)
    if card is not None:
        note = f"re-exported from version {source.name} with the serving signature (model.export --from-version)"
        if scorer_dir is not None:
            note = (
                f"version {source.name}'s denoiser with the digit scorer of {scorer_dir} "
                "(model.export --from-version --scorer)"
            )
        names = (DENOISED_OUTPUT,) if score_of is None else (DENOISED_OUTPUT, SCORE_OUTPUT)
        signature = card.signature | {"serving_default": dict.fromkeys(names, "float32, as its endpoint")}
        changes = {"version": int(out.name), "created": _now(), "exported_from": note, "signature": signature}
        if anomaly is not None:
            changes["anomaly"] = anomaly
            changes["serving"] = Serving()  # measured again by model.serving_check
        write_card(out, card.model_copy(update=changes))
    for figure in ("loss.png", "samples.png"):
        if (source / figure).is_file():
            shutil.copyfile(source / figure, out / figure)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def export_run(out: Path, mnist: Mnist, scorer_dir: Path | None = None) -> None:
    """Export the run that ``model.train`` left in ``out``: evaluation, figures, SavedModel, card.

    With ``scorer_dir`` (a ``python -m model.anomaly`` run), the anomaly scorer goes in too.
    """
    from model.data import add_noise
    from model.figures import denoising_rows, save_loss_curves, save_samples

    training = json.loads((out / RUN_FILE).read_text())
    model = DESIGNS[training["arch"]].build()
    model.load_weights(out / WEIGHTS_FILE)

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(images, batch_size=512, verbose=0))

    evaluation = card_metrics(predict, mnist.x_test)
    evaluation["robustness_check"] = robustness_check(predict, mnist.x_test)
    save_loss_curves(training["history"], out / "loss.png", title=f"{training['arch']}: binary cross-entropy")
    digits = mnist.x_test[:10]
    save_samples(denoising_rows(predict, digits, add_noise(digits, 0.5, TEST_NOISE_SEED)), out / "samples.png")
    scorer, anomaly = (None, None) if scorer_dir is None else _scorer_and_card(scorer_dir, mnist, predict)
    export_model(model, out, training=training, evaluation=evaluation, scorer=scorer, anomaly=anomaly)
    print(f"exported {out}: test PSNR at noise 0.5 = {evaluation['noise_0.5']['psnr_db']:.2f} dB")


# What the card keeps of a scorer run's record.
_SCORER_RUN = ("command", "epochs", "batches_per_epoch", "seed", "denoiser", "calibration")
# Thresholds tabulated in the card's trade-off: the share of validation digits each one flags.
TRADEOFF_DIGITS_FLAGGED = (0.005, 0.01, 0.02, 0.05)


def _scorer_and_card(scorer_dir: Path, mnist: Mnist, denoise: Predict) -> tuple[keras.Model, Anomaly]:
    """The trained scorer and the card's anomaly section: its threshold, validation and test reports,
    and the trade-off between digits and non-digits flagged at other thresholds. ``denoise``: the
    denoiser it ships with, whose output is its second channel."""
    from model.anomaly import (
        DIGITS_FLAGGED,
        SCORER_FILE,
        anomaly_scores,
        build_scorer,
        calibrate,
        class_probabilities,
        evaluation_set,
        report,
    )
    from model.data import VALIDATION_FRACTION, split_validation

    record = json.loads((scorer_dir / "scorer.json").read_text())
    scorer = build_scorer()
    scorer.load_weights(scorer_dir / SCORER_FILE)

    def score(images: np.ndarray) -> np.ndarray:
        return anomaly_scores(class_probabilities(scorer, denoise), images).astype(np.float32)

    test = evaluation_set(mnist.x_test, "test", record["per_group"], ANOMALY_SEED)
    test_scores = score(test.images)
    _, x_val = split_validation(mnist.x_train, VALIDATION_FRACTION, record["seed"])
    validation = evaluation_set(x_val, "validation", record["per_group"], seed=1)
    validation_scores = score(validation.images)
    tradeoff = []
    for share in TRADEOFF_DIGITS_FLAGGED:
        threshold = calibrate(validation_scores, validation.labels, share)
        measured = report(test_scores, test, threshold)
        tradeoff.append(
            {"validation_digits_flagged": share, "threshold": round(threshold, 6)}
            | {key: measured[key] for key in ("digits_flagged", "non_digits_flagged", "flagged_by_group")}
        )
    anomaly = Anomaly(
        score=(
            "P(not a digit) = 1 - P(digit) from a CNN that reads the model's 28x28 input and the denoised "
            "image and tells the ten digits and 'not a digit' apart (model/anomaly.py)"
        ),
        flag=(
            "anomaly_score > threshold; the threshold flags "
            f"{record.get('digits_flagged', DIGITS_FLAGGED):.0%} of the validation digits"
        ),
        threshold=record["threshold"],
        training={key: record[key] for key in _SCORER_RUN if key in record},
        fonts=record.get("fonts"),
        validation=record["validation"],
        test=report(test_scores, test, record["threshold"]),
        tradeoff=tradeoff,
        check=anomaly_check(score, mnist.x_test, record["threshold"]),
    )
    return scorer, anomaly


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.export", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help=f"a training run's directory (holds {RUN_FILE}, {WEIGHTS_FILE})")
    parser.add_argument("--data", type=Path, default=None, help="Keras-layout mnist.npz (default: the Keras download)")
    parser.add_argument("--scorer", type=Path, default=None, help="a python -m model.anomaly run to export with it")
    parser.add_argument(
        "--from-version",
        type=Path,
        default=None,
        metavar="SRC",
        help="re-export an exported version's weights into OUT with the serving signature (no training run)",
    )
    args = parser.parse_args(argv)
    if args.from_version is not None:
        mnist = None if args.scorer is None else load_mnist_or_report(args.data)
        if args.scorer is not None and mnist is None:
            return 2
        export_serving_signature(args.from_version, args.out, args.scorer, mnist)
        print(f"exported {args.out} from {args.from_version}")
        return 0
    missing = [name for name in (RUN_FILE, WEIGHTS_FILE) if not (args.out / name).is_file()]
    if missing:
        print(f"error: {str(args.out)!r} is not a training run: it lacks {missing}", file=sys.stderr)
        return 2
    mnist = load_mnist_or_report(args.data)
    if mnist is None:
        return 2
    export_run(args.out, mnist, args.scorer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
