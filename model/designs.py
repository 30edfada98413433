"""Every design ``model.train --arch`` accepts: its layers and how it is trained, in one registry.

The layers themselves are in ``model.architectures``; a design names its builder there and the
options it takes, so that this registry (and ``--help``) loads without importing Keras.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class Recipe:
    """How a design is trained, beyond its layers."""

    optimizer: str
    learning_rate: float
    cosine_decay: bool  # anneal the learning rate to zero over the run
    # Fresh noise every batch, its factor drawn per image from this range; None: one fixed draw
    # at --noise-factor for the whole run, as the seed recipe did.
    noise_range: tuple[float, float] | None


@dataclass(frozen=True)
class Design:
    """A model design: a builder in ``model.architectures``, its options, and its recipe."""

    builder: str
    recipe: Recipe
    options: Mapping[str, Any] = field(default_factory=dict)

    def build(self) -> keras.Model:
        from model import architectures  # Keras takes seconds to import: only when a model is built

        builder = getattr(architectures, self.builder)
        model: keras.Model = builder(**self.options)
        return model


# The blog post: Adadelta (at the learning rate the old Keras default meant), one fixed draw.
SEED_RECIPE = Recipe("adadelta", 1.0, cosine_decay=False, noise_range=None)
IMPROVED = Recipe("adam", 1e-3, cosine_decay=True, noise_range=(0.25, 0.75))
# Wider at 14x14 and 7x7 than unet, with a larger bottleneck; 28x28 layers stay as narrow.
_LARGE = {"widths": (16, 32, 64), "global_units": 512, "global_channels": 32, "squeeze": 16}

DESIGNS: dict[str, Design] = {
    "seed": Design("seed_autoencoder", SEED_RECIPE),
    "unet": Design("unet_autoencoder", IMPROVED, {"name": "unet"}),
    "unet-l": Design("unet_autoencoder", IMPROVED, {"name": "unet-l", **_LARGE, "extra_convs": (0, 2)}),
    # unet-l with one more convolution at 14x14 and one more at 7x7 on each side.
    "unet-xl": Design("unet_autoencoder", IMPROVED, {"name": "unet-xl", **_LARGE, "extra_convs": (1, 3)}),
    # unet-l with one more convolution at 14x14 and self-attention across the 7x7 positions.
    "unet-attn": Design(
        "unet_autoencoder", IMPROVED, {"name": "unet-attn", **_LARGE, "extra_convs": (1, 2), "attention_heads": 4}
    ),
    # 40 wide at 14x14, with two more convolutions there on each side.
    "unet-deep14": Design(
        "unet_autoencoder", IMPROVED, {"name": "unet-deep14", **_LARGE, "widths": (16, 40, 64), "extra_convs": (2, 2)}
    ),
    # Fully convolutional: unet-xl's convolutions without the dense bottleneck. Four 3x3
    # convolutions at 7x7 still see the whole digit (a 36 px field), but no weight is tied to a
    # place in MNIST's framing. Wider (16, 40, 80) is 1.5 times unet-xl's cost: over the budget.
    "unet-conv": Design(
        "unet_autoencoder",
        IMPROVED,
        {"name": "unet-conv", "widths": (16, 32, 64), "global_units": 0, "extra_convs": (1, 3)},
    ),
    # Far over the cost budget and never shipped: it measures what eight times unet-xl's
    # parameters still buy (docs/model-design.md, "The ceiling").
    "unet-huge": Design(
        "unet_autoencoder",
        IMPROVED,
        {
            "name": "unet-huge",
            "widths": (64, 128, 256),
            "global_units": 1024,
            "global_channels": 64,
            "extra_convs": (2, 3),
            "squeeze": 64,
        },
    ),
}


def main(argv: list[str] | None = None) -> int:
    """``python -m model.designs --json docs/designs.json``: every design's parameter count."""
    import argparse
    import json
    from pathlib import Path

    from model.provenance import measured_on

    parser = argparse.ArgumentParser(prog="python -m model.designs", description=main.__doc__)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    parameters = {name: design.build().count_params() for name, design in DESIGNS.items()}
    args.json.write_text(
        json.dumps({"context": measured_on("python -m model.designs"), "parameters": parameters}, indent=2) + "\n"
    )
    print(json.dumps(parameters, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
