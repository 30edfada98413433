"""Builds the FastAPI application. Run with ``uvicorn --factory app.main:create_app``."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from app import framing
from app.budget import limit_worker_threads, map_large_allocations
from app.engines import ModelLoadError
from app.errors import install_error_handlers
from app.inference import load_model
from app.limits import DeclaredLengthLimit, InFlightLimit
from app.observability import OneLineStartupFailure, RequestMiddleware, configure_logging
from app.openapi import binary_files
from app.routes import denoise, docs, health, model_info
from app.scheduling import apply_cpu_policy
from app.service import Service
from app.settings import Settings
from app.shared_count import SharedCount

log = logging.getLogger(__name__)

DESCRIPTION = """Removes noise from grayscale digit images with a convolutional autoencoder trained on MNIST.

Upload an image to **POST /denoise** (try it below): it is made grayscale 28x28, denoised, and
returned as PNG with its reconstruction error. Errors are RFC 9457 problem details.

To draw or upload a digit and see it denoised side by side, open the [demo page](/demo).
"""


def _settings_or_exit() -> Settings:
    """The settings from the environment; a bad value stops the process with one line naming it."""
    try:
        return Settings()
    except ValidationError as exc:
        configure_logging("info")
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']).upper()}={error.get('input')!r}: {error['msg']}"
            for error in exc.errors()
        )
        log.critical("cannot start: %s", problems)
        raise SystemExit(1) from None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or _settings_or_exit()
    configure_logging(settings.log_level)
    service = Service(settings)
    # With several workers (make run, the image) the in-flight limit is counted across them, in a
    # file beside the multiprocess metrics; a worker counts once its model is loaded.
    shared_dir = service.metrics.multiprocess_dir
    shared = SharedCount(Path(shared_dir), serving=False) if shared_dir else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        map_large_allocations()  # memory freed after a burst goes back to the system
        apply_cpu_policy(settings.cpu_policy)  # before the model's and the batcher's threads start
        limit_worker_threads(settings.worker_threads)
        # Loading converts and compiles the model and runs a warm-up call: off the event loop.
        try:
            model = await run_in_threadpool(
                load_model,
                settings.model_dir,
                settings.inference_engine,
                settings.inference_precision,
                settings.inference_threads,
            )
        except ModelLoadError as exc:
            log.critical("cannot start: %s", exc)
            raise
        ready = service.start(model)
        app.state.example = await denoise.example_answer(ready)
        if shared is not None:
            shared.serve()
        app.openapi_schema = None  # regenerated with that example
        # The libraries leave long-lived objects (TensorFlow ~340,000) that a full collection would
        # walk, stalling every request in flight (~150 ms with TensorFlow, python -m bench.micro).
        # They live as long as the process, so move them out of the collector's sight.
        gc.freeze()
        log.info("ready", extra={"fields": {"model_version": service.model_version}})
        # Framing's libraries load once the model is ready, not before: a starting worker answers
        # sooner, and the first page framed finds them loaded (or waits on the same import).
        threading.Thread(target=framing.warm_up, name="warm-up-framing", daemon=True).start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(
        title="Denoising service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by app.routes.docs from local files; ReDoc is left out (one docs page to keep).
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.state.example = None
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """The schema, with the 200 JSON example answered by the served model once it is loaded."""
        schema = default_openapi()
        binary_files(schema)
        if app.state.example is not None:
            for path in ("/denoise", "/denoise/json"):
                content = schema["paths"][path]["post"]["responses"]["200"]["content"]
                content["application/json"]["example"] = app.state.example
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    install_error_handlers(app)
    app.include_router(health.router)
    # Its bodies are read by the in-flight limit (below), which enforces MAX_UPLOAD_BYTES as they
    # stream in, chunked uploads included.
    app.include_router(denoise.router)
    app.include_router(model_info.router)

    app.include_router(docs.router)
    app.mount(docs.STATIC_URL, StaticFiles(directory=docs.STATIC_DIR), name="static")

    app.add_middleware(DeclaredLengthLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestMiddleware, metrics=service.metrics, model_version=lambda: service.model_version)
    app.add_middleware(OneLineStartupFailure)
    # Outermost but for CORS: a rejection under overload must cost as little as possible.
    app.add_middleware(
        InFlightLimit,
        limit=settings.max_concurrent_requests,
        shared=shared,
        on_shed=service.shed,
        max_body_bytes=settings.max_upload_bytes,
        body_timeout_s=settings.body_timeout_s,
        max_receiving=settings.max_receiving_requests,
        max_body_memory=settings.max_body_memory_mib * 2**20,
        memory_wait_s=settings.memory_wait_s,
        api_key=settings.api_key,
    )
    # Outermost when on: every answer, a refusal by the limits included, carries its CORS headers
    # (a browser on another origin sees a network error for an answer without them).
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=[
                "X-Reconstruction-Error",
                "X-Anomaly",
                "X-Anomaly-Score",
                "X-Model-Version",
                "X-Inverted",
                "X-Digit-Box",
                "X-Digit-Count",
                "X-Digit-Boxes",
                "X-Request-ID",
                "Retry-After",
            ],
        )
    return app
