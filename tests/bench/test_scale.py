"""bench/scale.py's Deployment variant for podman kube play: what it leaves out, and that it stays valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from bench.scale import kube_variant


def test_the_kube_play_variant_has_no_host_ports_and_stays_a_valid_deployment(tmp_path: Path) -> None:
    deployment = yaml.safe_load(kube_variant(tmp_path).read_text())
    assert deployment["kind"] == "Deployment"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "ports" not in container  # podman would publish a containerPort on the host
    assert "livenessProbe" not in container  # podman would make it a curl healthcheck
    assert container["readinessProbe"]["httpGet"]["port"] == 8000
    assert container["securityContext"]["readOnlyRootFilesystem"] is True  # the rest is as rendered
    validate = Path(sys.executable).parent / "kubernetes-validate"
    checked = subprocess.run(
        [str(validate), "--strict", str(tmp_path / "deployment.yaml")], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "WARN" not in checked.stdout + checked.stderr
