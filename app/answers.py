"""A denoised upload as the service answers it: the PNG, its headers and the JSON result.

Pure: one function from the prepared upload and the model's output to a frozen ``Answer``; the
routes only choose between PNG and JSON.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import numpy as np

from app.framing import SIDE
from app.imaging import Prepared, encode_png
from app.inference import Inference, Model
from app.schemas import DenoiseResult, DigitBox, ImageInfo, Timings


class Stopwatch:
    """Milliseconds since it was made: the one way the routes time their steps."""

    def __init__(self) -> None:
        self._started = time.perf_counter()

    def ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000


@dataclass(frozen=True)
class Answer:
    """One denoised upload, ready to be sent as PNG or JSON."""

    prepared: Prepared
    png: bytes
    size: tuple[int, int]  # of ``png``
    error: float  # MSE between the model's input and output
    score: float | None  # the anomaly score, from models that have a scorer
    threshold: float | None
    anomaly: bool
    version: int
    timings: Timings

    def headers(self) -> dict[str, str]:
        headers = {
            "X-Reconstruction-Error": f"{self.error:.6g}",
            "X-Anomaly": str(self.anomaly).lower(),
            "X-Model-Version": str(self.version),
            "X-Inverted": str(self.prepared.inverted).lower(),
        }
        if self.score is not None:
            headers["X-Anomaly-Score"] = f"{self.score:.6g}"
        if self.prepared.framing is not None:
            headers["X-Digit-Box"] = self.prepared.framing.box.header()
        return headers

    def result(self) -> DenoiseResult:
        prepared = self.prepared
        return DenoiseResult(
            image_png_base64=base64.b64encode(self.png).decode("ascii"),
            model_input_png_base64=base64.b64encode(encode_png(prepared.pixels, prepared.inverted)).decode("ascii"),
            reconstruction_error=self.error,
            anomaly=self.anomaly,
            anomaly_score=self.score,
            anomaly_threshold=self.threshold,
            model_version=self.version,
            inverted=prepared.inverted,
            input=ImageInfo(format=prepared.format, width=prepared.size[0], height=prepared.size[1]),
            output=ImageInfo(format="PNG", width=self.size[0], height=self.size[1]),
            timings=self.timings,
            digit_box=None
            if prepared.framing is None
            else DigitBox.model_validate(prepared.framing.box, from_attributes=True),
        )


def answer(
    prepared: Prepared,
    output: Inference,
    model: Model,
    page_size: tuple[int, int] | None,
    decode_ms: float,
    inference_ms: float,
) -> Answer:
    """The answer to one upload: the model's 28x28 output, or drawn at ``page_size`` (capped already).

    With ``fit=digit`` and a ``page_size``, the digit is drawn back where it was found on a clean page.
    """
    clock = Stopwatch()
    denoised = output.denoised[0, ..., 0]
    difference = (prepared.pixels - denoised).ravel()
    error = float(np.dot(difference, difference)) / difference.size  # the MSE; np.mean costs more here
    # The score says whether the model's input looks like a digit; models without a scorer fall
    # back to the input-output error, which mostly measures the noise removed.
    score = None if output.scores is None else float(output.scores[0])
    measured = error if score is None else score
    threshold = model.anomaly_threshold
    framing = prepared.framing if page_size is not None else None
    png = encode_png(denoised, prepared.inverted, page_size, framing)
    return Answer(
        prepared=prepared,
        png=png,
        size=page_size or (SIDE, SIDE),
        error=error,
        score=score,
        threshold=threshold,
        anomaly=threshold is not None and measured > threshold,
        version=model.version,
        timings=Timings(
            decode_ms=round(decode_ms, 3), inference_ms=round(inference_ms, 3), encode_ms=round(clock.ms(), 3)
        ),
    )
