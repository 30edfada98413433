"""Interleaved A/B of the service at another commit against this tree, same engine, same machine:

    python -m bench.ab 3f00650 --engine identity --rounds 3 --out docs/path-ab.json

Checks the commit out in a temporary git worktree (sharing this tree's .venv), then alternates
rounds: each a fresh ``make run`` of one side (its time to ready recorded), wrk for 2 s to warm,
4 s at 1 client (p50), 8 s at 32 clients (req/s, and the service's CPU time per image: a cost
that a slow spell of the machine moves less than it moves throughput). Alternating spreads the
machine's noise over both sides. ``--payload batch64`` posts batches of 64 to ``/denoise/batch``
instead, with 4 clients for the throughput (as ``make bench`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.run import ROOT, payloads, serve, served_model, wrk
from model.provenance import measured_on


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.splitlines()[0])
    parser.add_argument("commit", help="the other side: a commit, tag or branch")
    parser.add_argument("--engine", default="identity", help="INFERENCE_ENGINE on both sides")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--payload", choices=("png28", "batch64"), default="png28")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        other = Path(scratch) / "other"
        subprocess.run(["git", "worktree", "add", "--detach", str(other), args.commit], cwd=ROOT, check=True)
        try:
            (other / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
            body = Path(scratch) / args.payload
            content, images = payloads(64)[args.payload]
            body.write_bytes(content)
            route, clients = ("/denoise/batch", 4) if args.payload == "batch64" else ("/denoise", 32)
            measured = (
                "ready_s", f"c{clients}_rps", f"c{clients}_images_per_s", f"c{clients}_cpu_ms_per_image", "c1_p50_ms"
            )  # fmt: skip
            sides = {args.commit: other, "this tree": ROOT}
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
            os.environ["INFERENCE_ENGINE"] = args.engine
            for _ in range(args.rounds):
                for name, root in sides.items():
                    # -o: never reinstall into the shared .venv from the other checkout (its fresh
                    # pyproject.toml would point the editable install at the temporary worktree).
                    command = ["make", "-s", "-C", str(root), "-o", ".venv/.runtime", "run", f"PORT={args.port}"]
                    with serve(name, command, args.port, "/readyz", Path(scratch) / "server.log") as server:
                        wrk(server.port, route, body, clients, 2)
                        one = wrk(server.port, route, body, 1, 4)
                        cpu_before = server.cpu_s()
                        many = wrk(server.port, route, body, clients, 8)
                        cpu_s = server.cpu_s() - cpu_before
                        rps = many["requests"] / (many["duration_us"] / 1e6)
                        row = {
                            "model_version": served_model(server.port)["model_version"],
                            "ready_s": server.ready_s,
                            "c1_p50_ms": one["p50_us"] / 1000,
                            f"c{clients}_rps": round(rps, 1),
                            f"c{clients}_images_per_s": round(rps * images, 1),
                            f"c{clients}_cpu_ms_per_image": round(1000 * cpu_s / (many["requests"] * images), 4),
                            "non2xx": one["non2xx"] + many["non2xx"],
                        }
                    rounds[name].append(row)
                    print(name, json.dumps(row), file=sys.stderr, flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)
    result = {
        "context": measured_on(" ".join(["python -m bench.ab", *(sys.argv[1:] if argv is None else argv)]))
        | {
            "engine": args.engine,
            "payload": args.payload,
        },
        "sides": {name: _summary(rows, measured) for name, rows in rounds.items()},
    }
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


def _summary(rows: list[dict[str, Any]], measured: tuple[str, ...]) -> dict[str, Any]:
    """One side's rounds: each measured series and its median."""
    summary: dict[str, Any] = {"model_version": rows[0]["model_version"]}
    for key in measured:
        summary[key] = [r[key] for r in rows]
        summary[f"{key}_median"] = statistics.median(r[key] for r in rows)
    summary["non2xx"] = sum(r["non2xx"] for r in rows)
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
