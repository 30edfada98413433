"""The autoencoder designs selectable with ``python -m model.train --arch``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

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


def _conv(x: keras.KerasTensor, channels: int, size: int = 3) -> keras.KerasTensor:
    return layers.Conv2D(channels, size, activation="relu", padding="same")(x)


def unet_autoencoder(
    name: str = "unet",
    widths: tuple[int, int, int] = (16, 32, 48),
    global_units: int = 256,
    global_channels: int = 16,
    extra_convs: tuple[int, int] = (0, 0),
    squeeze: int | None = None,
    attention_heads: int = 0,
) -> keras.Model:
    """A small U-Net with a fully connected bottleneck.

    The skip connections carry stroke positions past the pooling, where the seed loses sharpness.
    The dense layers at 7x7 see the whole digit at once, so the decoder can use its shape (a 0,
    a 7) to tell strokes from noise: the seed's 3x3 convolutions only ever see a patch. Compute
    stays in the low resolutions; the 28x28 layers are narrow, as they dominate CPU time.

    ``widths`` are the channels at 28x28, 14x14 and 7x7; ``extra_convs`` adds convolutions at
    14x14 and 7x7 on both sides; ``squeeze`` (1x1 convolution) shrinks what the dense layers read,
    which keeps their weights, and so the cost of a batch of one, small. ``attention_heads`` adds
    a transformer block over the 49 positions at 7x7. ``global_units=0`` leaves the dense layers
    out: a fully convolutional design, which sees strokes, not the whole digit at once.
    """
    w28, w14, w7 = widths
    extra14, extra7 = extra_convs
    inputs = keras.Input(shape=INPUT_SHAPE, name="noisy")
    e28 = _conv(inputs, w28)
    e14 = _conv(layers.MaxPooling2D(2)(e28), w14)
    for _ in range(extra14):
        e14 = _conv(e14, w14)
    x = _conv(layers.MaxPooling2D(2)(e14), w7)
    for _ in range(1 + extra7):
        x = _conv(x, w7)
    if attention_heads:
        x = _transformer_block(x, attention_heads)
    if global_units:
        g = layers.Flatten()(_conv(x, squeeze, 1) if squeeze else x)
        g = layers.Dense(global_units, activation="relu")(g)
        g = layers.Dense(7 * 7 * global_channels, activation="relu")(g)
        x = layers.Concatenate()([x, layers.Reshape((7, 7, global_channels))(g)])
    for _ in range(1 + extra7):
        x = _conv(x, w7)
    x = layers.Concatenate()([layers.UpSampling2D(2)(x), e14])
    for _ in range(1 + extra14):
        x = _conv(x, w14)
    x = layers.Concatenate()([layers.UpSampling2D(2)(x), e28])
    x = _conv(x, w28)
    outputs = layers.Conv2D(1, 3, activation="sigmoid", padding="same", name="denoised")(x)
    return keras.Model(inputs, outputs, name=name)


def _transformer_block(x: keras.KerasTensor, heads: int) -> keras.KerasTensor:
    """Self-attention across the positions of a feature map, then a position-wise MLP."""
    height, width, channels = x.shape[1:]
    t = layers.Reshape((height * width, channels))(x)
    h = layers.LayerNormalization()(t)
    t = layers.Add()([t, layers.MultiHeadAttention(heads, channels // heads)(h, h)])
    h = layers.Dense(2 * channels, activation="gelu")(layers.LayerNormalization()(t))
    t = layers.Add()([t, layers.Dense(channels)(h)])
    return layers.Reshape((height, width, channels))(t)


# The larger designs: a 64-wide 7x7 stage, 512 global units reading a 16-channel squeeze; the
# 28x28 layers stay as narrow as unet's.
_large_unet = partial(unet_autoencoder, widths=(16, 32, 64), global_units=512, global_channels=32, squeeze=16)

ARCHITECTURES: dict[str, Callable[[], keras.Model]] = {
    "seed": seed_autoencoder,
    "unet": unet_autoencoder,
    "unet-l": partial(_large_unet, "unet-l", extra_convs=(0, 2)),
    # unet-l with one more convolution at 14x14 and one more at 7x7 on each side.
    "unet-xl": partial(_large_unet, "unet-xl", extra_convs=(1, 3)),
    # unet-l with one more convolution at 14x14 and self-attention across the 7x7 positions.
    "unet-attn": partial(_large_unet, "unet-attn", extra_convs=(1, 2), attention_heads=4),
    # 40 wide at 14x14, with two more convolutions there on each side.
    "unet-deep14": partial(_large_unet, "unet-deep14", widths=(16, 40, 64), extra_convs=(2, 2)),
    # Fully convolutional: unet-xl's convolutions without the dense bottleneck. Four 3x3
    # convolutions at 7x7 still see the whole digit (a 36 px field), but no weight is tied to a
    # place in MNIST's framing. Wider (16, 40, 80) is 1.5 times unet-xl's cost: over the budget.
    "unet-conv": partial(unet_autoencoder, "unet-conv", widths=(16, 32, 64), global_units=0, extra_convs=(1, 3)),
    # Far over the cost budget and never shipped: it measures what eight times unet-xl's
    # parameters still buy (docs/model-design.md, "The ceiling").
    "unet-huge": partial(
        unet_autoencoder,
        "unet-huge",
        widths=(64, 128, 256),
        global_units=1024,
        global_channels=64,
        extra_convs=(2, 3),
        squeeze=64,
    ),
}
