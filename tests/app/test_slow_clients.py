"""Clients that stall mid-upload, and refusals that must reach the client: a real uvicorn process."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tests.conftest import free_port, uvicorn_process, wait_ready
from tests.images import encode

LIMIT = 2


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    port = free_port()
    env = {"MAX_CONCURRENT_REQUESTS": str(LIMIT), "BODY_TIMEOUT_S": "3"}
    process = uvicorn_process(port, output=subprocess.DEVNULL, env=env)
    try:
        wait_ready(process, port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=60)


def _stalled_upload(port: int) -> socket.socket:
    """Headers and the start of a multipart body promising 100 kB, then nothing."""
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(
        b"POST /denoise HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b'Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    )
    return connection


def test_as_many_stalled_uploads_as_the_limit_lock_no_one_out(port: int, digits: npt.NDArray[np.uint8]) -> None:
    stalled = [_stalled_upload(port) for _ in range(LIMIT)]
    try:
        time.sleep(0.3)
        upload = encode(Image.fromarray(digits[0]), "PNG")
        statuses = [
            httpx.post(f"http://127.0.0.1:{port}/denoise", files={"file": ("d.png", upload)}, timeout=30).status_code
            for _ in range(5)
        ]
        assert statuses == [200] * 5
        # Past BODY_TIMEOUT_S each stalled upload is answered 408 and closed.
        for connection in stalled:
            connection.settimeout(10)
            answer = b""
            while chunk := connection.recv(65536):  # until the server closes: headers and body
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
            assert b"request_timeout" in answer
    finally:
        for connection in stalled:
            connection.close()


def test_every_refused_upload_receives_its_503(port: int) -> None:
    # Large bodies (about 1 MB) past the limit: each refusal must reach the client as an answer,
    # not be lost to a connection reset because the server closed with the body unread.
    from concurrent.futures import ThreadPoolExecutor

    noise = np.random.default_rng(0).integers(0, 256, (1000, 1000), dtype=np.uint8)
    upload = encode(Image.fromarray(noise), "PNG")

    def post(_: int) -> int:
        url = f"http://127.0.0.1:{port}/denoise?fit=digit&size=original"
        return httpx.post(url, files={"file": ("n.png", upload)}, timeout=60).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(post, range(12)))  # an exception (ReadError) would fail the test
    assert set(statuses) <= {200, 422, 503}, statuses  # 422: no digit on a page of noise
    assert 503 in statuses, statuses
