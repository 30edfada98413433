"""The API key: one check, made by the limits before a denoise body is read and by the routes."""

from __future__ import annotations

import hmac

UNAUTHORIZED = "this route needs the API key, as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"


def key_accepted(key: str, x_api_key: str | None, authorization: str | None) -> bool:
    """Whether the request's ``X-API-Key`` or ``Authorization: Bearer`` header carries ``key``."""
    offered = x_api_key
    if offered is None and authorization and authorization[:7].lower() == "bearer ":
        offered = authorization[7:].strip()
    # compare_digest: the time taken must not reveal how much of the key matched.
    return offered is not None and hmac.compare_digest(offered.encode(), key.encode())
