from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import DEFAULT_MODEL_DIR, Settings
from tests.images import mnist_digits

ClientFactory = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture(scope="session")
def digits() -> npt.NDArray[np.uint8]:
    return mnist_digits()


@contextmanager
def _started(**settings: Any) -> Iterator[TestClient]:
    """The app with the committed model, started through its lifespan, spoken to over HTTP."""
    settings.setdefault("model_dir", DEFAULT_MODEL_DIR)
    with TestClient(create_app(Settings(**settings))) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    with _started() as test_client:
        yield test_client


@pytest.fixture
def make_client() -> ClientFactory:
    """A client for an app with other settings, e.g. ``with make_client(api_key="k") as c:``."""
    return _started


@contextmanager
def live_server(**settings: Any) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, for clients that need real HTTP (a browser)."""
    settings.setdefault("model_dir", DEFAULT_MODEL_DIR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(Settings(**settings)), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
