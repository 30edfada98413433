"""The workers' CPU policy: every thread, the ones started later included."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from app.scheduling import apply_cpu_policy
from tests.conftest import ClientFactory, free_port, uvicorn_process, wait_ready
from tests.images import encode, mnist_digits

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="scheduling policies are Linux's")


def policies(pid: int | str = "self") -> set[int]:
    """The scheduling policy of each thread of process ``pid``."""
    return {os.sched_getscheduler(int(task)) for task in os.listdir(f"/proc/{pid}/task")}


def test_batch_reaches_running_threads_and_later_ones() -> None:
    stop = threading.Event()
    running = threading.Thread(target=stop.wait)
    running.start()
    later: list[int] = []
    try:
        apply_cpu_policy("batch")
        assert policies() == {os.SCHED_BATCH}
        started = threading.Thread(target=lambda: later.append(os.sched_getscheduler(0)))
        started.start()
        started.join()
        apply_cpu_policy("normal")
        assert policies() == {os.SCHED_OTHER}
    finally:
        stop.set()
        running.join()
    assert later == [os.SCHED_BATCH]


def test_a_refusal_is_logged_and_serving_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(pid: int, policy: int, param: os.sched_param) -> None:
        raise PermissionError(1, "Operation not permitted")

    before = policies()  # the apps that tests start in this process set theirs
    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    with caplog.at_level(logging.WARNING, logger="app.scheduling"):
        apply_cpu_policy("batch" if before != {os.SCHED_BATCH} else "normal")
    assert "not applied" in caplog.text
    assert policies() == before


def test_served_worker_runs_every_thread_as_batch() -> None:
    port = free_port()
    process = uvicorn_process(port, output=subprocess.DEVNULL)
    try:
        wait_ready(process, port)
        image = encode(Image.fromarray(mnist_digits()[0]), "PNG")
        # Threads that answering starts (the batcher's, the engine's, the thread pool's) count too.
        response = httpx.post(f"http://127.0.0.1:{port}/denoise", files={"file": ("d.png", image)})
        assert response.status_code == 200
        assert len(os.listdir(f"/proc/{process.pid}/task")) > 2
        assert policies(process.pid) == {os.SCHED_BATCH}
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_request_turned_away_hurries_the_model_thread(make_client: ClientFactory) -> None:
    image = encode(Image.fromarray(mnist_digits()[0]), "PNG")
    with make_client(max_concurrent_requests=1) as client:
        app = client.app
        assert isinstance(app, FastAPI)
        ready = app.state.service.ready()
        assert not ready.batcher.hurried

        def status(_: int) -> int:
            code: int = client.post("/denoise", files={"file": ("d.png", image)}).status_code
            return code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(status, range(48)))
        assert set(statuses) == {200, 503}
        assert ready.batcher.hurried  # for a second after the last one turned away
