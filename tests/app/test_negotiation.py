"""app/negotiation.py: Accept header q-values."""

from __future__ import annotations

import pytest

from app.negotiation import prefers, quality

JSON, PNG = "application/json", "image/png"


@pytest.mark.parametrize(
    ("accept", "wants_json"),
    [
        (None, False),
        ("", False),
        ("application/json", True),
        ("image/png", False),
        ("*/*", False),
        ("application/json, image/png", False),  # a tie keeps the default
        ("application/json;q=0.9, image/png;q=0.8", True),
        ("image/*;q=0.5, application/json", True),
        ("image/png, application/json;q=0.1", False),
        ("application/json;q=abc", False),  # malformed q: not acceptable
        ("APPLICATION/JSON", True),
        ("text/html, */*;q=0.8", False),
    ],
)
def test_json_is_chosen_only_when_preferred(accept: str | None, wants_json: bool) -> None:
    assert prefers(accept, JSON, over=PNG) is wants_json


def test_quality_falls_back_to_wildcards() -> None:
    assert quality("image/*;q=0.4", PNG) == 0.4
    assert quality("*/*;q=0.2", JSON) == 0.2
    assert quality("text/plain", JSON) == 0.0
