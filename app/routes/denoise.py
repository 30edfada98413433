"""POST /denoise and POST /denoise/batch."""

from __future__ import annotations

import base64
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, File, Header, Query, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from app.deps import ReadyServiceDep, require_api_key
from app.errors import ProblemError, problem_body
from app.framing import SIDE
from app.imaging import (
    Fit,
    ImageError,
    Invert,
    Prepared,
    capped_size,
    decode,
    encode_png,
    is_cheap,
    open_image,
    prepare,
)
from app.inference import Inference
from app.negotiation import prefers
from app.openapi import DENOISE_ERRORS
from app.schemas import BatchItem, BatchResult, DenoiseResult, DigitBox, ImageInfo, Problem, Timings
from app.service import ReadyService

# The demo page's example digit; its answer from the served model is the OpenAPI example.
EXAMPLE_UPLOAD = Path(__file__).resolve().parent.parent / "static" / "demo" / "example.png"

router = APIRouter(prefix="/denoise", tags=["denoise"], dependencies=[Depends(require_api_key)])

PNG = "image/png"
JSON = "application/json"


class OutputSize(StrEnum):
    SMALL = "28"
    ORIGINAL = "original"


InvertQuery = Annotated[
    Invert,
    Query(description="Invert dark-on-light uploads for the model: `auto` decides from the image itself"),
]
FitQuery = Annotated[
    Fit,
    Query(
        description="`stretch`: the whole image resized to 28x28. `digit`: the digit is found on the page "
        "(a photo or scan), framed as MNIST frames its digits, and with `size=original` drawn back where it "
        "stood on a clean page; the box found is in `X-Digit-Box`. 422 `no_digit_found` when no ink stands out."
    ),
]
SizeQuery = Annotated[
    OutputSize, Query(description="`28`: the 28x28 result; `original`: scaled back to the upload's size (capped)")
]

JSON_EXAMPLE = {
    "image_png_base64": "iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAA...",
    "model_input_png_base64": "iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAA...",
    "reconstruction_error": 0.1048,
    "anomaly": False,
    "anomaly_score": 0.0021,
    "anomaly_threshold": 0.1274,
    "model_version": 2,
    "inverted": True,
    "input": {"format": "JPEG", "width": 640, "height": 480},
    "output": {"format": "PNG", "width": 28, "height": 28},
    "timings": {"decode_ms": 1.9, "inference_ms": 1.2, "encode_ms": 0.05},
    "digit_box": {"x": 281, "y": 143, "width": 61, "height": 92},
}


class _Outcome:
    """One denoised upload, ready to be answered as PNG or JSON."""

    def __init__(
        self, service: ReadyService, prepared: Prepared, output: Inference, size: OutputSize, timings: dict[str, float]
    ) -> None:
        started = time.perf_counter()
        denoised = output.denoised[0, ..., 0]
        self.prepared = prepared
        self.error = float(np.mean((prepared.pixels - denoised) ** 2))
        model = service.model
        self.version = model.version
        self.threshold = model.anomaly_threshold
        # The score says whether the model's input looks like a digit; models without a scorer
        # fall back to the input-output error, which mostly measures the noise removed.
        self.score = None if output.scores is None else float(output.scores[0])
        measured = self.error if self.score is None else self.score
        self.anomaly = self.threshold is not None and measured > self.threshold
        self.out_size = (
            capped_size(prepared.size, service.settings.max_output_side)
            if size is OutputSize.ORIGINAL
            else (SIDE, SIDE)
        )
        # With fit=digit and size=original, the digit is drawn back where it was found.
        framing = prepared.framing if size is OutputSize.ORIGINAL else None
        self.png = encode_png(denoised, prepared.inverted, self.out_size, framing)
        self.timings = timings | {"encode_ms": (time.perf_counter() - started) * 1000}

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
        return DenoiseResult(
            image_png_base64=base64.b64encode(self.png).decode("ascii"),
            model_input_png_base64=base64.b64encode(encode_png(self.prepared.pixels, self.prepared.inverted)).decode(),
            reconstruction_error=self.error,
            anomaly=self.anomaly,
            anomaly_score=self.score,
            anomaly_threshold=self.threshold,
            model_version=self.version,
            inverted=self.prepared.inverted,
            input=ImageInfo(format=self.prepared.format, width=self.prepared.size[0], height=self.prepared.size[1]),
            output=ImageInfo(format="PNG", width=self.out_size[0], height=self.out_size[1]),
            timings=Timings(**{k: round(v, 3) for k, v in self.timings.items()}),
            digit_box=DigitBox.model_validate(self.prepared.framing.box, from_attributes=True)
            if self.prepared.framing is not None
            else None,
        )


async def _decode(service: ReadyService, data: bytes, invert: Invert, fit: Fit) -> tuple[Prepared, float]:
    started = time.perf_counter()
    image = open_image(data, service.settings.max_image_pixels)  # the header only: cheap
    # Small images decode faster than a thread hand-off takes; large ones must not block the loop.
    if is_cheap(image):
        prepared = prepare(image, invert, fit)
    else:
        prepared = await run_in_threadpool(prepare, image, invert, fit)
    return prepared, (time.perf_counter() - started) * 1000


@router.post(
    "",
    summary="Denoise one image",
    response_class=Response,
    responses={
        200: {
            "description": "The denoised image as PNG (default), or JSON with `Accept: application/json`",
            "headers": {
                "X-Reconstruction-Error": {
                    "description": "MSE between model input and output",
                    "schema": {"type": "number"},
                },
                "X-Anomaly": {
                    "description": "`true` when the anomaly score exceeds the model card's threshold: the "
                    "model's input does not look like a digit (for a model without a scorer: the "
                    "reconstruction error exceeds its p99 on noisy digits)",
                    "schema": {"type": "boolean"},
                },
                "X-Anomaly-Score": {
                    "description": "1 - P(digit) for the model's own 28x28 input, from the model's digit "
                    "scorer (absent for a model without one)",
                    "schema": {"type": "number"},
                },
                "X-Model-Version": {"description": "Served model version", "schema": {"type": "integer"}},
                "X-Inverted": {
                    "description": "`true` when the upload was inverted for the model",
                    "schema": {"type": "boolean"},
                },
                "X-Digit-Box": {
                    "description": "With `fit=digit`: the digit's box found on the upload, `x,y,width,height` in "
                    "upload pixels (EXIF orientation applied)",
                    "schema": {"type": "string", "example": "112,64,58,90"},
                },
            },
            "content": {
                PNG: {"schema": {"type": "string", "format": "binary"}},
                # DenoiseResult is in the components already, through BatchResult.
                JSON: {"schema": {"$ref": "#/components/schemas/DenoiseResult"}, "example": JSON_EXAMPLE},
            },
        },
        **DENOISE_ERRORS,
    },
)
async def denoise(
    service: ReadyServiceDep,
    file: Annotated[UploadFile, File(description="An image: PNG, JPEG, GIF, BMP, TIFF or WebP, any mode")],
    invert: InvertQuery = Invert.AUTO,
    size: SizeQuery = OutputSize.SMALL,
    fit: FitQuery = Fit.STRETCH,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Decode the upload (format from its bytes), make it grayscale 28x28, run the autoencoder.

    Answers the denoised PNG, in the upload's polarity, with the reconstruction error in the
    `X-Reconstruction-Error` header; or, with `Accept: application/json`, all of it as JSON.
    """
    prepared, decode_ms = await _decode(service, await file.read(), invert, fit)
    started = time.perf_counter()
    output = await service.denoise([prepared])
    timings = {"decode_ms": decode_ms, "inference_ms": (time.perf_counter() - started) * 1000}
    if size is OutputSize.ORIGINAL:  # scaling up and encoding a large PNG takes milliseconds
        outcome = await run_in_threadpool(_Outcome, service, prepared, output, size, timings)
    else:
        outcome = _Outcome(service, prepared, output, size, timings)
    if prefers(accept, JSON, over=PNG):
        return Response(outcome.result().model_dump_json(), media_type=JSON, headers=outcome.headers())
    return Response(outcome.png, media_type=PNG, headers=outcome.headers())


@router.post(
    "/batch",
    summary="Denoise several images in one request",
    response_model=BatchResult,
    responses=DENOISE_ERRORS,
)
async def denoise_batch(
    service: ReadyServiceDep,
    files: Annotated[list[UploadFile], File(description="Images, each as a `files` part")],
    invert: InvertQuery = Invert.AUTO,
    size: SizeQuery = OutputSize.SMALL,
    fit: FitQuery = Fit.STRETCH,
) -> BatchResult:
    """Each file gets its own result or its own error, in request order; one bad file fails alone."""
    limit = service.settings.max_batch_files
    if len(files) > limit:
        raise ProblemError(422, "too_many_files", f"{len(files)} files sent, the limit is {limit} per request")
    payloads = [await upload.read() for upload in files]
    started = time.perf_counter()
    decoded = await run_in_threadpool(_prepare_each, payloads, invert, fit, service.settings.max_image_pixels)
    decode_ms = (time.perf_counter() - started) * 1000 / len(files)
    readable = [item for item in decoded if isinstance(item, Prepared)]
    started = time.perf_counter()
    outputs = await service.denoise(readable) if readable else Inference(np.empty((0, SIDE, SIDE, 1), np.float32), None)
    timings = {"decode_ms": decode_ms, "inference_ms": (time.perf_counter() - started) * 1000}
    results = await run_in_threadpool(_batch_items, service, files, decoded, outputs, size, timings)
    return BatchResult(model_version=service.model.version, results=results)


async def example_answer(service: ReadyService) -> dict[str, Any]:
    """The JSON answer to ``EXAMPLE_UPLOAD``, computed by the served model as a request would be."""
    prepared, decode_ms = await _decode(service, EXAMPLE_UPLOAD.read_bytes(), Invert.AUTO, Fit.STRETCH)
    started = time.perf_counter()
    # Straight to the batcher: not a request, so not counted in the images denoised.
    output = await service.batcher.submit(prepared.pixels[np.newaxis, ..., np.newaxis])
    timings = {"decode_ms": decode_ms, "inference_ms": (time.perf_counter() - started) * 1000}
    return _Outcome(service, prepared, output, OutputSize.SMALL, timings).result().model_dump(mode="json")


def _prepare_each(payloads: list[bytes], invert: Invert, fit: Fit, max_pixels: int) -> list[Prepared | ImageError]:
    decoded: list[Prepared | ImageError] = []
    for data in payloads:
        try:
            decoded.append(decode(data, invert, max_pixels, fit))
        except ImageError as exc:
            decoded.append(exc)
    return decoded


def _batch_items(
    service: ReadyService,
    files: list[UploadFile],
    decoded: list[Prepared | ImageError],
    outputs: Inference,
    size: OutputSize,
    timings: dict[str, float],
) -> list[BatchItem]:
    results, row = [], 0
    for index, (upload, item) in enumerate(zip(files, decoded, strict=True)):
        if isinstance(item, ImageError):
            error = Problem.model_validate(problem_body(item.status, item.code, item.message))
            results.append(BatchItem(index=index, filename=upload.filename, ok=False, error=error))
        else:
            outcome = _Outcome(service, item, outputs[row : row + 1], size, timings)
            row += 1
            results.append(BatchItem(index=index, filename=upload.filename, ok=True, result=outcome.result()))
    return results
