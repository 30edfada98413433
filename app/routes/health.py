"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import ReadyServiceDep
from app.openapi import NOT_READY
from app.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The model is loaded and warmed",
    responses=NOT_READY,
)
async def readyz(service: ReadyServiceDep) -> Readiness:
    return Readiness(model_version=service.model.version)
