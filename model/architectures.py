"""The autoencoders' layers; ``model.designs`` names each design built from them."""

from __future__ import annotations

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
        whole = layers.Flatten()(_conv(x, squeeze, 1) if squeeze else x)
        whole = layers.Dense(global_units, activation="relu")(whole)
        whole = layers.Dense(7 * 7 * global_channels, activation="relu")(whole)
        x = layers.Concatenate()([x, layers.Reshape((7, 7, global_channels))(whole)])
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
    tokens = layers.Reshape((height * width, channels))(x)
    normed = layers.LayerNormalization()(tokens)
    tokens = layers.Add()([tokens, layers.MultiHeadAttention(heads, channels // heads)(normed, normed)])
    hidden = layers.Dense(2 * channels, activation="gelu")(layers.LayerNormalization()(tokens))
    tokens = layers.Add()([tokens, layers.Dense(channels)(hidden)])
    return layers.Reshape((height, width, channels))(tokens)
