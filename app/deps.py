"""Dependencies of the routes, as ``Annotated`` aliases.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a hand-off that
costs more than these functions' work, several times per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.auth import UNAUTHORIZED, key_accepted
from app.errors import ProblemError
from app.service import ReadyService, Service


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _ready(service: Service) -> ReadyService:
    ready = service.ready()
    if ready is None:
        raise ProblemError(503, "not_ready", "the model is not loaded or the service is stopping", {"Retry-After": "5"})
    return ready


async def get_ready_service(service: Annotated[Service, Depends(get_service)]) -> ReadyService:
    return _ready(service)


async def get_authorized_service(request: Request) -> ReadyService:
    """The ready service, for a request that carries the API key when API_KEY is set.

    One dependency reading the headers itself: each dependency and ``Header`` parameter costs the
    dependency solver more than these checks, on every request (docs/performance.md). The key is
    checked first, so a client without it learns nothing of the service's state.
    """
    service: Service = request.app.state.service
    key = service.settings.api_key
    if key is not None and not key_accepted(
        key, request.headers.get("x-api-key"), request.headers.get("authorization")
    ):
        raise ProblemError(401, "unauthorized", UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
    return _ready(service)


ServiceDep = Annotated[Service, Depends(get_service)]
ReadyServiceDep = Annotated[ReadyService, Depends(get_ready_service)]
AuthorizedServiceDep = Annotated[ReadyService, Depends(get_authorized_service)]
