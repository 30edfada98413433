"""Train a denoising autoencoder on MNIST and export it as a SavedModel with its model card.

python -m model.train --arch unet-xl --data ../shared/data/mnist.npz --epochs 80 --out model/artifacts/denoiser/4

Training runs on any Keras backend (``KERAS_BACKEND=jax`` on a GPU machine, say); the SavedModel
export needs TensorFlow. Elsewhere, or with ``--no-export``, the run stops at the trained weights
and its record in OUT, and ``python -m model.export OUT --data PATH`` finishes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.data import (
    TRAINING_SEED,
    VALIDATION_FRACTION,
    add_noise,
    load_mnist_or_report,
    split_validation,
)
from model.designs import DESIGNS, Recipe
from model.export import RUN_FILE, WEIGHTS_FILE

if TYPE_CHECKING:
    import keras

    from model.batches import NoisyBatches
    from model.data import FloatImages as Images
    from model.data import Mnist

VALIDATION_NOISE_SEED = 1
LOSS = "binary_crossentropy"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(DESIGNS), default="unet")
    parser.add_argument("--data", type=Path, default=None, help="Keras-layout mnist.npz (default: the Keras download)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--noise-factor", type=float, default=0.5, help="noise std of the fixed draw")
    parser.add_argument(
        "--noise-range",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        default=None,
        help="fresh-noise factors per image, instead of the recipe's range (not for the seed recipe)",
    )
    parser.add_argument(
        "--augment",
        action="store_true",
        help="shape and noise shifts of every kind, drawn afresh each batch (model/shifts.py; not for the seed recipe)",
    )
    parser.add_argument(
        "--plain-share",
        type=float,
        default=0.0,
        help="with --augment: the share of each batch left as MNIST with Gaussian noise only",
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="SAVEDMODEL",
        help="start from the weights of a run or an exported version of the same --arch (fine-tuning)",
    )
    parser.add_argument("--learning-rate", type=float, default=None, help="instead of the recipe's")
    parser.add_argument("--seed", type=int, default=TRAINING_SEED)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument(
        "--val-fraction", type=float, default=VALIDATION_FRACTION, help="validation split of the training set"
    )
    # Long cosine-decay runs gain most late, once the learning rate is small; at a patience of 3
    # the validation loss's noise stopped 100-epoch runs near epoch 35.
    parser.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs")
    parser.add_argument("--out", type=Path, required=True, help="export directory, e.g. model/artifacts/denoiser/3")
    parser.add_argument("--no-export", action="store_true", help="stop at the weights; export later")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be positive")
    if args.augment and args.arch == "seed":
        parser.error("--augment is not for the seed recipe, which keeps one fixed noise draw")
    if not 0.0 < args.val_fraction < 0.5:
        parser.error(f"--val-fraction must be in (0, 0.5), got {args.val_fraction}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mnist = load_mnist_or_report(args.data)
    if mnist is None:
        return 2

    # Imported late: Keras takes seconds to import, and --help or a bad path should not wait.
    import keras

    keras.utils.set_random_seed(args.seed)
    recipe = _recipe(args)
    batches, x_fit, x_val = _data(args, mnist.x_train, recipe)
    model = _model(args)
    _compile(model, recipe, args.epochs * len(batches))
    started = time.perf_counter()
    history = _fit(model, batches, x_val, args)
    run = _record(args, argv, recipe, history, time.perf_counter() - started, len(x_fit), len(x_val), mnist)

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_weights(args.out / WEIGHTS_FILE)
    (args.out / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")
    if args.no_export or keras.backend.backend() != "tensorflow":
        print(f"trained {args.out}; export it with: python -m model.export {args.out} --data PATH")
        return 0

    from model.export import export_run

    export_run(args.out, mnist)
    return 0


def _recipe(args: argparse.Namespace) -> Recipe:
    """The design's recipe, with what the command line overrides."""
    recipe = DESIGNS[args.arch].recipe
    if args.noise_range and recipe.noise_range:
        recipe = replace(recipe, noise_range=tuple(args.noise_range))
    if args.learning_rate:
        recipe = replace(recipe, learning_rate=args.learning_rate)
    return recipe


def _data(args: argparse.Namespace, x_train: Images, recipe: Recipe) -> tuple[NoisyBatches, Images, Images]:
    """Noisy training batches, and the clean training and validation splits."""
    from model.batches import NoisyBatches

    clean = x_train[: args.limit] if args.limit else x_train
    x_fit, x_val = split_validation(clean, args.val_fraction, args.seed)
    batches = NoisyBatches(
        x_fit,
        args.batch_size,
        args.seed,
        fixed_noise=None if recipe.noise_range else args.noise_factor,
        noise_range=recipe.noise_range,
        augmented=args.augment,
        plain_share=args.plain_share,
    )
    return batches, x_fit, x_val


def _model(args: argparse.Namespace) -> keras.Model:
    model = DESIGNS[args.arch].build()
    if args.init_from:
        _load_saved_weights(model, args.init_from)
    return model


def _compile(model: keras.Model, recipe: Recipe, steps: int) -> None:
    import keras

    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = recipe.learning_rate
    if recipe.cosine_decay:
        learning_rate = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, steps)
    optimizers = {"adam": keras.optimizers.Adam, "adadelta": keras.optimizers.Adadelta}
    model.compile(optimizer=optimizers[recipe.optimizer](learning_rate=learning_rate), loss=LOSS)
    model.summary()


def _fit(model: keras.Model, batches: NoisyBatches, x_val: Images, args: argparse.Namespace) -> keras.callbacks.History:
    import keras

    stop = keras.callbacks.EarlyStopping(patience=args.patience, restore_best_weights=True, verbose=1)
    return model.fit(
        batches,
        epochs=args.epochs,
        validation_data=(add_noise(x_val, args.noise_factor, VALIDATION_NOISE_SEED), x_val),
        validation_batch_size=512,
        callbacks=[stop],
        verbose=2,
    )


def _record(
    args: argparse.Namespace,
    argv: list[str] | None,
    recipe: Recipe,
    history: keras.callbacks.History,
    seconds: float,
    train_images: int,
    validation_images: int,
    mnist: Mnist,
) -> dict[str, Any]:
    """The run's record, which the model card's ``training`` section keeps."""
    import keras

    noise = _noise_description(recipe, args.augment)
    if args.plain_share:
        noise += f"; {args.plain_share:.0%} of each batch plain MNIST with Gaussian noise"
    return {
        "command": "python -m model.train " + " ".join(sys.argv[1:] if argv is None else argv),
        "arch": args.arch,
        "optimizer": recipe.optimizer,
        "learning_rate": recipe.learning_rate,
        "learning_rate_schedule": "cosine decay to 0" if recipe.cosine_decay else "constant",
        "loss": LOSS,
        "epochs_requested": args.epochs,
        "epochs_run": len(history.history["loss"]),
        "best_epoch": int(np.argmin(history.history["val_loss"])) + 1,
        "batch_size": args.batch_size,
        "noise_factor": args.noise_factor,
        "noise": noise,
        "seed": args.seed,
        "initial_weights": str(args.init_from) if args.init_from else "random",
        "train_images": train_images,
        "validation_images": validation_images,
        "data_source": mnist.source,
        "data_sha256": mnist.sha256,
        "backend": keras.backend.backend(),
        "device": _device(),
        "training_seconds": round(seconds, 1),
        "history": {k: [round(float(v), 6) for v in vs] for k, vs in history.history.items()},
    }


def _load_saved_weights(model: keras.Model, path: Path) -> None:
    """Start from a run's weights file, or copy an exported SavedModel's variables, in order.

    In order, not by name: Keras numbers layer names per process (conv2d_5 in a second model).
    """
    if (path / WEIGHTS_FILE).is_file():  # a training run's own weights
        try:
            model.load_weights(path / WEIGHTS_FILE)
        except ValueError as exc:  # Keras: shapes that do not match
            raise SystemExit(f"--init-from {str(path)!r} does not hold the weights of {model.name!r}") from exc
        return
    import tensorflow as tf

    saved = tf.saved_model.load(str(path)).variables
    shapes = [tuple(v.shape) for v in saved]
    if shapes != [tuple(w.shape) for w in model.weights]:
        raise SystemExit(f"--init-from {str(path)!r} does not hold the weights of {model.name!r}")
    for weight, variable in zip(model.weights, saved, strict=True):
        weight.assign(variable.numpy())


def _noise_description(recipe: Recipe, augmented: bool) -> str:
    if augmented:
        return "shape and noise shifts drawn afresh per batch (model.shifts.augment)"
    if recipe.noise_range:
        return f"fresh draw per batch, factor ~ U{recipe.noise_range}"
    return "one fixed draw"


def _device() -> str:
    """The accelerator training ran on, or the CPU, for the model card."""
    import keras

    backend = str(keras.backend.backend())
    if backend == "jax":
        import jax  # type: ignore[import-not-found,unused-ignore]  # only there when it is the backend

        return str(jax.devices()[0].device_kind)
    if backend == "torch":
        import torch  # type: ignore[import-not-found,unused-ignore]

        return str(torch.cuda.get_device_name()) if torch.cuda.is_available() else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return f"{len(gpus)} GPU" if gpus else "cpu"
    return backend


if __name__ == "__main__":
    raise SystemExit(main())
