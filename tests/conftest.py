from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
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
