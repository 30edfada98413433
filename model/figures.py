"""Report figures written by training: sample rows and loss curves."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt

Images = npt.NDArray[np.float32]


def save_samples(rows: Mapping[str, Images], path: Path) -> None:
    """The blog post's picture: one row per stage (original, noisy, denoised...), 10 digits each."""
    n_rows, n_cols = len(rows), max(len(images) for images in rows.values())
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols * 1.0, n_rows * 1.15), squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(images):
                ax.imshow(images[c].squeeze(), cmap="gray", vmin=0.0, vmax=1.0)
        axes[r][0].set_title(label, loc="left", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_loss_curves(history: Mapping[str, Sequence[float]], path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key in ("loss", "val_loss"):
        if key in history:
            ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def denoising_rows(predict: Callable[[Images], Images], clean: Images, noisy: Images) -> dict[str, Images]:
    return {"original": clean, "noisy": noisy, "denoised": predict(noisy)}
