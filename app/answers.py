"""A denoised upload as the service answers it: the PNG, its headers and the JSON result.

Pure: one function from the prepared upload and the model's output to a frozen ``Answer``; the
routes only choose between PNG and JSON.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import numpy as np

from app.framing import SIDE, Box
from app.imaging import Prepared, encode_png
from app.inference import Inference, Model
from app.schemas import DenoiseResult, DigitBox, DigitResult, ImageInfo, Timings


class Stopwatch:
    """Milliseconds since it was made: the one way the routes time their steps."""

    def __init__(self) -> None:
        self._started = time.perf_counter()

    def ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000


@dataclass(frozen=True)
class DigitAnswer:
    """One digit of a framed upload: where it was found and what the model made of it."""

    box: Box
    error: float
    score: float | None
    anomaly: bool


@dataclass(frozen=True)
class Answer:
    """One denoised upload, ready to be sent as PNG or JSON."""

    prepared: Prepared
    png: bytes
    size: tuple[int, int]  # of ``png``
    error: float  # MSE between the model's input and output (the digits' mean)
    score: float | None  # the anomaly score, from models that have a scorer (the digits' highest)
    threshold: float | None
    anomaly: bool  # any digit flagged
    version: int
    timings_ms: tuple[float, float, float]  # decode, inference, encode: a model only for JSON answers
    digits: tuple[DigitAnswer, ...]  # with fit=digit or digits, in reading order

    def headers(self) -> dict[str, str]:
        headers = {
            "X-Reconstruction-Error": f"{self.error:.6g}",
            "X-Anomaly": str(self.anomaly).lower(),
            "X-Model-Version": str(self.version),
            "X-Inverted": str(self.prepared.inverted).lower(),
        }
        if self.score is not None:
            headers["X-Anomaly-Score"] = f"{self.score:.6g}"
        if self.digits:
            if len(self.digits) == 1:
                headers["X-Digit-Box"] = self.digits[0].box.header()
            headers["X-Digit-Count"] = str(len(self.digits))
            headers["X-Digit-Boxes"] = ";".join(digit.box.header() for digit in self.digits)
        return headers

    def result(self) -> DenoiseResult:
        prepared = self.prepared
        decode_ms, inference_ms, encode_ms = self.timings_ms
        return DenoiseResult(
            image_png_base64=base64.b64encode(self.png).decode("ascii"),
            model_input_png_base64=base64.b64encode(
                encode_png(prepared.pixels, prepared.inverted, compress=False)
            ).decode("ascii"),
            reconstruction_error=self.error,
            anomaly=self.anomaly,
            anomaly_score=self.score,
            anomaly_threshold=self.threshold,
            model_version=self.version,
            inverted=prepared.inverted,
            input=ImageInfo(format=prepared.format, width=prepared.size[0], height=prepared.size[1]),
            output=ImageInfo(format="PNG", width=self.size[0], height=self.size[1]),
            timings=Timings(decode_ms=decode_ms, inference_ms=inference_ms, encode_ms=encode_ms),
            digit_box=_box(self.digits[0].box) if len(self.digits) == 1 else None,
            digits=[
                DigitResult(
                    box=_box(digit.box),
                    reconstruction_error=digit.error,
                    anomaly_score=digit.score,
                    anomaly=digit.anomaly,
                )
                for digit in self.digits
            ]
            or None,
        )


def _box(box: Box) -> DigitBox:
    return DigitBox(x=box.x, y=box.y, width=box.width, height=box.height)


def answer(
    prepared: Prepared,
    output: Inference,
    model: Model,
    page_size: tuple[int, int] | None,
    decode_ms: float,
    inference_ms: float,
) -> Answer:
    """The answer to one upload: the model's 28x28 outputs (side by side for several digits), or
    drawn at ``page_size`` (capped already): framed digits where they were found on a clean page."""
    clock = Stopwatch()
    denoised = output.denoised[..., 0]
    count = len(denoised)
    difference = (prepared.pixels - denoised).reshape(count, -1)
    if count == 1:  # the common case: np.einsum and np.mean cost more than the arithmetic here
        errors = [float(np.dot(difference[0], difference[0])) / difference.shape[1]]
    else:
        errors = [float(e) for e in np.einsum("ij,ij->i", difference, difference) / difference.shape[1]]
    # The score says whether the model's input looks like a digit; models without a scorer fall
    # back to the input-output error, which mostly measures the noise removed.
    scores = None if output.scores is None else [float(s) for s in output.scores]
    measured = errors if scores is None else scores
    threshold = model.anomaly_threshold
    flags = [threshold is not None and value > threshold for value in measured]
    framings = prepared.framings if page_size is not None else ()
    png = encode_png(denoised, prepared.inverted, page_size, framings, prepared.levels)
    return Answer(
        prepared=prepared,
        png=png,
        size=page_size or (SIDE * count, SIDE),
        error=sum(errors) / count,
        score=None if scores is None else max(scores),
        threshold=threshold,
        anomaly=any(flags),
        version=model.version,
        timings_ms=(round(decode_ms, 3), round(inference_ms, 3), round(clock.ms(), 3)),
        digits=tuple(
            DigitAnswer(framing.box, errors[i], None if scores is None else scores[i], flags[i])
            for i, framing in enumerate(prepared.framings)
        ),
    )
