from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from starlette.types import Message, Receive, Scope, Send

from app.limits import InFlightLimit
from app.shared_count import SharedCount

ROOT = Path(__file__).resolve().parents[2]


def test_workers_add_up_and_each_writes_only_its_own_slot(tmp_path: Path) -> None:
    first, second = SharedCount(tmp_path), SharedCount(tmp_path)
    first.set(3)
    second.set(4)
    assert first.total() == second.total() == (7, 2)
    first.set(0)
    assert second.total() == (4, 2)


def test_a_dead_workers_count_goes_when_its_replacement_takes_the_slot(tmp_path: Path) -> None:
    worker = f"import pathlib, app.shared_count as s; s.SharedCount(pathlib.Path({str(tmp_path)!r})).set(5)"
    subprocess.run([sys.executable, "-c", worker], check=True, cwd=ROOT)  # dies with 5 in flight
    _, left_behind = struct.unpack_from("qq", (tmp_path / "in_flight.slots").read_bytes())
    assert left_behind == 5

    replacement = SharedCount(tmp_path)
    assert replacement.total() == (0, 1)
    replacement.set(2)
    assert SharedCount(tmp_path).total() == (2, 2)  # a third worker sees the replacement's count


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_once_the_service_is_full_each_worker_keeps_to_its_share(tmp_path: Path) -> None:
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    other_worker = SharedCount(tmp_path)
    limit = InFlightLimit(app, limit=4, shared=SharedCount(tmp_path), full_for=0.2)

    async def status() -> int:
        statuses: list[int] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await limit({"type": "http", "path": "/denoise", "headers": []}, receive, send)
        return statuses[0]

    # The other worker is idle: this one takes more than its share of 2 while there is room.
    held = [asyncio.create_task(status()) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert limit.in_flight == 3
    other_worker.set(1)
    assert await status() == 503  # 4 in progress: full
    other_worker.set(0)
    assert await status() == 503  # room for one, but just full, and this worker holds 3 > 2
    await asyncio.sleep(0.3)
    held.append(asyncio.create_task(status()))  # full a while ago: the room is used again
    await asyncio.sleep(0.01)
    assert limit.in_flight == 4
    release.set()
    assert await asyncio.gather(*held) == [200] * 4


def test_a_dead_worker_and_a_loading_one_do_not_count(tmp_path: Path) -> None:
    worker = f"import pathlib, app.shared_count as s; s.SharedCount(pathlib.Path({str(tmp_path)!r})).set(5)"
    subprocess.run([sys.executable, "-c", worker], check=True, cwd=ROOT)  # dies with 5 in flight
    survivor = SharedCount(tmp_path)  # takes the dead worker's slot: another, to be sure
    assert survivor.total() == (0, 1)
    loading = SharedCount(tmp_path, serving=False)  # a replacement that is still loading its model
    survivor.set(3)
    assert survivor.total().workers == 1  # the survivor keeps the whole limit as its share
    assert survivor.total().in_flight == 3
    loading.serve()
    loading.set(1)
    assert survivor.total() == (4, 2)


def test_a_killed_worker_stops_counting_before_it_is_reaped(tmp_path: Path) -> None:
    worker = (
        f"import pathlib, sys, time, app.shared_count as s; s.SharedCount(pathlib.Path({str(tmp_path)!r})).set(7);"
        " print('ready', flush=True); time.sleep(60)"
    )
    with subprocess.Popen([sys.executable, "-c", worker], cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n"
            survivor = SharedCount(tmp_path)
            assert survivor.total() == (7, 2)
            process.kill()  # and not waited for: a zombie, as a worker is until uvicorn reaps it
            deadline = time.monotonic() + 5
            while survivor.total() != (0, 1) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert Path(f"/proc/{process.pid}").exists()  # not reaped, yet no longer counted
            assert survivor.total() == (0, 1)
        finally:
            process.kill()
