"""POST /denoise and POST /denoise/batch."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import numpy as np
from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from PIL import Image

from app.answers import Answer, Stopwatch, answer
from app.budget import return_memory
from app.deps import AuthorizedServiceDep
from app.errors import ProblemError, problem_body
from app.framing import SIDE
from app.imaging import (
    Fit,
    ImageError,
    Invert,
    Prepared,
    capped_size,
    decoding_cost,
    is_cheap,
    open_image,
    prepare,
    rendering_cost,
)
from app.inference import Inference
from app.negotiation import prefers
from app.openapi import DENOISE_BODY, DENOISE_ERRORS, DENOISE_OK, JSON, OCTET_STREAM, PNG
from app.routes.docs import FIT_DIGITS_PICTURE, STATIC_URL
from app.schemas import BatchItem, BatchResult, DenoiseResult, Problem
from app.service import ReadyService
from app.uploads import read_image

# The demo page's example digit; its answer from the served model is the OpenAPI example.
EXAMPLE_UPLOAD = Path(__file__).resolve().parent.parent / "static" / "demo" / "example.png"

router = APIRouter(prefix="/denoise", tags=["denoise"])
P = ParamSpec("P")
T = TypeVar("T")


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
        description="`stretch`: the whole image resized to 28x28, its paper and ink set to MNIST's levels. "
        "`digit`: the digit is found on the page (a photo or scan), framed as MNIST frames its digits, and with "
        "`size=original` drawn back where it stood on a clean page; the box found is in `X-Digit-Box`. "
        "`digits`: every digit on the page (a number, a date, a code), each framed so and denoised in one model "
        "call; with `size=original` all drawn back on a clean page, with `size=28` side by side as 28x28 tiles "
        "in reading order; the boxes are in `X-Digit-Boxes`, each digit's result in the JSON's `digits`. "
        "`auto`: `digits` for digits small on a page, `stretch` for a crop such as MNIST's. "
        "422 `no_digit_found` when no ink stands out, `too_many_digits` past `MAX_DIGITS`.\n\n"
        f"![A number uploaded with fit=digits&size=original, above its answer; the boxes found in red]"
        f"({STATIC_URL}/{FIT_DIGITS_PICTURE})",
        openapi_examples={
            "stretch": {"summary": "an MNIST-like crop: the whole image", "value": "stretch"},
            "digit": {"summary": "a photo or scan of one digit", "value": "digit"},
            "digits": {"summary": "a photo of a number: every digit, each denoised", "value": "digits"},
            "auto": {"summary": "let the service choose", "value": "auto"},
        },
    ),
]
SizeQuery = Annotated[
    OutputSize, Query(description="`28`: the 28x28 result; `original`: scaled back to the upload's size (capped)")
]


def _page_size(service: ReadyService, prepared: Prepared, size: OutputSize) -> tuple[int, int] | None:
    """The answer's size with ``size=original`` (the upload's, capped); None for the 28x28 output."""
    return capped_size(prepared.size, service.settings.max_output_side) if size is OutputSize.ORIGINAL else None


async def _decode(service: ReadyService, data: bytes, invert: Invert, fit: Fit) -> tuple[Prepared, float]:
    clock = Stopwatch()
    image = open_image(data, service.settings.max_image_pixels)  # the header only: cheap
    # Small images decode faster than a thread hand-off takes; large ones must not block the loop,
    # and decode within the worker's memory budget.
    max_digits = service.settings.max_digits
    if is_cheap(image):
        prepared = prepare(image, invert, fit, max_digits)
    else:
        async with service.decoding.hold(decoding_cost(image, fit)):
            prepared = await run_in_threadpool(_prepare_large, image, invert, fit, max_digits)
    return prepared, clock.ms()


def _prepare_large(image: Image.Image, invert: Invert, fit: Fit, max_digits: int) -> Prepared:
    """``prepare``, then the decoded pixels' memory given back to the system (not kept by malloc)."""
    try:
        return prepare(image, invert, fit, max_digits)
    finally:
        image.close()  # prepare closes it too, unless it raised first
        return_memory()


def _returning_memory(work: Callable[P, T]) -> Callable[P, T]:
    """``work``, then what it freed given back to the system: large work in a worker thread leaves
    its memory in that thread's malloc arena otherwise."""

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return work(*args, **kwargs)
        finally:
            return_memory()

    return run


@router.post(
    "",
    summary="Denoise one image",
    response_class=Response,
    responses=DENOISE_OK | DENOISE_ERRORS,
    openapi_extra={"requestBody": DENOISE_BODY},
)
async def denoise(
    request: Request,
    service: AuthorizedServiceDep,
    invert: InvertQuery = Invert.AUTO,
    size: SizeQuery = OutputSize.SMALL,
    fit: FitQuery = Fit.STRETCH,
) -> Response:
    """Decode the upload (format from its bytes), make it grayscale 28x28, run the autoencoder.

    Send the image as the `file` part of multipart/form-data, or as the body itself with
    `Content-Type: image/*` or `application/octet-stream` (`curl --data-binary`).

    Answers the denoised PNG, in the upload's polarity, with the reconstruction error in the
    `X-Reconstruction-Error` header; with `Accept: application/json`, all of it as JSON (as
    `POST /denoise/json` answers); with `Accept: application/octet-stream`, the same PNG bytes.
    """
    done = await _denoise_one(request, service, invert, size, fit)
    accept = request.headers.get("accept")
    if prefers(accept, JSON, over=PNG):
        return _as_json(done)
    media_type = OCTET_STREAM if prefers(accept, OCTET_STREAM, over=PNG) else PNG
    return Response(done.png, media_type=media_type, headers=done.headers())


@router.post(
    "/json",
    summary="Denoise one image, answer JSON",
    response_model=DenoiseResult,
    responses=DENOISE_ERRORS,
    openapi_extra={"requestBody": DENOISE_BODY},
)
async def denoise_json(
    request: Request,
    service: AuthorizedServiceDep,
    invert: InvertQuery = Invert.AUTO,
    size: SizeQuery = OutputSize.SMALL,
    fit: FitQuery = Fit.STRETCH,
) -> Response:
    """`POST /denoise` with `Accept: application/json`, as its own operation: for clients that
    cannot set Accept, and for generated clients, which type one answer per operation."""
    return _as_json(await _denoise_one(request, service, invert, size, fit))


def _as_json(done: Answer) -> Response:
    return Response(done.result().model_dump_json(), media_type=JSON, headers=done.headers())


async def _denoise_one(request: Request, service: ReadyService, invert: Invert, size: OutputSize, fit: Fit) -> Answer:
    # The in-flight limit has read the body already (after checking the API key); read_image takes
    # the image out of it.
    prepared, decode_ms = await _decode(service, await read_image(request), invert, fit)
    clock = Stopwatch()
    output = await service.denoise([prepared])
    inference_ms = clock.ms()
    page_size = _page_size(service, prepared, size)
    if page_size is None:
        return answer(prepared, output, service.model, None, decode_ms, inference_ms)
    # Drawing and encoding a page takes milliseconds and up to 64 MiB: a thread, within the budget.
    async with service.decoding.hold(rendering_cost(page_size, bool(prepared.framings))):
        return await run_in_threadpool(
            _returning_memory(answer), prepared, output, service.model, page_size, decode_ms, inference_ms
        )


@router.post(
    "/batch",
    summary="Denoise several images in one request",
    response_model=BatchResult,
    responses=DENOISE_ERRORS,
)
async def denoise_batch(
    service: AuthorizedServiceDep,
    files: Annotated[list[UploadFile], File(description="Images, each as a `files` part")],
    invert: InvertQuery = Invert.AUTO,
    size: SizeQuery = OutputSize.SMALL,
    fit: FitQuery = Fit.STRETCH,
) -> BatchResult:
    """Each file gets its own result or its own error, in request order; one bad file fails alone."""
    limit = service.settings.max_batch_files
    if len(files) > limit:
        raise ProblemError(422, "too_many_files", f"{len(files)} files sent, the limit is {limit} per request")
    clock = Stopwatch()
    opened = [_open(await upload.read(), service.settings.max_image_pixels) for upload in files]
    # Decoded one after the other in one thread: the largest one's cost is what they hold at once.
    cost = max((decoding_cost(i, fit) for i in opened if isinstance(i, Image.Image) and not is_cheap(i)), default=0)
    async with service.decoding.hold(cost) if cost else nullcontext():
        decoded = await run_in_threadpool(_prepare_each, opened, invert, fit, service.settings.max_digits)
    decode_ms = clock.ms() / len(files)
    readable = [item for item in decoded if isinstance(item, Prepared)]
    clock = Stopwatch()
    outputs = await service.denoise(readable) if readable else Inference(np.empty((0, SIDE, SIDE, 1), np.float32), None)
    inference_ms = clock.ms()

    def items() -> list[BatchItem]:
        results, row = [], 0
        for index, (upload, item) in enumerate(zip(files, decoded, strict=True)):
            if isinstance(item, ImageError):
                error = Problem.model_validate(problem_body(item.status, item.code, item.message))
                results.append(BatchItem(index=index, filename=upload.filename, ok=False, error=error))
                continue
            page_size = _page_size(service, item, size)
            count = len(item.pixels)  # one per digit found with fit=digits
            done = answer(item, outputs[row : row + count], service.model, page_size, decode_ms, inference_ms)
            row += count
            results.append(BatchItem(index=index, filename=upload.filename, ok=True, result=done.result()))
        return results

    if size is OutputSize.SMALL:
        return BatchResult(model_version=service.model.version, results=await run_in_threadpool(items))
    # One page after the other in one thread: the largest is what they hold at once.
    pages = [(_page_size(service, item, size), bool(item.framings)) for item in readable]
    cost = max((rendering_cost(page, framed) for page, framed in pages if page is not None), default=0)
    async with service.decoding.hold(cost):
        results = await run_in_threadpool(_returning_memory(items))
    return BatchResult(model_version=service.model.version, results=results)


async def example_answer(service: ReadyService) -> dict[str, Any]:
    """The JSON answer to ``EXAMPLE_UPLOAD``, computed by the served model as a request would be."""
    prepared, decode_ms = await _decode(service, EXAMPLE_UPLOAD.read_bytes(), Invert.AUTO, Fit.STRETCH)
    clock = Stopwatch()
    # Straight to the batcher: not a request, so not counted in the images denoised.
    output = await service.batcher.submit(prepared.pixels[..., np.newaxis])
    done = answer(prepared, output, service.model, None, decode_ms, clock.ms())
    return done.result().model_dump(mode="json")


def _open(data: bytes, max_pixels: int) -> Image.Image | ImageError:
    try:
        return open_image(data, max_pixels)
    except ImageError as exc:
        return exc


def _prepare_each(
    opened: list[Image.Image | ImageError], invert: Invert, fit: Fit, max_digits: int
) -> list[Prepared | ImageError]:
    decoded: list[Prepared | ImageError] = []
    for item in opened:
        if isinstance(item, ImageError):
            decoded.append(item)
            continue
        try:
            large = not is_cheap(item)
            decoded.append(
                _prepare_large(item, invert, fit, max_digits) if large else prepare(item, invert, fit, max_digits)
            )
        except ImageError as exc:
            decoded.append(exc)
    return decoded
