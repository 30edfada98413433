"""Service configuration, read from environment variables (see the README's table)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.engines import EngineName, Precision
from app.framing import MAX_DIGITS
from app.scheduling import CpuPolicy

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "model" / "artifacts" / "denoiser"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, frozen=True)

    model_dir: Path = Field(
        DEFAULT_MODEL_DIR,
        description="Directory holding integer-numbered SavedModel versions; the highest is served.",
    )
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Largest request body accepted.")
    max_image_pixels: int = Field(
        40_000_000, gt=0, description="Largest width x height accepted, checked before decoding."
    )
    max_output_side: int = Field(2048, ge=28, description="Cap on either side of a size=original answer.")
    max_batch_files: int = Field(64, gt=0, description="Most files in one POST /denoise/batch.")
    max_inference_batch: int = Field(256, gt=0, description="Most images in one model call.")
    max_queue_images: int = Field(2048, gt=0, description="Images waiting for the model beyond which requests get 503.")
    # 32 in flight saturate 2 cores (docs/benchmarks.md): more would only add waiting.
    max_concurrent_requests: int = Field(
        32,
        gt=0,
        description="Denoise requests in progress, all workers together, beyond which new ones get 503 at once.",
    )
    request_timeout_s: float = Field(30.0, gt=0, description="Deadline for a request's inference.")
    body_timeout_s: float = Field(
        60.0, gt=0, description="Deadline to receive a denoise request's body (10 MiB at ~1.5 Mbit/s); then 408."
    )
    max_receiving_requests: int = Field(
        128,
        gt=0,
        description="Denoise request bodies being received at once, per worker, beyond which new ones get 503.",
    )
    decode_memory_mib: int = Field(
        256,
        gt=0,
        description="Memory that decoding large uploads may hold at once, per worker (estimated from each "
        "image's header); beyond it uploads wait their turn. The largest legal upload (a 40 MP RGBA PNG) "
        "needs about 240 MiB and runs alone if the budget is smaller.",
    )
    max_body_memory_mib: int = Field(
        64,
        gt=0,
        description="Bytes of denoise request bodies a worker holds at once (being received or being served); "
        "beyond it bodies are read more slowly until others are done. A request alone always fits.",
    )
    worker_threads: int = Field(
        4,
        gt=0,
        description="Threads per worker for blocking work (decoding and drawing large images). Each keeps some "
        "memory after a large image; a few keep two cores busy (docs/operations.md, Memory).",
    )
    memory_wait_s: float = Field(
        5.0,
        gt=0,
        description="How long an upload waits for room in the memory for bodies or for decoding before it gets "
        "503 + Retry-After.",
    )
    max_digits: int = Field(
        MAX_DIGITS, gt=0, description="Digits that `fit=digits` may find on one upload; past it 422 too_many_digits."
    )
    inference_engine: EngineName = Field(
        EngineName.OPENVINO,
        description="What runs the model: openvino, tensorflow (an optional extra), or identity (benchmarks only).",
    )
    inference_precision: Precision = Field(
        Precision.AUTO,
        description="f32, bf16 (OpenVINO on a bf16 CPU), int8 (OpenVINO, the version's INT8 graph), or auto: "
        "bf16 where the CPU has it, else int8, each where the model card approves it; else f32.",
    )
    inference_threads: int = Field(
        1,
        ge=0,
        # The old name still works: deployments set it before the engine became a setting.
        validation_alias=AliasChoices("inference_threads", "tf_intra_op_threads"),
        description="Threads per model call (0: the engine decides). 1 fits one worker per core.",
    )
    cpu_policy: CpuPolicy = Field(
        "batch",
        description="The kernel's scheduling policy for the workers' threads: batch (Linux's SCHED_BATCH: a woken "
        "thread waits its turn instead of preempting, so batches fill and a proxy beside the service runs "
        "promptly; the model's thread runs as normal while requests are being turned away) or normal (the "
        "system's default).",
    )
    api_key: str | None = Field(None, description="When set (and not empty), the denoise routes require it.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("api_key", mode="before")
    @classmethod
    def _no_empty_key(cls, value: object) -> object:
        """API_KEY="" (a variable left empty in a compose file) means no key, not a key that is empty."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("inference_engine", "inference_precision", "cpu_policy", "log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        """Names read case-insensitively: LOG_LEVEL=INFO is what people write."""
        return value.lower() if isinstance(value, str) else value
