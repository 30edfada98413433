"""bench/scale.py's pure parts: the Deployment variant podman kube plays, and its CPU accounting."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bench.scale import kube_variant, machine_cpu_s, mean_cpu


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


def test_the_machine_cpu_counter_moves_with_work_and_never_exceeds_the_clock() -> None:
    busy_before, all_before = machine_cpu_s()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # 0.3 s of this process's CPU
        pass
    busy_after, all_after = machine_cpu_s()
    assert busy_after - busy_before >= 0.25
    # /proc/stat counts in ticks of 10 ms, read twice: one tick either way is rounding, not work.
    assert 0 < busy_after - busy_before <= all_after - all_before + 0.011


def test_cpu_figures_of_several_runs_average_by_role() -> None:
    runs = [
        {"cpu_ms_per_request": {"replicas": 2.0, "haproxy": 0.1, "wrk": 0.1, "other": 0.0}, "machine_busy": 0.9},
        {"cpu_ms_per_request": {"replicas": 3.0, "haproxy": 0.3, "wrk": 0.1, "other": 0.2}, "machine_busy": 1.0},
    ]
    mean = mean_cpu(runs)
    assert mean == pytest.approx({"replicas": 2.5, "haproxy": 0.2, "wrk": 0.1, "other": 0.1, "all": 2.9, "busy": 0.95})
