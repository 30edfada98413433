"""Content negotiation by the Accept header's q-values (RFC 9110, section 12.5.1)."""

from __future__ import annotations


def quality(accept: str, media_type: str) -> float:
    """The q-value ``accept`` gives ``media_type``: its own entry, else ``type/*``, else ``*/*``, else 0."""
    given: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:  # a malformed q-value counts as not acceptable
                    q = 0.0
        given[media.lower()] = max(q, given.get(media.lower(), 0.0))
    kind = media_type.split("/")[0]
    for key in (media_type, f"{kind}/*", "*/*"):
        if key in given:
            return given[key]
    return 0.0


def prefers(accept: str | None, candidate: str, over: str) -> bool:
    """Whether ``accept`` asks for ``candidate`` rather than the default ``over`` (strictly higher q)."""
    if not accept:
        return False
    return quality(accept, candidate) > quality(accept, over)
