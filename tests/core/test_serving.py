"""``core/serving.py`` ``http_protocol``: an answer goes out in one send, head and body.

A real uvicorn server on loopback, in a thread, with the protocol both daemons use; the
transport under it is the event loop's own, seen through a recording layer.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from tests.conftest import free_port
from tillgate.core.serving import http_protocol

BODY = b"x" * 16_000  # a 50-line calculate's answer is about this long


class _Recorded:
    """The event loop's transport, each write noted (what the peer is sent, send by send)."""

    def __init__(self, transport: Any, writes: list[bytes]) -> None:
        self._transport, self._writes = transport, writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/answer")
    def answer() -> Response:
        return Response(BODY, media_type="application/json")

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body())

    @app.get("/stream")
    def stream() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            yield b"first\n"
            await asyncio.sleep(1.0)
            yield b"second\n"

        return StreamingResponse(parts(), media_type="text/plain")

    return app


@pytest.fixture
def server() -> Iterator[tuple[int, list[bytes]]]:
    """The port of a served app, and every write its connections made."""
    writes: list[bytes] = []
    joined = http_protocol()

    class Recording(joined):  # type: ignore[misc,valid-type]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(_Recorded(transport, writes))

    port = free_port()
    config = uvicorn.Config(
        _app(), host="127.0.0.1", port=port, http=Recording, log_config=None, lifespan="off"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port, writes
    finally:
        srv.should_exit = True
        thread.join(10)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def _read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One whole answer with a Content-Length: its head and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return head, body


def test_an_answer_is_one_send_of_head_and_body(server: tuple[int, list[bytes]]) -> None:
    port, writes = server
    with _connect(port) as sock:
        for _ in range(3):  # keep-alive: each answer of the connection alike
            sock.sendall(b"GET /answer HTTP/1.1\r\nHost: t\r\n\r\n")
            head, body = _read_answer(sock)
            assert head.startswith(b"HTTP/1.1 200 OK")
            assert body == BODY
    # Without the joining: six sends, a head alone then a body alone each time.
    assert len(writes) == 3
    assert all(w.startswith(b"HTTP/1.1 200 OK") and w.endswith(BODY) for w in writes)


def test_a_streamed_answer_starts_before_it_ends(server: tuple[int, list[bytes]]) -> None:
    port, _ = server
    with _connect(port) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        started = time.monotonic()
        data = b""
        while b"first" not in data:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
        # The head and the first part came at once, not with the second a second later.
        assert time.monotonic() - started < 0.8
        assert data.startswith(b"HTTP/1.1 200 OK")
        assert b"second" not in data
        while not data.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
        assert b"second" in data


def test_continue_is_sent_at_once_and_the_answer_after(server: tuple[int, list[bytes]]) -> None:
    """A client that waits for ``100 Continue`` before its body gets it without delay (it
    is no answer's head), and the answer after."""
    port, _ = server
    with _connect(port) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        sock.settimeout(2)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"hello")
        head, body = _read_answer(sock)
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert body == b"hello"


def test_a_closing_answer_is_sent_whole_before_the_close(
    server: tuple[int, list[bytes]],
) -> None:
    port, _ = server
    with _connect(port) as sock:
        sock.sendall(b"GET /answer HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert data.endswith(BODY)
