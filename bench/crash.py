"""A worker killed under load: how many requests fail, and with what.

    python -m bench.crash            # three runs; writes docs/crash.json and prints it

Runs the service as ``make run`` does (two uvicorn workers), drives it with wrk at 32 clients
for 20 s, and ``kill -9``s one worker 6 s in. uvicorn starts a replacement, which loads
its model while the survivor serves alone. Counted from the service's own metrics: answers 503
(``overloaded``, from the in-flight limit) during the run; from wrk: reads that failed (the
killed worker's own connections, which ``ss`` counts just before the kill).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.run import ROOT, metrics_text, payloads, serve, served_model, wrk
from model.provenance import measured_on

PORT = 8191
CLIENTS = 32
DURATION_S = 20
KILL_AT_S = 6


def shed_and_503(port: int) -> tuple[float, float]:
    """(requests shed by the in-flight limit, 503 answers on /denoise) so far, from /metrics."""
    text = metrics_text(port)
    shed = sum(float(v) for v in re.findall(r"^http_requests_shed_total\S* (\S+)$", text, re.MULTILINE))
    errors = sum(
        float(v)
        for v in re.findall(r'^http_requests_total\{[^}]*route="/denoise"[^}]*status="503"[^}]*\} (\S+)$', text, re.M)
    )
    return shed, errors


def workers(master: int) -> list[int]:
    """uvicorn's worker processes (multiprocessing spawns them; its resource tracker is not one)."""
    out = subprocess.run(["pgrep", "-P", str(master), "-f", "spawn_main"], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def uvicorn_master(group_leader: int) -> int:
    """The uvicorn process under ``make run``'s shell (the one whose children are the workers)."""
    out = subprocess.run(["pgrep", "-f", "-g", str(group_leader), "uvicorn"], capture_output=True, text=True).stdout
    candidates = [int(pid) for pid in out.split()]
    return next(pid for pid in candidates if len(workers(pid)) >= 2)


def connections_of(pid: int) -> int:
    """Established connections to the service that process ``pid`` holds (from ``ss``)."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{PORT} )"], capture_output=True, text=True, check=True
    ).stdout
    return sum(f"pid={pid}," in line for line in out.splitlines())


def one_run(body: Path, log: Path, kill: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """``make run`` under wrk at 32 clients, one worker killed 6 s in (unless not ``kill``): the
    model it served, and what the run measured."""
    command = ["make", "run", f"PORT={PORT}", "WORKERS=2"]
    with serve("make run", command, PORT, "/readyz", log) as server:
        master = uvicorn_master(server.process.pid)
        time.sleep(3)  # both workers ready: readyz answered by one of them
        served = served_model(PORT)
        before = shed_and_503(PORT)
        killed: list[int] = []
        held: list[int] = []

        def kill_one() -> None:
            time.sleep(KILL_AT_S)
            if kill:
                victim = workers(master)[0]
                held.append(connections_of(victim))
                subprocess.run(["kill", "-9", str(victim)], check=True)
                killed.append(victim)

        killer = threading.Thread(target=kill_one)
        killer.start()
        result = wrk(PORT, "/denoise", body, CLIENTS, DURATION_S)
        killer.join()
        after = shed_and_503(PORT)
        replaced = len(workers(master)) == 2 and not set(killed) & set(workers(master))
    return served, {
        "requests": result["requests"],
        "requests_per_s": round(result["requests"] / (result["duration_us"] / 1e6), 1),
        "non2xx": result["non2xx"],
        "answers_503": int(after[0] - before[0] + after[1] - before[1]),
        "shed_by_limit": int(after[0] - before[0]),
        "answers_503_by_route": int(after[1] - before[1]),
        "socket_errors": {k: result[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")},
        "p99_ms": round(result["p99_us"] / 1000, 1),
        "worker_killed": bool(killed),
        "killed_worker_connections": held[0] if held else None,
        "worker_replaced": replaced if killed else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "crash.json")
    parser.add_argument("--runs", type=int, default=3, help="runs, each a fresh make run")
    parser.add_argument("--no-kill", action="store_true", help="the same runs with no worker killed: the baseline")
    args = parser.parse_args(argv)
    body_bytes, _ = payloads(1)["png28"]
    with tempfile.TemporaryDirectory() as scratch:
        body = Path(scratch) / "body"
        body.write_bytes(body_bytes)
        outcomes = [one_run(body, Path(scratch) / f"server-{i}.log", not args.no_kill) for i in range(args.runs)]
    served = outcomes[0][0]  # the same tree and model in every run: one record
    runs = [run for _, run in outcomes]
    report: dict[str, Any] = {
        "context": measured_on("python -m bench.crash " + " ".join(argv if argv is not None else sys.argv[1:]))
        | served,
        "clients": CLIENTS,
        "duration_s": DURATION_S,
        "killed_worker_at_s": None if args.no_kill else KILL_AT_S,
        "answers_503_total": sum(run["answers_503"] for run in runs),
        "read_errors_total": sum(run["socket_errors"]["read_errors"] for run in runs),
        "runs": runs,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
