"""Dependencies of the routes, as ``Annotated`` aliases.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a hand-off that
costs more than these functions' work, several times per request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from app.errors import ProblemError
from app.service import ReadyService, Service
from app.settings import Settings


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def get_ready_service(service: Annotated[Service, Depends(get_service)]) -> ReadyService:
    ready = service.ready()
    if ready is None:
        raise ProblemError(503, "not_ready", "the model is not loaded or the service is stopping", {"Retry-After": "5"})
    return ready


async def get_settings(service: Annotated[Service, Depends(get_service)]) -> Settings:
    return service.settings


async def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """When API_KEY is set, accept it as ``Authorization: Bearer`` or ``X-API-Key``."""
    if settings.api_key is None:
        return
    offered = x_api_key
    if offered is None and authorization and authorization[:7].lower() == "bearer ":
        offered = authorization[7:].strip()
    # compare_digest: the time taken must not reveal how much of the key matched.
    if offered is None or not hmac.compare_digest(offered.encode(), settings.api_key.encode()):
        raise ProblemError(
            401,
            "unauthorized",
            "this route needs the API key, as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            {"WWW-Authenticate": "Bearer"},
        )


ServiceDep = Annotated[Service, Depends(get_service)]
ReadyServiceDep = Annotated[ReadyService, Depends(get_ready_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
