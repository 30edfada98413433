"""app.protocol: what one event-loop turn writes leaves in one write, in order; the served app uses it."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest

from app.protocol import TurnWrites
from app.routes.docs import STATIC_DIR
from tests.conftest import live_server


class Recorder:
    """The transport's side: each write as it arrives, and whether it was closed or aborted."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, lines: list[bytes]) -> None:
        self.writes.append(b"".join(lines))  # one writev

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name == "sockname" else default


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def turn_writes() -> tuple[TurnWrites, Recorder]:
    recorder = Recorder()
    return TurnWrites(recorder, asyncio.get_running_loop()), recorder  # type: ignore[arg-type]


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


@pytest.mark.anyio
async def test_a_head_and_body_written_in_one_turn_leave_as_one_write() -> None:
    transport, recorder = turn_writes()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
    transport.write(b"body")
    assert recorder.writes == []  # nothing sent until the turn ends
    await next_turn()
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody"]


@pytest.mark.anyio
async def test_writes_of_later_turns_leave_later_and_in_order() -> None:
    transport, recorder = turn_writes()
    transport.write(b"a")
    await next_turn()
    transport.writelines([b"b", b"c"])
    transport.write(b"")  # nothing to send: no write of its own
    await next_turn()
    assert recorder.writes == [b"a", b"bc"]


@pytest.mark.anyio
async def test_close_sends_what_is_pending_first() -> None:
    transport, recorder = turn_writes()
    transport.write(b"last answer")
    transport.close()
    await next_turn()
    assert recorder.writes == [b"last answer"]
    assert recorder.closed


@pytest.mark.anyio
async def test_abort_drops_what_is_pending_and_a_closed_transport_gets_nothing() -> None:
    transport, recorder = turn_writes()
    transport.write(b"dropped")
    transport.abort()
    await next_turn()
    assert recorder.writes == []
    assert recorder.aborted
    transport.write(b"too late")
    await next_turn()
    assert recorder.writes == []


@pytest.mark.anyio
async def test_everything_else_is_the_transports() -> None:
    transport, _ = turn_writes()
    assert transport.get_extra_info("sockname") == ("127.0.0.1", 8000)
    assert not transport.is_closing()


def _port(url: str) -> int:
    port = urllib.parse.urlsplit(url).port
    assert port is not None, url
    return port


def test_a_file_sent_in_many_writes_arrives_whole_twice_over_one_connection() -> None:
    """Swagger UI's 1.7 MB script, which Starlette sends in chunks over several turns, arrives byte
    for byte to a client that lets it pile up before reading, and the connection serves it again."""
    expected = (STATIC_DIR / "swagger-ui" / "swagger-ui-bundle.js").read_bytes()
    request = b"GET /static/swagger-ui/swagger-ui-bundle.js HTTP/1.1\r\nhost: test\r\n\r\n"
    with (
        live_server() as url,
        socket.create_connection(("127.0.0.1", _port(url)), timeout=10) as client,
    ):
        for _ in range(2):
            client.sendall(request)
            time.sleep(0.3)  # the server's writes back up meanwhile
            received = bytearray()
            while b"\r\n\r\n" not in received:
                received += client.recv(1 << 20)
            head, _, body = bytes(received).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            rest = bytearray(body)
            while len(rest) < len(expected):
                chunk = client.recv(1 << 20)
                assert chunk, f"the connection closed after {len(rest):,} of {len(expected):,} bytes"
                rest += chunk
            assert bytes(rest) == expected


def test_the_served_app_answers_in_one_segment_per_response() -> None:
    """Through a real uvicorn process: a keep-alive connection's answers each arrive whole (head and
    body in the first read), which two writes on loopback do not promise."""
    with live_server() as url:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            assert response.status == 200
        with socket.create_connection(("127.0.0.1", _port(url)), timeout=5) as client:
            for _ in range(20):
                client.sendall(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
                first = client.recv(65536)
                head, _, body = first.partition(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                assert len(body) == length, first
