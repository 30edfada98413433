"""The running service's state, and the ready service that routes are handed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from app.batching import MicroBatcher
from app.budget import MemoryBudget
from app.engines import Batch
from app.errors import ProblemError
from app.imaging import Prepared
from app.inference import Inference, Model
from app.observability import Metrics
from app.settings import Settings


@dataclass(frozen=True)
class ReadyService:
    """The service with its model loaded: what the routes that need the model are handed."""

    settings: Settings
    metrics: Metrics
    model: Model
    batcher: MicroBatcher
    decoding: MemoryBudget  # large uploads' decoding, this worker's share of the memory limit

    async def denoise(self, prepared: list[Prepared]) -> Inference:
        """Run the model on prepared images, sharing model calls with concurrent requests."""
        if len(prepared) == 1:
            batch = prepared[0].pixels[..., np.newaxis]
        else:
            batch = np.concatenate([p.pixels for p in prepared])[..., np.newaxis]
        try:
            # asyncio.timeout rather than wait_for: no task wrapped around each request's wait.
            async with asyncio.timeout(self.settings.request_timeout_s):
                output = await self.batcher.submit(batch)
        except TimeoutError:
            raise ProblemError(
                503,
                "timeout",
                f"inference did not finish within {self.settings.request_timeout_s} s",
                {"Retry-After": "1"},
            ) from None
        self.metrics.images.inc(len(prepared))
        return output


@dataclass
class Service:
    """The running service's state: settings and metrics, and once started, the model and batcher."""

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    draining: bool = False
    _started: ReadyService | None = None  # the model and its batcher, once ``start`` has run

    def ready(self) -> ReadyService | None:
        """The service as the routes use it, or None before start and while stopping."""
        if self.draining or self._started is None or not self._started.batcher.alive():
            return None  # a batcher whose thread ended answers nothing: not ready
        return self._started

    @property
    def model_version(self) -> int | None:
        return self._started.model.version if self._started else None

    def start(self, model: Model) -> ReadyService:
        """Start the batcher for ``model``: from now on the service is ready."""

        def counted(batch: Batch) -> Inference:
            try:
                return model(batch)
            except Exception:
                self.metrics.model_errors.inc()
                raise

        batcher = MicroBatcher(
            counted,
            max_batch=self.settings.max_inference_batch,
            max_queue_images=self.settings.max_queue_images,
            on_batch=self.metrics.batch_sizes.observe,
            cpu_policy=self.settings.cpu_policy,
        )
        batcher.start()
        self.metrics.model.labels(str(model.version), model.engine.value, model.precision.value).set(1)
        decoding = MemoryBudget(self.settings.decode_memory_mib * 2**20, self.settings.memory_wait_s)
        self._started = ReadyService(self.settings, self.metrics, model, batcher, decoding)
        self.draining = False  # the same app may be started again after a stop (tests do)
        return self._started

    def shed(self) -> None:
        """A request was turned away by the in-flight limit: counted, and the admitted ones hurried."""
        self.metrics.shed.inc()
        if self._started is not None:
            self._started.batcher.hurry()

    def stop(self) -> None:
        self.draining = True
        if self._started is not None:
            self._started.batcher.stop()
