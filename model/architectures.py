"""The autoencoder designs selectable with ``python -m model.train --arch``."""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

INPUT_SHAPE = (28, 28, 1)


def seed_autoencoder() -> keras.Model:
    """Exactly the blog post's convolutional autoencoder."""
    inputs = keras.Input(shape=INPUT_SHAPE, name="noisy")
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(inputs)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)
    x = layers.UpSampling2D(2)(x)
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)
    x = layers.UpSampling2D(2)(x)
    outputs = layers.Conv2D(1, 3, activation="sigmoid", padding="same", name="denoised")(x)
    return keras.Model(inputs, outputs, name="seed")


def unet_autoencoder(global_units: int = 256, bottleneck: int = 48) -> keras.Model:
    """A small U-Net with a fully connected bottleneck.

    The skip connections carry stroke positions past the pooling, where the seed loses sharpness.
    The dense layers at 7x7 see the whole digit at once, so the decoder can use its shape (a 0,
    a 7) to tell strokes from noise: the seed's 3x3 convolutions only ever see a patch. Compute
    stays in the low resolutions; the 28x28 layers are narrow, as they dominate CPU time.
    """
    inputs = keras.Input(shape=INPUT_SHAPE, name="noisy")
    e1 = layers.Conv2D(16, 3, activation="relu", padding="same")(inputs)  # 28x28
    x = layers.MaxPooling2D(2)(e1)
    e2 = layers.Conv2D(32, 3, activation="relu", padding="same")(x)  # 14x14
    x = layers.MaxPooling2D(2)(e2)
    x = layers.Conv2D(bottleneck, 3, activation="relu", padding="same")(x)  # 7x7
    x = layers.Conv2D(bottleneck, 3, activation="relu", padding="same")(x)
    g = layers.Flatten()(x)
    g = layers.Dense(global_units, activation="relu")(g)
    g = layers.Dense(7 * 7 * 16, activation="relu")(g)
    g = layers.Reshape((7, 7, 16))(g)
    x = layers.Concatenate()([x, g])
    x = layers.Conv2D(bottleneck, 3, activation="relu", padding="same")(x)
    x = layers.UpSampling2D(2)(x)
    x = layers.Concatenate()([x, e2])
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)  # 14x14
    x = layers.UpSampling2D(2)(x)
    x = layers.Concatenate()([x, e1])
    x = layers.Conv2D(16, 3, activation="relu", padding="same")(x)  # 28x28
    outputs = layers.Conv2D(1, 3, activation="sigmoid", padding="same", name="denoised")(x)
    return keras.Model(inputs, outputs, name="unet")


ARCHITECTURES: dict[str, Callable[[], keras.Model]] = {
    "seed": seed_autoencoder,
    "unet": unet_autoencoder,
}
