"""The JSON answer, the batch route, /model, /metrics, request ids, CORS and the OpenAPI contract."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.observability import JsonFormatter
from app.settings import DEFAULT_MODEL_DIR
from tests.images import encode, noisy


@pytest.fixture(scope="module")
def upload(digits: npt.NDArray[np.uint8]) -> bytes:
    return encode(Image.fromarray(noisy(digits[0])), "PNG")


def test_json_answer_by_content_negotiation(client: TestClient, upload: bytes) -> None:
    png = client.post("/denoise", files={"file": ("d.png", upload)})
    response = client.post("/denoise", files={"file": ("d.png", upload)}, headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert base64.b64decode(body["image_png_base64"]) == png.content
    assert body["reconstruction_error"] == pytest.approx(float(png.headers["x-reconstruction-error"]), rel=1e-5)
    assert body["model_version"] == int(png.headers["x-model-version"])
    assert body["anomaly"] is (png.headers["x-anomaly"] == "true")
    assert body["inverted"] is False
    assert body["input"] == {"format": "PNG", "width": 28, "height": 28}
    assert body["output"] == {"format": "PNG", "width": 28, "height": 28}
    assert set(body["timings"]) == {"decode_ms", "inference_ms", "encode_ms"}
    # The JSON operation answers the same, whatever Accept says.
    as_json = client.post("/denoise/json", files={"file": ("d.png", upload)}, headers={"Accept": "image/png"})
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json()["image_png_base64"] == body["image_png_base64"]
    assert as_json.headers["x-reconstruction-error"] == png.headers["x-reconstruction-error"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("image/png", "image/png"),
        ("*/*", "image/png"),
        ("application/json;q=0.5, image/png", "image/png"),
        ("image/png;q=0.2, application/json", "application/json"),
        ("text/html,application/json;q=0.9", "application/json"),
        ("application/octet-stream", "application/octet-stream"),
        ("application/octet-stream;q=0.5, image/png", "image/png"),
    ],
)
def test_accept_q_values_decide(client: TestClient, upload: bytes, accept: str, expected: str) -> None:
    response = client.post("/denoise", files={"file": ("d.png", upload)}, headers={"Accept": accept})
    assert response.headers["content-type"] == expected


def _flag_rule(model: dict[str, Any]) -> Callable[[Any], bool]:
    """The rule the served model's card gives for X-Anomaly: its digit scorer's score over the
    threshold, or, for a model without one (v3), the reconstruction error over it."""
    threshold = float(model["anomaly_threshold"])
    if model.get("anomaly"):
        return lambda headers: float(headers["x-anomaly-score"]) > threshold
    return lambda headers: float(headers["x-reconstruction-error"]) > threshold


def test_png_answer_carries_the_documented_headers(client: TestClient, upload: bytes) -> None:
    response = client.post("/denoise", files={"file": ("d.png", upload)})
    model = client.get("/model").json()
    assert response.headers["x-model-version"] == str(model["version"])
    assert response.headers["x-inverted"] == "false"
    assert response.headers["x-anomaly"] == "false"  # a noisy MNIST digit
    assert response.headers["x-anomaly"] == str(_flag_rule(model)(response.headers)).lower()


@pytest.fixture(scope="module")
def seed_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory serving v3, the seed recipe, whose card has no digit scorer."""
    directory = tmp_path_factory.mktemp("models")
    (directory / "3").symlink_to(DEFAULT_MODEL_DIR / "3", target_is_directory=True)
    return directory


@pytest.mark.parametrize("served", ["latest", "v3"])
def test_the_flag_follows_the_served_models_rule(
    client: TestClient, make_client: Callable[..., Any], seed_only: Path, digits: npt.NDArray[np.uint8], served: str
) -> None:
    checkerboard = (np.indices((28, 28)).sum(axis=0) % 2 * 255).astype(np.uint8)
    uploads = {
        "digit": encode(Image.fromarray(noisy(digits[3])), "PNG"),
        "checkerboard": encode(Image.fromarray(checkerboard), "PNG"),
    }

    def check(c: TestClient) -> None:
        model = c.get("/model").json()
        rule = _flag_rule(model)
        answers = {name: c.post("/denoise", files={"file": (f"{name}.png", data)}) for name, data in uploads.items()}
        for answer in answers.values():
            assert answer.headers["x-anomaly"] == str(rule(answer.headers)).lower()
        assert answers["digit"].headers["x-anomaly"] == "false"
        assert answers["checkerboard"].headers["x-anomaly"] == "true"
        assert ("x-anomaly-score" in answers["digit"].headers) == bool(model.get("anomaly"))

    if served == "latest":
        check(client)
    else:
        with make_client(model_dir=seed_only) as seed:
            assert seed.get("/model").json()["version"] == 3
            check(seed)


def test_the_json_answer_carries_the_models_own_input(client: TestClient, digits: npt.NDArray[np.uint8]) -> None:
    # A 28x28 MNIST-like upload, not inverted: the model's input is the upload itself, level for level.
    pixels = noisy(digits[5])
    body = client.post(
        "/denoise?invert=false",
        files={"file": ("d.png", encode(Image.fromarray(pixels), "PNG"))},
        headers={"Accept": "application/json"},
    ).json()
    model_input = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["model_input_png_base64"]))))
    np.testing.assert_array_equal(model_input, pixels)
    denoised = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["image_png_base64"]))))
    assert not np.array_equal(denoised, pixels)


def test_batch_keeps_order_and_fails_files_alone(client: TestClient, digits: npt.NDArray[np.uint8]) -> None:
    goods = [encode(Image.fromarray(noisy(d, seed=i)), "PNG") for i, d in enumerate(digits[:3])]
    files = [
        ("files", ("a.png", goods[0])),
        ("files", ("b.txt", b"not an image")),
        ("files", ("c.png", goods[1])),
        ("files", ("d.png", goods[2][:50])),
        ("files", ("e.png", goods[2])),
    ]
    response = client.post("/denoise/batch", files=files)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["filename"] for r in results] == ["a.png", "b.txt", "c.png", "d.png", "e.png"]
    assert [r["ok"] for r in results] == [True, False, True, False, True]
    assert results[1]["error"]["code"] == "unsupported_media_type"
    assert results[3]["error"]["code"] == "corrupt_image"
    for index, good in ((0, goods[0]), (2, goods[1]), (4, goods[2])):
        alone = client.post("/denoise", files={"file": ("x.png", good)})
        assert base64.b64decode(results[index]["result"]["image_png_base64"]) == alone.content


def test_batch_over_the_file_limit_gets_422(make_client: Callable[..., Any], upload: bytes) -> None:
    with make_client(max_batch_files=2) as client:
        response = client.post("/denoise/batch", files=[("files", ("d.png", upload))] * 3)
        assert response.status_code == 422
        assert response.json()["code"] == "too_many_files"
        assert "3 files" in response.json()["detail"]


def test_model_card_route(client: TestClient) -> None:
    body = client.get("/model").json()
    assert body["version"] >= 1
    assert body["signature"]["input"]["shape"] == [None, 28, 28, 1]
    assert body["parameters"] > 0
    assert 0 < body["anomaly_threshold"] < 1
    assert body["evaluation"]["noise_0.5"]["psnr_db"] > 15


def test_metrics_count_requests_images_and_batches(client: TestClient, upload: bytes) -> None:
    before = client.get("/metrics").text
    client.post("/denoise", files={"file": ("d.png", upload)})
    client.post("/denoise", files={"file": ("d.txt", b"text")})
    text = client.get("/metrics").text

    def value(metrics: str, prefix: str) -> float:
        lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    ok = 'http_requests_total{method="POST",route="/denoise",status="200"}'
    bad = 'http_requests_total{method="POST",route="/denoise",status="415"}'
    assert value(text, ok) == value(before, ok) + 1
    assert value(text, bad) == value(before, bad) + 1
    assert value(text, "denoise_images_total") == value(before, "denoise_images_total") + 1
    assert value(text, "inference_batch_size_count") >= value(before, "inference_batch_size_count") + 1
    assert 'http_request_duration_seconds_bucket{le="0.005",route="/denoise",status_class="2xx"}' in text
    assert 'http_request_duration_seconds_count{route="/denoise",status_class="4xx"}' in text
    assert "model_errors_total" in text


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("abc-123", True),
        ("A" * 128, True),  # the longest accepted
        ("a.b_c:d-e", True),  # every accepted punctuation mark
        ("A" * 129, False),
        ("bad id with spaces", False),
        ("semi;colon", False),
        ("", False),
    ],
)
def test_request_id_is_echoed_or_made(client: TestClient, sent: str, echoed: bool) -> None:
    made = client.get("/healthz", headers={"X-Request-ID": sent}).headers["x-request-id"]
    if echoed:
        assert made == sent
    else:
        assert made != sent
        assert len(made) == 32
        assert all(c in "0123456789abcdef" for c in made)


def test_one_json_log_line_per_request(client: TestClient, upload: bytes, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        client.post("/denoise", files={"file": ("d.png", upload)}, headers={"X-Request-ID": "log-check"})
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "app.access"]
    assert len(lines) == 1
    entry = lines[0]
    assert entry["request_id"] == "log-check"
    assert entry["route"] == "/denoise"
    assert entry["status"] == 200
    assert entry["bytes_in"] > len(upload)
    assert entry["bytes_out"] > 0
    assert entry["duration_ms"] > 0
    assert entry["model_version"] >= 1


def test_cors_is_off_by_default_and_follows_the_setting(client: TestClient, make_client: Callable[..., Any]) -> None:
    preflight = {"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/denoise", headers=preflight).headers
    with make_client(cors_origins=["https://ui.example"]) as cors_client:
        response = cors_client.options("/denoise", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://ui.example"


def test_openapi_documents_every_route_and_both_media_types(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {
        "/healthz", "/readyz", "/denoise", "/denoise/json", "/denoise/batch", "/model", "/metrics"
    }  # fmt: skip
    denoise = schema["paths"]["/denoise"]["post"]
    # The bytes before JSON: generators that type one answer per operation take the first they know.
    assert list(denoise["responses"]["200"]["content"]) == ["image/png", "application/octet-stream", "application/json"]
    example = denoise["responses"]["200"]["content"]["application/json"]["example"]
    assert set(example) == set(schema["components"]["schemas"]["DenoiseResult"]["properties"])
    as_json = schema["paths"]["/denoise/json"]["post"]
    assert list(as_json["responses"]["200"]["content"]) == ["application/json"]
    assert as_json["responses"]["200"]["content"]["application/json"]["example"] == example
    assert as_json["requestBody"] == denoise["requestBody"]
    assert {"X-Reconstruction-Error", "X-Anomaly", "X-Model-Version", "X-Inverted"} <= set(
        denoise["responses"]["200"]["headers"]
    )
    assert {"400", "401", "413", "415", "422", "503"} <= set(denoise["responses"])
    assert [p["name"] for p in denoise["parameters"]] == ["invert", "size", "fit"]
    content = denoise["requestBody"]["content"]
    assert list(content) == ["multipart/form-data", "image/*", "application/octet-stream"]
    assert content["multipart/form-data"]["schema"]["required"] == ["file"]
    # A file as 3.1 tools and format-binary generators both read it.
    for upload in (content["multipart/form-data"]["schema"]["properties"]["file"], content["image/*"]["schema"]):
        assert upload["format"] == "binary"
        assert upload["contentMediaType"] == "application/octet-stream"
    assert schema_of_batch_upload(schema)["items"]["format"] == "binary"


def test_every_error_status_has_an_example_of_its_own(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    responses = schema["paths"]["/denoise"]["post"]["responses"]
    assert "Problem" in schema["components"]["schemas"]
    for status in ("400", "401", "413", "415", "422", "503"):
        # The one media type the service sends: Swagger UI shows this status's examples first.
        assert list(responses[status]["content"]) == ["application/problem+json"], status
        assert responses[status]["content"]["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }
        examples = responses[status]["content"]["application/problem+json"]["examples"]
        assert examples, status
        for example in examples.values():
            assert example["value"]["status"] == int(status)
            assert example["value"]["code"] == example["summary"]
    assert {"corrupt_image", "no_digit_found"} <= set(
        responses["422"]["content"]["application/problem+json"]["examples"]
    )
    assert "Retry-After" in responses["503"]["headers"]


def test_the_200_example_is_the_served_models_answer_to_the_example_digit(client: TestClient) -> None:
    example = client.get("/openapi.json").json()["paths"]["/denoise"]["post"]["responses"]["200"]["content"][
        "application/json"
    ]["example"]
    with open("app/static/demo/example.png", "rb") as upload:
        answer = client.post(
            "/denoise", headers={"Accept": "application/json"}, files={"file": ("example.png", upload, "image/png")}
        ).json()
    assert example["model_version"] == answer["model_version"]
    assert example["image_png_base64"] == answer["image_png_base64"]
    assert example["reconstruction_error"] == pytest.approx(answer["reconstruction_error"])


def schema_of_batch_upload(document: dict[str, Any]) -> dict[str, Any]:
    """The ``files`` property of POST /denoise/batch's multipart body, its $ref followed."""
    body = document["paths"]["/denoise/batch"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    name = body["$ref"].rsplit("/", 1)[-1]
    files: dict[str, Any] = document["components"]["schemas"][name]["properties"]["files"]
    return files
