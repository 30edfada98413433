"""Train a denoising autoencoder on MNIST and export it as a SavedModel with its model card.

python -m model.train --arch unet --data ../shared/data/mnist.npz --out model/artifacts/denoiser/2
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.data import add_noise, load_mnist_or_report

VALIDATION_NOISE_SEED = 1


@dataclass(frozen=True)
class Recipe:
    """What differs between architectures beyond the layers."""

    optimizer: str
    learning_rate: float
    cosine_decay: bool  # anneal the learning rate to zero over the run
    fresh_noise: bool  # draw new noise every batch (True) or once for the whole run (seed recipe)
    noise_range: tuple[float, float] | None  # train on noise factors drawn from this range


RECIPES: dict[str, Recipe] = {
    # The blog post: Adadelta (at the learning rate the old Keras default meant), one fixed draw.
    "seed": Recipe("adadelta", 1.0, cosine_decay=False, fresh_noise=False, noise_range=None),
    "unet": Recipe("adam", 1e-3, cosine_decay=True, fresh_noise=True, noise_range=(0.25, 0.75)),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(RECIPES), default="unet")
    parser.add_argument("--data", type=Path, default=None, help="Keras-layout mnist.npz (default: the Keras download)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--noise-factor", type=float, default=0.5, help="noise std of the fixed draw")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="validation split of the training set")
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience in epochs")
    parser.add_argument("--out", type=Path, required=True, help="export directory, e.g. model/artifacts/denoiser/3")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be positive")
    if not 0.0 < args.val_fraction < 0.5:
        parser.error(f"--val-fraction must be in (0, 0.5), got {args.val_fraction}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mnist = load_mnist_or_report(args.data)
    if mnist is None:
        return 2

    # Imported late: TensorFlow takes seconds to import, and --help or a bad path should not wait.
    import keras
    import tensorflow as tf

    from model.architectures import ARCHITECTURES
    from model.evaluate import TEST_NOISE_SEED, card_metrics
    from model.export import export_model
    from model.figures import denoising_rows, save_loss_curves, save_samples

    keras.utils.set_random_seed(args.seed)
    recipe = RECIPES[args.arch]

    clean = mnist.x_train[: args.limit] if args.limit else mnist.x_train
    order = np.random.default_rng(args.seed).permutation(len(clean))
    n_val = max(1, int(len(clean) * args.val_fraction))
    x_fit, x_val = clean[order[n_val:]], clean[order[:n_val]]
    val_noisy = add_noise(x_val, args.noise_factor, VALIDATION_NOISE_SEED)
    train_ds = _training_dataset(tf, x_fit, recipe, args)
    val_ds = tf.data.Dataset.from_tensor_slices((val_noisy, x_val)).batch(512)

    model = ARCHITECTURES[args.arch]()
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = recipe.learning_rate
    if recipe.cosine_decay:
        steps = args.epochs * -(-len(x_fit) // args.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, decay_steps=steps)
    optimizers = {"adam": keras.optimizers.Adam, "adadelta": keras.optimizers.Adadelta}
    optimizer = optimizers[recipe.optimizer](learning_rate=learning_rate)
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    model.summary()
    stop = keras.callbacks.EarlyStopping(patience=args.patience, restore_best_weights=True, verbose=1)
    started = time.perf_counter()
    # The tf.data pipeline shuffles every epoch; shuffle=False only tells Keras not to try as well.
    history = model.fit(
        train_ds, epochs=args.epochs, validation_data=val_ds, callbacks=[stop], shuffle=False, verbose=2
    )
    training_seconds = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(images, batch_size=512, verbose=0))

    evaluation = card_metrics(predict, mnist.x_test)
    save_loss_curves(history.history, args.out / "loss.png", title=f"{args.arch}: binary cross-entropy")
    digits = mnist.x_test[:10]
    save_samples(denoising_rows(predict, digits, add_noise(digits, 0.5, TEST_NOISE_SEED)), args.out / "samples.png")
    training = {
        "command": "python -m model.train " + " ".join(sys.argv[1:] if argv is None else argv),
        "arch": args.arch,
        "optimizer": recipe.optimizer,
        "learning_rate": recipe.learning_rate,
        "learning_rate_schedule": "cosine decay to 0" if recipe.cosine_decay else "constant",
        "loss": "binary_crossentropy",
        "epochs_requested": args.epochs,
        "epochs_run": len(history.history["loss"]),
        "best_epoch": int(np.argmin(history.history["val_loss"])) + 1,
        "batch_size": args.batch_size,
        "noise_factor": args.noise_factor,
        "noise": f"fresh draw per batch, factor ~ U{recipe.noise_range}" if recipe.fresh_noise else "one fixed draw",
        "seed": args.seed,
        "train_images": len(x_fit),
        "validation_images": n_val,
        "data_source": mnist.source,
        "data_sha256": mnist.sha256,
        "training_seconds": round(training_seconds, 1),
        "history": {k: [round(float(v), 6) for v in vs] for k, vs in history.history.items()},
    }
    export_model(model, args.out, training=training, evaluation=evaluation)
    print(f"exported {args.out}: test PSNR at noise 0.5 = {evaluation['noise_0.5']['psnr_db']:.2f} dB")
    return 0


def _training_dataset(tf, x_fit, recipe: Recipe, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Batches of (noisy, clean) pairs, shuffled every epoch."""
    if not recipe.fresh_noise:
        noisy = add_noise(x_fit, args.noise_factor, args.seed)
        ds = tf.data.Dataset.from_tensor_slices((noisy, x_fit))
        return ds.shuffle(len(x_fit), seed=args.seed).batch(args.batch_size).prefetch(2)

    low, high = recipe.noise_range or (args.noise_factor, args.noise_factor)
    generator = tf.random.Generator.from_seed(args.seed)

    def corrupt(clean):  # type: ignore[no-untyped-def]
        # One noise factor per image, so every batch mixes noise levels.
        factor = generator.uniform([tf.shape(clean)[0], 1, 1, 1], low, high)
        noisy = clean + factor * generator.normal(tf.shape(clean))
        return tf.clip_by_value(noisy, 0.0, 1.0), clean

    ds = tf.data.Dataset.from_tensor_slices(x_fit).shuffle(len(x_fit), seed=args.seed)
    return ds.batch(args.batch_size).map(corrupt).prefetch(2)


if __name__ == "__main__":
    raise SystemExit(main())
