"""Response bodies, as they appear in the OpenAPI schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    type: str = Field("about:blank", examples=["about:blank"])
    title: str = Field(examples=["Unsupported Media Type"])
    status: int = Field(examples=[415])
    code: str = Field(description="Machine-readable reason", examples=["unsupported_media_type"])
    detail: str = Field(examples=["the file is not an image in a supported format (PNG, JPEG, GIF, BMP, TIFF, WEBP)"])


class ImageInfo(BaseModel):
    format: str | None = Field(None, examples=["PNG"])
    width: int = Field(examples=[28])
    height: int = Field(examples=[28])


class Timings(BaseModel):
    decode_ms: float
    inference_ms: float
    encode_ms: float


class DigitBox(BaseModel):
    """Where ``fit=digit`` found the digit, in upload pixels (EXIF orientation applied)."""

    x: int = Field(examples=[112])
    y: int = Field(examples=[64])
    width: int = Field(examples=[58])
    height: int = Field(examples=[90])


class DigitResult(BaseModel):
    """One digit found with ``fit=digit`` or ``fit=digits``: where, and what the model made of it."""

    box: DigitBox
    reconstruction_error: float = Field(description="MSE between this digit's 28x28 input and output")
    anomaly_score: float | None = Field(None, description="1 - P(digit) for this digit's input, from the scorer")
    anomaly: bool = Field(description="This digit's score (or error) is above the card's threshold")


class DenoiseResult(BaseModel):
    """The JSON answer of POST /denoise (with ``Accept: application/json``)."""

    image_png_base64: str = Field(description="The denoised image, PNG, base64-encoded")
    model_input_png_base64: str = Field(
        description="What the model saw: its 28x28 input, PNG, base64-encoded, in the upload's polarity"
    )
    reconstruction_error: float = Field(
        description="MSE between the model's own 28x28 input and output (with `fit=digit`: the framed digit; "
        "with `fit=digits`: the digits' mean)",
        examples=[0.0412],
    )
    anomaly: bool = Field(
        description="The anomaly score is above the model card's threshold: the input does not look like a digit "
        "(models without a scorer: the reconstruction error is above its p99 on noisy digits); with `fit=digits`: "
        "any digit's"
    )
    anomaly_score: float | None = Field(
        None,
        description="1 - P(digit) for the model's own 28x28 input, from the model's digit scorer (with "
        "`fit=digits`: the highest of the digits')",
        examples=[0.0021],
    )
    anomaly_threshold: float | None = Field(
        description="What `anomaly` compares with: the score's threshold (or the error's)", examples=[0.0871]
    )
    model_version: int = Field(examples=[2])
    inverted: bool = Field(description="The upload was dark on light and was inverted for the model")
    input: ImageInfo
    output: ImageInfo
    timings: Timings
    digit_box: DigitBox | None = Field(None, description="With `fit=digit`: the box found, in upload pixels")
    digits: list[DigitResult] | None = Field(
        None,
        description="With `fit=digit` or `fit=digits`: each digit found, in reading order (lines top to bottom, "
        "each left to right), with its own error, score and flag",
    )


class BatchItem(BaseModel):
    index: int = Field(description="Position of the file in the request")
    filename: str | None
    ok: bool
    result: DenoiseResult | None = None
    error: Problem | None = None


class BatchResult(BaseModel):
    model_version: int
    results: list[BatchItem]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    model_version: int


class ModelInfo(BaseModel):
    """The served model's card: version, architecture, signature, training and metrics."""

    version: int
    path: str
    engine: str = Field(description="What runs the model (INFERENCE_ENGINE)", examples=["openvino"])
    precision: str = Field(description="The precision it runs at (INFERENCE_PRECISION resolved)", examples=["f32"])
    architecture: str | None
    parameters: int | None
    signature: dict[str, Any] | None
    anomaly_threshold: float | None
    evaluation: dict[str, Any] | None
    anomaly: dict[str, Any] | None = Field(None, description="The anomaly score: what it is, its threshold, its rates")
    robustness: list[dict[str, Any]] | None = Field(None, description="PSNR per condition of the robustness suite")
    training: dict[str, Any] | None
    libraries: dict[str, str] | None
