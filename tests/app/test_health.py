from __future__ import annotations

from fastapi.testclient import TestClient

from app.settings import DEFAULT_MODEL_DIR


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
