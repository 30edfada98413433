"""The real server process: startup failures exit non-zero with one line; SIGTERM drains requests."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import free_port, uvicorn_process, wait_ready
from tests.images import decode_png, encode, mnist_digits


def startup_failure(model_dir: Path) -> tuple[int, str]:
    process = uvicorn_process(free_port(), model_dir)
    output, _ = process.communicate(timeout=120)
    return process.returncode, output


def wrong_signature_model(path: Path) -> None:
    import tensorflow as tf

    class Classifier(tf.Module):  # type: ignore[misc]
        @tf.function(input_signature=[tf.TensorSpec([None, 10], tf.float32)])  # type: ignore[untyped-decorator]
        def serve(self, x: tf.Tensor) -> tf.Tensor:
            return x * 2.0

    tf.saved_model.save(Classifier(), str(path))


@pytest.mark.parametrize("problem", ["missing", "no-version", "corrupt", "wrong-signature"])
def test_bad_model_directory_exits_non_zero_with_one_line(tmp_path: Path, problem: str) -> None:
    model_dir = tmp_path / "models"
    if problem != "missing":
        model_dir.mkdir()
    if problem == "corrupt":
        (model_dir / "1").mkdir()
        (model_dir / "1" / "saved_model.pb").write_bytes(b"\x00garbage" * 100)
    if problem == "wrong-signature":
        wrong_signature_model(model_dir / "1")
    expected = {
        "missing": f"model directory '{model_dir}' does not exist",
        "no-version": f"model directory '{model_dir}' holds no integer-numbered version",
        "corrupt": f"cannot load a SavedModel from '{model_dir / '1'}'",
        "wrong-signature": f"SavedModel '{model_dir / '1'}' does not accept float32 [N, 28, 28, 1]",
    }[problem]
    code, output = startup_failure(model_dir)
    assert code != 0
    assert expected in output
    assert "Traceback" not in output
    assert sum(expected in line for line in output.splitlines()) == 2  # our JSON log line and uvicorn's


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"INFERENCE_ENGINE": "onnx"}, "cannot start: INFERENCE_ENGINE='onnx': Input should be 'openvino'"),
        ({"INFERENCE_PRECISION": "fp8"}, "cannot start: INFERENCE_PRECISION='fp8'"),
        (
            {"INFERENCE_ENGINE": "tensorflow", "INFERENCE_PRECISION": "bf16"},
            "INFERENCE_PRECISION=bf16 needs INFERENCE_ENGINE=openvino",
        ),
    ],
)
def test_a_setting_the_service_cannot_honour_stops_it_with_one_line_naming_it(
    env: dict[str, str], expected: str
) -> None:
    process = uvicorn_process(free_port(), env=env)
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0
    assert expected in output
    assert "Traceback" not in output


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = uvicorn_process(port)
    wait_ready(process, port)
    yield process, port
    if process.poll() is None:
        process.kill()
    process.communicate()


def test_sigterm_lets_the_request_in_flight_finish(server: tuple[subprocess.Popen[str], int]) -> None:
    process, port = server
    image = encode(Image.fromarray(mnist_digits()[0]), "PNG")
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="d.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /denoise HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body[:100])  # the request is in flight: its body has not all arrived
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert process.poll() is None, "the server quit with a request in flight"
        sock.sendall(body[100:])
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 200 OK", response[:300]
    assert b"x-reconstruction-error" in rest.lower()
    png = rest.split(b"\r\n\r\n", 1)[1]
    assert decode_png(png).size == (28, 28)
    # uvicorn drains, runs the lifespan shutdown, then ends by the signal it caught.
    output, _ = process.communicate(timeout=30)
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in output


def test_metrics_add_up_every_worker(tmp_path: Path) -> None:
    port = free_port()
    metrics_dir = str(tmp_path / "metrics")
    process = uvicorn_process(port, workers=2, output=subprocess.DEVNULL, env={"PROMETHEUS_MULTIPROC_DIR": metrics_dir})
    try:
        wait_ready(process, port, answers=6)  # both workers answer once the model is loaded in each
        base = f"http://127.0.0.1:{port}"
        image = encode(Image.fromarray(mnist_digits()[0]), "PNG")
        for _ in range(8):  # on fresh connections, so both workers get some
            with httpx.Client() as client:
                assert client.post(f"{base}/denoise", files={"file": ("d.png", image)}).status_code == 200
        for _ in range(4):  # whichever worker answers the scrape reports all eight
            with httpx.Client() as client:
                text = client.get(f"{base}/metrics").text
            assert "denoise_images_total 8.0" in text
    finally:
        process.terminate()
        process.wait(timeout=30)
