from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.settings import DEFAULT_MODEL_DIR
from tests.conftest import ClientFactory


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_the_highest_committed_version(client: TestClient) -> None:
    versions = [int(p.name) for p in DEFAULT_MODEL_DIR.iterdir() if p.name.isdigit()]
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "model_version": max(versions)}


def test_root_redirects_to_swagger_ui(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code in (302, 307)
    assert response.headers["location"] == "/docs"
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text


def test_the_highest_integer_version_is_served(tmp_path: Path, make_client: ClientFactory) -> None:
    committed = next(p for p in DEFAULT_MODEL_DIR.iterdir() if p.name.isdigit())
    for name in ("2", "10", "9"):  # 10 is highest as a number, not as a string
        shutil.copytree(committed, tmp_path / name)
    (tmp_path / "11-draft").mkdir()  # not an integer: ignored
    with make_client(model_dir=tmp_path) as client:
        assert client.get("/readyz").json()["model_version"] == 10
        assert client.get("/model").json()["path"] == str(tmp_path / "10")


def test_metrics_pass_promtool(client: TestClient) -> None:
    """What Prometheus scrapes is well-formed: promtool check metrics (Debian's prometheus package)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("REQUIRE_SYSTEM_TOOLS"):
            pytest.fail("REQUIRE_SYSTEM_TOOLS is set but promtool is not installed (apt-get install prometheus)")
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus); make test installs it as root")
    client.post("/denoise", files={"file": ("x.png", b"not an image", "image/png")})  # some series
    exposition = client.get("/metrics").content
    checked = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
