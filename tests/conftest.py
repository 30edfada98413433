"""How tests start the app: the one place for it.

In process, through its lifespan, with the committed model: ``started`` (sync, Starlette's
TestClient; the ``client`` and ``make_client`` fixtures) and ``started_async`` (an httpx client
that can send requests concurrently). As a real uvicorn process, for what only a process shows
(signals, exit codes, several workers, a browser): ``uvicorn_process`` and ``live_server``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import DEFAULT_MODEL_DIR, Settings
from tests.images import mnist_digits

ROOT = Path(__file__).resolve().parents[1]
ClientFactory = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture(scope="session")
def digits() -> npt.NDArray[np.uint8]:
    return mnist_digits()


@contextmanager
def started(**settings: Any) -> Iterator[TestClient]:
    """The app with the committed model, started through its lifespan, spoken to over HTTP."""
    settings.setdefault("model_dir", DEFAULT_MODEL_DIR)
    with TestClient(create_app(Settings(**settings))) as test_client:
        yield test_client


@asynccontextmanager
async def started_async(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """As ``started``, with a client that can send requests concurrently."""
    settings.setdefault("model_dir", DEFAULT_MODEL_DIR)
    app = create_app(Settings(**settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    with started() as test_client:
        yield test_client


@pytest.fixture
def make_client() -> ClientFactory:
    """A client for an app with other settings, e.g. ``with make_client(api_key="k") as c:``."""
    return started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def uvicorn_process(
    port: int,
    model_dir: Path = DEFAULT_MODEL_DIR,
    workers: int = 1,
    output: int | None = subprocess.PIPE,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[str]:
    """The app as ``make run`` serves it, in a uvicorn process of its own; settings in ``env``."""
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app", "--port", str(port)]
    command += ["--http", "app.protocol:HttpProtocol", "--timeout-graceful-shutdown", "20", "--workers", str(workers)]
    environment = os.environ | {"MODEL_DIR": str(model_dir), "TF_CPP_MIN_LOG_LEVEL": "3"} | dict(env or {})
    return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT, text=True)


def wait_ready(process: subprocess.Popen[str], port: int, answers: int = 1) -> None:
    """Until ``/readyz`` has answered 200 ``answers`` times (several workers: each answers in turn)."""
    deadline = time.monotonic() + 120
    ready = 0
    while ready < answers:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                ready += response.status == 200
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError("the server is not ready after 120 s") from None
            time.sleep(0.1)


@contextmanager
def live_server(**env: str) -> Iterator[str]:
    """The app served by a uvicorn process on a free loopback port, for clients that need real HTTP."""
    port = free_port()
    process = uvicorn_process(port, output=subprocess.DEVNULL, env=env)
    try:
        wait_ready(process, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=60)
