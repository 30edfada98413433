"""Every deployment's memory limit holds what its workers may hold at once, by the service's own
budgets and the committed measurement of a loaded worker (docs/benchmarks.json, make bench).

A limit below that bound leaves the kernel to kill a worker when a burst of the largest legal
uploads fills the budgets at once: a process dying of its inputs, which the budgets exist to prevent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "ki": 2**10, "mi": 2**20, "gi": 2**30}


def mib(quantity: str) -> float:
    """A compose (``512m``, ``1.5g``) or Kubernetes (``768Mi``) memory quantity, in MiB."""
    match = re.fullmatch(r"([\d.]+)\s*([kmg]i?)?b?", quantity.strip().lower())
    assert match, f"unreadable memory quantity {quantity!r}"
    return float(match.group(1)) * _UNITS[match.group(2) or ""] / 2**20


def measured() -> dict[str, float]:
    """A loaded worker after make bench's load, and what the rest of a multi-worker process tree holds."""
    service = json.loads((ROOT / "docs" / "benchmarks.json").read_text())["process"]["service"]
    return {
        "worker": service["worker_rss_after_mb"],
        # make's shell and uvicorn's supervisor: the tree's idle total less its two idle workers.
        "supervisor": service["rss_idle_mb"] - 2 * service["worker_rss_idle_mb"],
    }


def compose_service(path: str) -> tuple[dict[str, str], str]:
    service = yaml.safe_load((ROOT / path).read_text())["services"]["denoiser"]
    return service["environment"], service["deploy"]["resources"]["limits"]["memory"]


def kubernetes_container() -> tuple[dict[str, str], str]:
    container = yaml.safe_load((ROOT / "deploy/k8s/base/deployment.yaml").read_text())["spec"]["template"]["spec"][
        "containers"
    ][0]
    return {item["name"]: item["value"] for item in container["env"]}, container["resources"]["limits"]["memory"]


DEPLOYMENTS: dict[str, Any] = {
    "docker-compose.yml": lambda: compose_service("docker-compose.yml"),
    "compose.scale.yml": lambda: compose_service("compose.scale.yml"),
    "deploy/k8s/base/deployment.yaml": kubernetes_container,
}


@pytest.mark.parametrize("where", DEPLOYMENTS)
def test_the_memory_limit_holds_every_worker_with_its_budgets_full(where: str) -> None:
    environment, limit = DEPLOYMENTS[where]()
    settings = Settings(**{k.lower(): v for k, v in environment.items() if k.lower() in Settings.model_fields})
    workers = int(environment["WEB_CONCURRENCY"])
    loaded = measured()
    # A body is held about twice while the image is taken out of a multipart body (docs/operations.md).
    per_worker = loaded["worker"] + 2 * settings.max_body_memory_mib + settings.decode_memory_mib
    bound = workers * per_worker + (loaded["supervisor"] if workers > 1 else 0)
    assert mib(limit) >= bound, (
        f"{where}: a memory limit of {limit} ({mib(limit):.0f} MiB) is below what {workers} worker(s) may hold "
        f"at once, {bound:.0f} MiB"
    )


def test_quantities_are_read_in_mib() -> None:
    assert mib("1g") == 1024
    assert mib("768Mi") == 768
    assert mib("1536m") == 1536
