"""Schemathesis: generated requests from the app's own OpenAPI schema, answered in process."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from app.main import create_app
from app.settings import DEFAULT_MODEL_DIR, Settings

# Schemathesis starts the app's lifespan itself (the model loads once) and keeps it for the run.
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings(model_dir=DEFAULT_MODEL_DIR)))


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any]) -> None:
    # No 5xx, status codes, content types, headers and bodies as documented. Excluded: "a request
    # the schema allows is accepted", since the schema cannot say that `file` must be a decodable
    # image (random bytes rightly get 415 or 422); and for the batch, "a request the schema forbids
    # is rejected": its contract is a 200 whose results carry each bad file's own error.
    excluded = [positive_data_acceptance]
    if case.path == "/denoise/batch":
        excluded.append(negative_data_rejection)
    case.call_and_validate(excluded_checks=excluded)
