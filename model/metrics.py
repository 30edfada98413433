"""Image-quality metrics, computed per image so that means and percentiles come from one place."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PerImage = npt.NDArray[np.float64]


def mse(reference: npt.NDArray[np.float32], estimate: npt.NDArray[np.float32]) -> PerImage:
    """Mean squared error of each image in a batch (N, H, W[, C]), values in [0, 1]."""
    diff = reference.astype(np.float64) - estimate.astype(np.float64)
    return np.asarray(np.mean(diff * diff, axis=tuple(range(1, diff.ndim))), dtype=np.float64)


def psnr(reference: npt.NDArray[np.float32], estimate: npt.NDArray[np.float32]) -> PerImage:
    """Peak signal-to-noise ratio in dB of each image, for a peak value of 1.

    A perfect reconstruction would be infinite; the error is floored at 1e-10 (100 dB) so that
    means stay finite.
    """
    return -10.0 * np.log10(np.maximum(mse(reference, estimate), 1e-10))
