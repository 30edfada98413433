"""A client generated from the running service's /openapi.json, as another team would make one.

openapi-python-client (the dev extra) writes the package; the test imports it and calls every
route over real HTTP. Any exception, or an answer the client cannot parse, fails the test.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tests.conftest import live_server
from tests.images import decode_png, encode, noisy

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "denoising_service_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, Any]]:
    """The generated package, and a client of it bound to a live server."""
    if not GENERATOR.exists():
        pytest.fail(f"{GENERATOR} is missing: it comes with the dev extra (make test installs it)")
    work = tmp_path_factory.mktemp("generated")
    with live_server() as url:
        with urllib.request.urlopen(f"{url}/openapi.json", timeout=10) as response:
            (work / "openapi.json").write_bytes(response.read())
        done = subprocess.run(
            [str(GENERATOR), "generate", "--path", "openapi.json", "--meta", "none"],
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        # Every operation generated, nothing skipped for a schema the generator could not read.
        assert "Unable to parse" not in done.stdout, done.stdout
        sys.path.insert(0, str(work))
        try:
            package = importlib.import_module(PACKAGE)
            with package.Client(base_url=url, raise_on_unexpected_status=True) as client:
                yield package, client
        finally:
            sys.path.remove(str(work))
            for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
                del sys.modules[name]


def _api(package: ModuleType, module: str) -> Any:
    return importlib.import_module(f"{package.__name__}.api.{module}")


@pytest.fixture(scope="module")
def upload(digits: npt.NDArray[np.uint8]) -> bytes:
    return encode(Image.fromarray(noisy(digits[0])), "PNG")


def test_health_model_and_metrics(generated: tuple[ModuleType, Any]) -> None:
    package, client = generated
    assert _api(package, "health.healthz_healthz_get").sync_detailed(client=client).status_code == 200
    assert _api(package, "health.readyz_readyz_get").sync_detailed(client=client).status_code == 200
    card = _api(package, "operations.model_info_model_get").sync(client=client)
    assert card.version >= 1
    assert card.engine == "openvino"
    metrics = _api(package, "operations.metrics_metrics_get").sync_detailed(client=client)
    assert b"http_requests_total" in metrics.content


def test_denoise_answers_png_bytes_from_multipart_and_raw_bodies(
    generated: tuple[ModuleType, Any], upload: bytes
) -> None:
    package, client = generated
    types = importlib.import_module(f"{PACKAGE}.types")
    denoise = _api(package, "denoise.denoise_denoise_post")
    models = importlib.import_module(f"{PACKAGE}.models")
    form = models.DenoiseDenoisePostFilesDenoiseUpload(file=types.File(payload=io.BytesIO(upload), file_name="d.png"))
    as_form = denoise.sync(client=client, body=form)
    as_body = denoise.sync(client=client, body=types.File(payload=io.BytesIO(upload)))
    for answer in (as_form, as_body):
        assert isinstance(answer, types.File)
        assert decode_png(answer.payload.read()).size == (28, 28)


def test_denoise_json_is_typed(generated: tuple[ModuleType, Any], upload: bytes) -> None:
    package, client = generated
    types = importlib.import_module(f"{PACKAGE}.types")
    models = importlib.import_module(f"{PACKAGE}.models")
    result = _api(package, "denoise.denoise_json_denoise_json_post").sync(
        client=client, body=types.File(payload=io.BytesIO(upload)), fit=models.Fit.DIGIT
    )
    assert isinstance(result, models.DenoiseResult)
    assert result.input_.width == 28
    assert 0.0 <= result.reconstruction_error < 1.0
    assert decode_png(base64.b64decode(result.image_png_base64)).size == (28, 28)


def test_batch_and_errors_are_typed(generated: tuple[ModuleType, Any], upload: bytes) -> None:
    package, client = generated
    types = importlib.import_module(f"{PACKAGE}.types")
    models = importlib.import_module(f"{PACKAGE}.models")
    batch = _api(package, "denoise.denoise_batch_denoise_batch_post")
    files = [
        types.File(payload=io.BytesIO(data), file_name=name) for name, data in (("a.png", upload), ("b.txt", b"no"))
    ]
    result = batch.sync(client=client, body=models.BodyDenoiseBatchDenoiseBatchPost(files=files))
    assert isinstance(result, models.BatchResult)
    assert [item.ok for item in result.results] == [True, False]
    assert result.results[1].error.code == "unsupported_media_type"
    # A documented error comes back as the typed Problem, not an exception.
    problem = _api(package, "denoise.denoise_denoise_post").sync(
        client=client, body=types.File(payload=io.BytesIO(b"x"))
    )
    assert isinstance(problem, models.Problem)
    assert problem.status == 415
    assert json.loads(json.dumps(problem.to_dict()))["code"] == "unsupported_media_type"
