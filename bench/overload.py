"""Overload and hostile clients against the built image, at each compose file's memory limit.

    ../shared/tools/container-check --images-only   # once: podman and the base images
    python -m bench.overload                         # about 15 minutes; docs/overload.{json,md}

For docker-compose.yml and compose.scale.yml in turn, runs the image with the service's settings,
worker count, CPU and memory limit as that file declares them (podman, one container), then sends:
bursts of 32 and 64 concurrent 40 MP PNGs (grayscale and RGBA, ``fit=stretch``; grayscale with
``fit=digit&size=original``), twice the in-flight limit of 4 MP uploads at once, and as many
stalled uploads as the in-flight limit while ten ordinary uploads go on. Each round reports the
answers by status, connection errors, the container's peak memory against its limit (the memory
cgroup's own high-water mark), OOM kills and restarts, and resident memory before and 30 s after.
Developers run it by hand; it takes minutes, so CI does not.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml
from PIL import Image

from bench.run import ROOT, served_model
from bench.scale import IMAGE, run
from model.provenance import measured_on

NAME = "denoise-overload"
PORT = 8300
SETTLE_S = 30  # how long after a burst resident memory is read again


# --- uploads ----------------------------------------------------------------------------------


def _page(side: int, noise: float = 0.0) -> np.ndarray:
    """A white page with a dark digit-like bar, optionally with paper noise."""
    page = np.full((side, side), 235, np.uint8)
    page[side // 3 : 2 * side // 3, side // 2 - side // 40 : side // 2 + side // 40] = 20
    if noise:
        rng = np.random.default_rng(0)
        page = np.clip(page + rng.normal(0, noise, page.shape), 0, 255).astype(np.uint8)
    return page


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def uploads() -> dict[str, bytes]:
    gray = Image.fromarray(_page(6300))  # 39.7 MP, under MAX_IMAGE_PIXELS (40 M)
    alpha = Image.new("L", gray.size, 255)
    return {
        "40 MP gray PNG": _png(gray),
        "40 MP RGBA PNG": _png(Image.merge("RGBA", (gray, gray, gray, alpha))),
        "4 MP noisy gray PNG": _png(Image.fromarray(_page(2000, noise=12))),
        # Noise does not compress: 9.5 MiB, just under MAX_UPLOAD_BYTES (10 MiB), the largest legal body.
        "9.5 MiB noise PNG": _png(Image.fromarray(np.random.default_rng(1).integers(0, 256, (3150, 3150), np.uint8))),
        "28x28 PNG": _png(Image.fromarray(_page(28))),
        "6 KB PNG (2000x2000, blank)": _png(Image.new("L", (2000, 2000))),
    }


# --- the container ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Declared:
    """What a compose file declares for the service: its settings and its limits."""

    compose: str
    environment: dict[str, str]
    memory: str
    cpus: str

    @property
    def memory_bytes(self) -> int:
        units = {"k": 2**10, "m": 2**20, "g": 2**30}
        value = self.memory.lower().rstrip("b")
        return int(float(value[:-1]) * units[value[-1]]) if value[-1] in units else int(value)

    @property
    def workers(self) -> int:
        return int(self.environment.get("WEB_CONCURRENCY", "2"))

    @property
    def in_flight_limit(self) -> int:
        return int(self.environment.get("MAX_CONCURRENT_REQUESTS", "32"))


def declared(compose: Path) -> Declared:
    service = yaml.safe_load(compose.read_text())["services"]["denoiser"]
    limits = service["deploy"]["resources"]["limits"]
    environment = {key: str(value) for key, value in (service.get("environment") or {}).items()}
    return Declared(compose.name, environment, str(limits["memory"]), str(limits.get("cpus", "2")))


class Container:
    """The image run as the compose file runs it, with its memory cgroup read directly (v1 or v2)."""

    def __init__(self, spec: Declared) -> None:
        run("podman", "rm", "-f", NAME, check=False)
        env = [arg for key, value in spec.environment.items() for arg in ("-e", f"{key}={value}")]
        run(
            "podman", "run", "-d", "--name", NAME, "--memory", spec.memory, "--memory-swap", spec.memory,
            "--cpus", spec.cpus, "--read-only", "--tmpfs", "/tmp",  # noqa: S108 - the container's own tmpfs, as compose mounts it
            "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--restart", "unless-stopped",
            "-p", f"127.0.0.1:{PORT}:8000", *env, IMAGE,
        )  # fmt: skip
        self.find_cgroup()

    def find_cgroup(self) -> None:
        """The container's memory cgroup (a restarted container gets a new one)."""
        group = run("podman", "inspect", "-f", "{{.State.CgroupPath}}", NAME).strip().lstrip("/")
        v2 = Path("/sys/fs/cgroup") / group
        self.v2 = (v2 / "memory.current").exists()
        self.group = v2 if self.v2 else Path("/sys/fs/cgroup/memory") / group

    def _read(self, name: str) -> str:
        return (self.group / name).read_text()

    def reset_peak(self) -> None:
        if not self.v2:
            (self.group / "memory.max_usage_in_bytes").write_text("0")
        # cgroup v2 keeps memory.peak for the cgroup's life (writable only on recent kernels):
        # the rounds then report the highest peak so far.

    def peak(self) -> int:
        return int(self._read("memory.peak" if self.v2 else "memory.max_usage_in_bytes"))

    def resident(self) -> int:
        """Anonymous memory of the container's processes (what the workers hold; no file cache)."""
        stat = dict(line.split() for line in self._read("memory.stat").splitlines())
        return int(stat["anon"] if self.v2 else stat["total_rss"])

    def oom_kills(self) -> int:
        text = self._read("memory.events" if self.v2 else "memory.oom_control")
        return int(dict(line.split() for line in text.splitlines()).get("oom_kill", 0))

    def restarts(self) -> int:
        return int(run("podman", "inspect", "-f", "{{.RestartCount}}", NAME).strip() or 0)

    def running(self) -> bool:
        return run("podman", "inspect", "-f", "{{.State.Running}}", NAME).strip() == "true"

    def remove(self) -> None:
        run("podman", "rm", "-f", NAME, check=False)


def wait_ready(timeout: float = 180) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/readyz", timeout=2) as response:
                if response.status == 200:
                    return round(time.perf_counter() - started, 1)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"not ready after {timeout} s: {run('podman', 'logs', '--tail', '30', NAME, check=False)}")


# --- the rounds ---------------------------------------------------------------------------------


async def _post(client: httpx.AsyncClient, data: bytes, query: str) -> str:
    """The answer's status (with 503s' code, and whether it carries Retry-After) or the error's type
    (a connection reset or a server that closed before answering: the answer was lost)."""
    try:
        response = await client.post(f"/denoise{query}", files={"file": ("upload.png", data, "image/png")})
    except httpx.HTTPError as exc:
        return type(exc).__name__
    if response.status_code == 503:
        code = response.json().get("code", "?")
        return f"503 {code}" + ("" if response.headers.get("retry-after") else " (no Retry-After)")
    return str(response.status_code)


async def curl_burst(data: bytes, clients: int) -> Counter[str]:
    """As ``burst``, each upload by its own ``curl -F`` process: its HTTP status, or curl's exit code."""
    with tempfile.NamedTemporaryFile(suffix=".png") as upload:
        upload.write(data)
        upload.flush()

        async def one() -> str:
            process = await asyncio.create_subprocess_exec(
                "curl", "-sS", "-o", "/dev/null", "-D", "-", "-w", "%{http_code}", "--max-time", "180",
                "-F", f"file=@{upload.name};type=image/png", f"http://127.0.0.1:{PORT}/denoise",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            out, _ = await process.communicate()
            if process.returncode:
                return f"curl exit {process.returncode}"
            text = out.decode("latin-1")
            status = text.strip().splitlines()[-1]
            if status == "503":
                return "503" + ("" if "retry-after:" in text.lower() else " (no Retry-After)")
            return status

        return Counter(await asyncio.gather(*(one() for _ in range(clients))))


async def burst(data: bytes, clients: int, query: str = "") -> Counter[str]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", limits=limits, timeout=180) as client:
        return Counter(await asyncio.gather(*(_post(client, data, query) for _ in range(clients))))


async def stalled_while_ordinary(count: int, ordinary: bytes, tries: int = 10) -> Counter[str]:
    """``count`` uploads that send their headers and a first byte, then one byte a second, while
    ``tries`` ordinary uploads are sent one after the other; the ordinary answers are returned."""
    boundary = "stall"
    head = (
        f"POST /denoise HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: 1000000\r\n\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="slow.png"\r\nContent-Type: image/png\r\n\r\n'
    ).encode()
    streams = [await asyncio.open_connection("127.0.0.1", PORT) for _ in range(count)]
    stop = asyncio.Event()

    async def trickle(writer: asyncio.StreamWriter) -> None:
        writer.write(head + b"\x89")
        while not stop.is_set():
            await asyncio.sleep(1)
            writer.write(b"P")
            try:
                await writer.drain()
            except ConnectionError:
                return

    trickling = [asyncio.ensure_future(trickle(writer)) for _, writer in streams]
    await asyncio.sleep(2)  # every stalled upload is in before the ordinary ones start
    answers: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=30) as client:
        for _ in range(tries):
            answers[await _post(client, ordinary, "")] += 1
    stop.set()
    await asyncio.gather(*trickling)
    for _, writer in streams:
        writer.close()
    return answers


def rounds(spec: Declared) -> list[tuple[str, int, str, str]]:
    """(label, clients, upload, query) for the bursts."""
    twice = 2 * spec.in_flight_limit
    return [
        ("32 x 40 MP gray PNG, fit=stretch", 32, "40 MP gray PNG", ""),
        ("64 x 40 MP gray PNG, fit=stretch", 64, "40 MP gray PNG", ""),
        ("32 x 40 MP RGBA PNG, fit=stretch", 32, "40 MP RGBA PNG", ""),
        ("64 x 40 MP RGBA PNG, fit=stretch", 64, "40 MP RGBA PNG", ""),
        ("32 x 40 MP gray PNG, fit=digit&size=original", 32, "40 MP gray PNG", "?fit=digit&size=original"),
        ("64 x 40 MP gray PNG, fit=digit&size=original", 64, "40 MP gray PNG", "?fit=digit&size=original"),
        (f"{twice} x 4 MP noisy PNG (2x the in-flight limit)", twice, "4 MP noisy gray PNG", ""),
        (f"{twice} x 9.5 MiB noise PNG (the largest bodies)", twice, "9.5 MiB noise PNG", ""),
    ]


def check(spec: Declared, data: dict[str, bytes], only: str | None = None) -> dict[str, Any]:
    container = Container(spec)
    try:
        ready_s = wait_ready()
        served = served_model(PORT)
        time.sleep(5)  # past the first answers' warm-up
        idle = container.resident()
        results = []
        plan: list[tuple[str, Any]] = [
            (label, lambda c=clients, u=upload, q=query: burst(data[u], c, q))
            for label, clients, upload, query in rounds(spec)
        ]
        twice = 2 * spec.in_flight_limit
        for upload in ("6 KB PNG (2000x2000, blank)", "9.5 MiB noise PNG"):
            plan.append((f"{twice} x {upload}, with curl", lambda u=upload: curl_burst(data[u], twice)))
        plan.append(
            (
                f"{spec.in_flight_limit} stalled uploads, 10 ordinary uploads meanwhile",
                lambda: stalled_while_ordinary(spec.in_flight_limit, data["28x28 PNG"]),
            )
        )
        plan = [(label, work) for label, work in plan if only is None or only in label]
        for label, work in plan:
            before = {"resident": container.resident(), "oom": container.oom_kills(), "restarts": container.restarts()}
            container.reset_peak()
            started = time.perf_counter()
            answers = asyncio.run(work())
            seconds = round(time.perf_counter() - started, 1)
            peak = container.peak()
            restarts = container.restarts() - before["restarts"]
            if restarts:  # the rest of the rounds need a running service: wait for the new one
                container.find_cgroup()
                wait_ready()
            time.sleep(SETTLE_S)
            after = container.resident()
            row = {
                "round": label,
                "answers": dict(sorted(answers.items())),
                "connection_errors": sum(n for key, n in answers.items() if not key[:1].isdigit()),
                "seconds": seconds,
                "peak_mib": round(peak / 2**20),
                "peak_share_of_limit": round(peak / spec.memory_bytes, 3),
                "oom_kills": container.oom_kills() - before["oom"],
                "restarts": restarts,
                "running": container.running(),
                "resident_before_mib": round(before["resident"] / 2**20),
                "resident_after_mib": round(after / 2**20),
                "resident_change": round(after / before["resident"] - 1, 3),
            }
            print(json.dumps(row), flush=True)
            results.append(row)
        return {
            "compose": spec.compose,
            "memory_limit": spec.memory,
            "cpus": spec.cpus,
            "workers": spec.workers,
            "environment": spec.environment,
            "ready_s": ready_s,
            **served,
            "resident_idle_mib": round(idle / 2**20),
            "rounds": results,
        }
    finally:
        container.remove()


def summary(rounds: list[dict[str, Any]]) -> str:
    """One setup's rounds against the targets, in a sentence."""
    answered = ("200", "503 overloaded", "503 decoding_busy", "503")
    other = sum(n for r in rounds for key, n in r["answers"].items() if key not in answered)
    stalled = next((r for r in rounds if "stalled" in r["round"]), None)
    return (
        f"Against the targets: {sum(r['oom_kills'] for r in rounds)} OOM kills, "
        f"{sum(r['restarts'] for r in rounds)} restarts, {sum(r['connection_errors'] for r in rounds)} connection "
        f"errors, {other} other answers; largest peak {max(r['peak_share_of_limit'] for r in rounds):.0%} of the "
        f"limit; largest resident change after a burst {max(r['resident_change'] for r in rounds):+.0%}"
        + (
            f"; with stalled uploads, {stalled['answers'].get('200', 0)} of 10 ordinary uploads 200."
            if stalled
            else "."
        )
    )


def render(result: dict[str, Any]) -> str:
    ctx = result["context"]
    lines = [
        "# Overload",
        "",
        f"Written by `{ctx['command']}` on {ctx['date']} ({ctx['cpu']}, commit {ctx['commit']}): the image built "
        "from the Dockerfile, run with each compose file's settings, workers, CPUs and memory limit (podman). "
        f"Peak is the container's memory cgroup high-water mark (page cache included); resident is its processes' "
        f"anonymous memory, before the round and {SETTLE_S} s after it. Targets: no OOM kill, no restart, no "
        "connection error, every answer 200 or 503 with Retry-After; peak <= 85 % of the limit; resident after "
        "within 15 % of before; with stalled uploads, 10 of 10 ordinary uploads 200.",
    ]
    for setup in result["setups"]:
        lines += [
            "",
            f"## {setup['compose']}: {setup['workers']} worker(s), {setup['cpus']} CPU, memory limit "
            f"{setup['memory_limit']}",
            "",
            f"Ready after {setup['ready_s']} s; {setup['resident_idle_mib']} MiB resident when idle.",
            "",
            "| round | answers | connection errors | s | peak MiB | peak / limit | OOM kills | restarts "
            "| resident before, after (MiB) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        rounds = setup["rounds"]
        lines[-2:-2] = [summary(rounds), ""]
        for row in rounds:
            answers = ", ".join(f"{n} x {key}" for key, n in row["answers"].items())
            lines.append(
                f"| {row['round']} | {answers} | {row['connection_errors']} | {row['seconds']} | {row['peak_mib']} "
                f"| {row['peak_share_of_limit']:.0%} | {row['oom_kills']} | {row['restarts']} "
                f"| {row['resident_before_mib']}, {row['resident_after_mib']} ({row['resident_change']:+.0%}) |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__.splitlines()[0])
    parser.add_argument("--compose", nargs="+", default=["docker-compose.yml", "compose.scale.yml"])
    parser.add_argument("--no-build", dest="build", action="store_false", help="use the image already built")
    parser.add_argument("--only", help="run only the rounds whose label contains this")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    if args.build:
        run("podman", "build", "--network", "host", "-t", IMAGE, str(ROOT))
    data = uploads()
    setups = [check(declared(ROOT / name), data, args.only) for name in args.compose]
    result = {"context": measured_on("python -m bench.overload"), "setups": setups}
    (args.out / "overload.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "overload.md").write_text(render(result))
    print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
