"""Evaluate exported denoisers on the MNIST test digits.

python -m model.evaluate model/artifacts/denoiser/2 --data ../shared/data/mnist.npz
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from model.data import add_noise
from model.metrics import mse, psnr

Images = npt.NDArray[np.float32]
Predict = Callable[[Images], Images]

NOISE_FACTORS = (0.3, 0.5, 0.7)
TEST_NOISE_SEED = 2026  # one fixed draw, shared by every method and every run
PERCENTILES = (50, 95, 99)


def ssim(reference: Images, estimate: Images) -> npt.NDArray[np.float64]:
    """Per-image SSIM (Gaussian window 11, sigma 1.5, as in Wang et al. 2004)."""
    import tensorflow as tf

    values = tf.image.ssim(tf.constant(reference), tf.constant(estimate.astype(np.float32)), max_val=1.0)
    return np.asarray(values, dtype=np.float64)


def quality(clean: Images, estimate: Images) -> dict[str, float]:
    return {
        "psnr_db": round(float(np.mean(psnr(clean, estimate))), 3),
        "ssim": round(float(np.mean(ssim(clean, estimate))), 4),
        "mse": round(float(np.mean(mse(clean, estimate))), 6),
    }


def reconstruction_error(predict: Predict, images: Images) -> npt.NDArray[np.float64]:
    """What the service reports: MSE between the model's input and its output."""
    return mse(images, predict(images))


def card_metrics(predict: Predict, x_test: Images) -> dict[str, Any]:
    """The model card's quality section: metrics per noise level and the error distribution."""
    metrics: dict[str, Any] = {"test_images": len(x_test), "noise_seed": TEST_NOISE_SEED}
    for factor in NOISE_FACTORS:
        noisy = add_noise(x_test, factor, TEST_NOISE_SEED)
        metrics[f"noise_{factor}"] = quality(x_test, predict(noisy)) | {
            "noisy_input_psnr_db": round(float(np.mean(psnr(x_test, noisy))), 3)
        }
    errors = {
        "clean": reconstruction_error(predict, x_test),
        "noisy_0.5": reconstruction_error(predict, add_noise(x_test, 0.5, TEST_NOISE_SEED)),
    }
    metrics["reconstruction_error"] = {
        name: {f"p{p}": round(float(np.percentile(values, p)), 6) for p in PERCENTILES}
        for name, values in errors.items()
    }
    # Above the 99th percentile of noisy test digits an upload is unlikely to be a digit like MNIST's.
    metrics["anomaly_threshold"] = metrics["reconstruction_error"]["noisy_0.5"]["p99"]
    return metrics
