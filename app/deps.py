"""Dependencies of the routes, as ``Annotated`` aliases.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a hand-off that
costs more than these functions' work, several times per request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

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
    if key is not None:
        headers = request.headers
        offered = headers.get("x-api-key")
        authorization = headers.get("authorization")
        if offered is None and authorization and authorization[:7].lower() == "bearer ":
            offered = authorization[7:].strip()
        # compare_digest: the time taken must not reveal how much of the key matched.
        if offered is None or not hmac.compare_digest(offered.encode(), key.encode()):
            raise ProblemError(
                401,
                "unauthorized",
                "this route needs the API key, as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                {"WWW-Authenticate": "Bearer"},
            )
    return _ready(service)


ServiceDep = Annotated[Service, Depends(get_service)]
ReadyServiceDep = Annotated[ReadyService, Depends(get_ready_service)]
AuthorizedServiceDep = Annotated[ReadyService, Depends(get_authorized_service)]
