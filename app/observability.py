"""Prometheus metrics, JSON request logs and request ids, in one ASGI middleware."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem_response

access_log = logging.getLogger("app.access")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Fine below 100 ms, where the service's latency lives; by status class, so that fast rejections
# (503 under overload) never hide the latency of the requests that were served.
_LATENCY_BUCKETS = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1,
    0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """The service's metrics, in a registry of its own so several apps can live in one process.

    With several uvicorn workers, PROMETHEUS_MULTIPROC_DIR (set by ``make run`` and the image)
    makes every worker write its values to files there, and ``exposition`` adds up all workers:
    a scrape reaches one worker but reports the whole service.
    """

    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if self.multiprocess_dir:
            os.makedirs(self.multiprocess_dir, exist_ok=True)  # before the first metric opens its file
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "HTTP requests by route and status", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Request latency by route and status class (2xx, 4xx, 5xx)",
            ["route", "status_class"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.images = Counter("denoise_images", "Images denoised", registry=self.registry)
        self.batch_sizes = Histogram(
            "inference_batch_size", "Images per model call", buckets=_BATCH_BUCKETS, registry=self.registry
        )
        self.model_errors = Counter("model_errors", "Failed model calls", registry=self.registry)
        # Which model runs, and on what: one series per worker, set to 1 once its model is loaded.
        self.model = Gauge(
            "model_info",
            "The served model: version, inference engine and precision",
            ["version", "engine", "precision"],
            multiprocess_mode="max",
            registry=self.registry,
        )
        # Not in http_requests: shed requests are answered before the request middleware.
        self.shed = Counter(
            "http_requests_shed",
            "Denoise requests answered 503 at once: the in-flight limit was reached",
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text format: this process's metrics, or every worker's when shared."""
        if not self.multiprocess_dir:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields passed as ``extra={"fields": {...}}``.

    Every request writes a line: the encoder is made once, the time formatted once a second.
    """

    _encoder = json.JSONEncoder(default=str)

    def __init__(self) -> None:
        super().__init__()
        self._time = (-1, "")  # (second, formatted): one attribute, so threads never see half of it

    def format(self, record: logging.LogRecord) -> str:
        second, formatted = self._time
        if int(record.created) != second:
            second, formatted = int(record.created), self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
            self._time = (second, formatted)
        entry: dict[str, Any] = {
            "time": formatted,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._encoder.encode(entry)


def configure_logging(level: str) -> None:
    """JSON lines on stdout for everything, uvicorn's own messages included."""
    # For every record logging looks up its caller's file and line and reads its thread's and
    # process's names; the JSON lines show none of them, and one is written per request.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn configured its loggers before calling the app factory; route them through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True


class RequestMiddleware:
    """Request id, access log line and request metrics for every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics, model_version: Callable[[], int | None]) -> None:
        self.app = app
        self.metrics = metrics
        self.model_version = model_version  # called per request: the version is only known after startup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        status = 500
        response_started = False
        bytes_in = bytes_out = 0

        async def counting_receive() -> Message:
            nonlocal bytes_in
            message = await receive()
            bytes_in += len(message.get("body", b""))
            return message

        async def tagging_send(message: Message) -> None:
            nonlocal status, bytes_out, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            elif message["type"] == "http.response.body":
                bytes_out += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, tagging_send)
        except Exception:
            # Answered here rather than by Starlette's outermost error middleware, so that the 500
            # goes out through this one and every middleware outside it: X-Request-ID, CORS.
            if response_started:
                raise
            access_log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await problem_response(500, "internal_error", "the server failed to handle this request")(
                scope, counting_receive, tagging_send
            )
        finally:
            duration = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route, f"{status // 100}xx").observe(duration)
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "fields": {
                        "request_id": request_id,
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(duration * 1000, 3),
                        "bytes_in": bytes_in,
                        "bytes_out": bytes_out,
                        "model_version": self.model_version(),
                    }
                },
            )


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-ID when it is one (up to 128 of ``[A-Za-z0-9._:-]``), else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            incoming = bytes(value).decode("latin-1")
            if _REQUEST_ID.fullmatch(incoming):
                return incoming
            break
    # 128 random bits as uuid4().hex shows them, at a seventh of its cost (no os.urandom call per
    # request): an id correlates log lines, it guards nothing. random reseeds in a forked worker.
    return f"{random.getrandbits(128):032x}"


class OneLineStartupFailure:
    """Report a failed startup as one line: the exception, not Starlette's whole traceback.

    uvicorn prints the ``lifespan.startup.failed`` message as it is and exits non-zero; Starlette
    fills that message with ``traceback.format_exc()``, whose last line names the problem.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_last_line(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and message.get("message"):
                message = {**message, "message": message["message"].strip().splitlines()[-1]}
            await send(message)

        await self.app(scope, receive, send_last_line)
