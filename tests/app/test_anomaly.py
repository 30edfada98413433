"""The anomaly score over HTTP with the served model: digits pass, things that are not digits are flagged."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.images import encode, noisy

Digits = npt.NDArray[np.uint8]


def _verdict(client: TestClient, image: Image.Image) -> tuple[bool, float, float]:
    response = client.post(
        "/denoise",
        headers={"Accept": "application/json"},
        files={"file": ("upload.png", encode(image, "PNG"), "image/png")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["x-anomaly"] == str(body["anomaly"]).lower()
    assert float(response.headers["x-anomaly-score"]) == pytest.approx(body["anomaly_score"], rel=1e-5)
    return body["anomaly"], body["anomaly_score"], body["anomaly_threshold"]


def test_noisy_digits_are_not_flagged(client: TestClient, digits: Digits) -> None:
    flags = [_verdict(client, Image.fromarray(noisy(d, seed=i)))[0] for i, d in enumerate(digits[:40])]
    assert sum(flags) <= 2  # the card's rate is about 1%


@pytest.mark.parametrize(
    "name",
    ["white page", "black page", "checkerboard", "noise only", "two digits"],
)
def test_what_is_not_a_digit_is_flagged(client: TestClient, digits: Digits, name: str) -> None:
    rng = np.random.default_rng(5)
    images = {
        "white page": Image.new("L", (28, 28), 255),
        "black page": Image.new("L", (28, 28), 0),
        "checkerboard": Image.fromarray(((np.indices((28, 28)).sum(axis=0) // 4) % 2 * 255).astype(np.uint8)),
        "noise only": Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)),
        "two digits": Image.fromarray(np.concatenate([digits[0][:, 4:24], digits[1][:, 4:24]], axis=1)).resize(
            (28, 28)
        ),
    }
    flagged, score, threshold = _verdict(client, images[name])
    assert flagged, f"{name}: score {score:.3f} at threshold {threshold:.3f}"
    assert score > threshold
