"""The served model's card, and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.deps import ReadyServiceDep, ServiceDep
from app.openapi import NOT_READY
from app.schemas import ModelInfo

router = APIRouter(tags=["operations"])


@router.get(
    "/model",
    response_model=ModelInfo,
    summary="The served model's card",
    responses=NOT_READY,
)
async def model_info(service: ReadyServiceDep) -> ModelInfo:
    model, card = service.model, service.model.card
    return ModelInfo(
        version=model.version,
        path=str(model.path),
        engine=model.engine.value,
        precision=model.precision.value,
        architecture=card.architecture if card else None,
        parameters=card.parameters if card else None,
        signature=card.signature if card else None,
        anomaly_threshold=model.anomaly_threshold,
        evaluation=card.evaluation.model_dump() if card else None,
        anomaly=card.anomaly.model_dump() if card and card.anomaly else None,
        robustness=card.robustness if card else None,
        training=card.training if card else None,
        libraries=card.libraries if card else None,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
)
async def metrics(service: ServiceDep) -> Response:
    return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
