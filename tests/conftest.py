from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import DEFAULT_MODEL_DIR, Settings
from tests.images import mnist_digits


@pytest.fixture(scope="session")
def digits() -> npt.NDArray[np.uint8]:
    return mnist_digits()


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    """The app with the committed model, started through its lifespan, spoken to over HTTP."""
    with TestClient(create_app(Settings(model_dir=DEFAULT_MODEL_DIR))) as test_client:
        yield test_client
