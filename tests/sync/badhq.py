"""A misbehaving head office: replies that a correct HQ never sends. Nothing else.

Every sync test talks to the real HQ (:mod:`tests.sync.realhq`). These stand in for it
only where the real one cannot be made to misbehave, to show the till refuses cleanly and
keeps its data whole:

* :class:`MisbehavingHq`, an HqClient transport with canned replies in order: a change page
  that breaks the protocol (a field of the wrong type, not an object, a cursor going back,
  numbers no database holds); a ``409 sequence_gap`` that points past the till's own ledger;
  a reply of the wrong shape; a ``through_seq`` beyond what the till sent. A canned reply
  may be a function of the request (to forge a reply from what the till sent, or to ring
  up a sale while the push is on the wire).
* :class:`BadHqServer`, a real HTTP server on loopback in front of a real HQ, for a till in
  another process (``tillgate run``) or a client on the real network stack: it forwards to
  HQ until a misbehaviour is armed for a path, then answers that way — a forged
  ``through_seq`` (:class:`ForgedThrough`), a reply of hundreds of MiB streamed from a
  generator (:class:`HugeReply`; nothing that size is ever held in memory here), a reply that
  drips a byte a second (:class:`Drip`). It records what it sent and when the till hung up.

HTML error pages, non-JSON and slow answers come from a loopback server in test_client.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

Canned = httpx.Response | Callable[[httpx.Request], httpx.Response]


def error(status: int, code: str, message: str = "", **extra: Any) -> httpx.Response:
    """An error reply in the protocol's shape."""
    return httpx.Response(status, json={"error": {"code": code, "message": message, **extra}})


def hq_card(number: str, *, balance: int) -> dict[str, Any]:
    """A card as the change feed shows it, for a canned page."""
    return {"number": number, "status": "active", "balance": balance, "lots": []}


def push_reply(through_seq: int) -> dict[str, Any]:
    """A push reply in the protocol's shape, claiming HQ holds seqs up to ``through_seq``."""
    return {
        "through_seq": through_seq,
        "stored": 0,
        "duplicates": 0,
        "conflicts": [],
        "negative_cards": [],
        "coupon_double_uses": [],
    }


def last_sent(request: httpx.Request | bytes) -> int:
    """The highest seq in a push body (0 when it carries no entries)."""
    raw = request.content if isinstance(request, httpx.Request) else request
    return max((int(e["seq"]) for e in json.loads(raw).get("entries", [])), default=0)


class MisbehavingHq(httpx.BaseTransport):
    """Answers each request with the next canned reply (or what the next function makes)."""

    def __init__(self, *replies: Canned) -> None:
        self.replies = list(replies)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert self.replies, f"the misbehaving HQ stub has no reply left for {request.url.path}"
        canned = self.replies.pop(0)
        if not isinstance(canned, httpx.Response):
            request.read()
            canned = canned(request)
        return httpx.Response(canned.status_code, headers=canned.headers, content=canned.content)


# ---------------------------------------------------------------- a real server on loopback

MiB = 1 << 20


@dataclass
class Served:
    """What one armed misbehaviour did: how often, how much it sent, when the till hung up."""

    requests: int = 0
    bytes_sent: int = 0
    hung_up: int = 0  # replies the client stopped reading before their end
    hang_up_after: list[float] = field(default_factory=list)  # seconds from request to hang-up
    headers: list[dict[str, str]] = field(default_factory=list)  # each request's, and "path"
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sent(self, n: int) -> None:
        with self.lock:
            self.bytes_sent += n

    def hang_up(self, started: float) -> None:
        with self.lock:
            self.hung_up += 1
            self.hang_up_after.append(time.monotonic() - started)


class Misbehaviour:
    """How the server answers one request: :meth:`answer` writes the whole reply."""

    def __init__(self) -> None:
        self.served = Served()
        self.ended = threading.Event()  # disarmed: replies still going end (HQ is back)

    def answer(self, handler: _Handler, body: bytes, stop: threading.Event) -> None:
        raise NotImplementedError

    def over(self, stop: threading.Event, wait: float = 0) -> bool:
        """Whether to stop answering (the server stops or this is disarmed), after ``wait``."""
        if wait:
            self.ended.wait(wait)
        return stop.is_set() or self.ended.is_set()


class Answer(Misbehaviour):
    """The same reply to every request (what a correct HQ never says), on a real socket."""

    def __init__(self, reply: httpx.Response) -> None:
        super().__init__()
        self.reply = reply

    def answer(self, handler: _Handler, body: bytes, stop: threading.Event) -> None:
        relay(handler, self.reply)


class ForgedThrough(Misbehaviour):
    """A 200 to a push claiming HQ stored ``beyond`` seqs more than the till sent. Nothing
    is forwarded: HQ never sees the entries."""

    def __init__(self, beyond: int = 1_000_000) -> None:
        super().__init__()
        self.beyond = beyond

    def answer(self, handler: _Handler, body: bytes, stop: threading.Event) -> None:
        data = json.dumps(push_reply(last_sent(body) + self.beyond)).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        self.served.sent(len(data))


class HugeReply(Misbehaviour):
    """A reply of ``size`` bytes (a JSON string that never seems to end), streamed from a
    generator in 64 KiB pieces; ``declared``: with its Content-Length, else delimited by
    closing the connection. Only the piece on the wire is ever in memory."""

    PIECE = b"x" * (64 << 10)

    def __init__(self, size: int = 200 * MiB, *, status: int = 200, declared: bool = True):
        super().__init__()
        self.size, self.status, self.declared = size, status, declared

    def body(self) -> Iterator[bytes]:
        head = b'{"through_seq": 1, "cursor": 1, "negative_cards": ["'
        yield head
        left = self.size - len(head)
        while left > 0:
            piece = self.PIECE[: min(left, len(self.PIECE))]
            left -= len(piece)
            yield piece

    def answer(self, handler: _Handler, body: bytes, stop: threading.Event) -> None:
        started = time.monotonic()
        handler.send_response(self.status)
        handler.send_header("Content-Type", "application/json")
        if self.declared:
            handler.send_header("Content-Length", str(self.size))
        handler.end_headers()
        try:
            for piece in self.body():
                if self.over(stop):
                    return
                handler.wfile.write(piece)
                self.served.sent(len(piece))
        except OSError:  # BrokenPipe, ConnectionReset: the till stopped reading, as it should
            self.served.hang_up(started)


class Drip(Misbehaviour):
    """A reply that never ends: one byte every ``every`` seconds, of the body (after prompt
    headers) or, with ``headers=True``, of the status line and headers themselves."""

    def __init__(self, every: float = 1.0, *, headers: bool = False) -> None:
        super().__init__()
        self.every, self.headers = every, headers

    def stream(self) -> Iterator[bytes]:
        if self.headers:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: "
            yield from (head[i : i + 1] for i in range(len(head)))
            while True:
                yield b"y"
        yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 999999\r\n\r\n"
        yield b'{"through_seq": 1, "negative_cards": ["'
        while True:
            yield b"y"

    def answer(self, handler: _Handler, body: bytes, stop: threading.Event) -> None:
        started = time.monotonic()
        handler.close_connection = True
        try:
            for piece in self.stream():
                handler.wfile.write(piece)
                handler.wfile.flush()
                self.served.sent(len(piece))
                if self.over(stop, self.every):
                    return
        except OSError:
            self.served.hang_up(started)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        bad = self.server.owner.armed_for(path)
        if bad is not None:
            with bad.served.lock:
                bad.served.requests += 1
                seen = {k.lower(): v for k, v in self.headers.items()}
                bad.served.headers.append(seen | {"path": self.path})
            bad.answer(self, body, self.server.owner.stopping)
            return
        self._forward(body)

    def _forward(self, body: bytes) -> None:
        target = self.server.owner.target
        assert target, f"nothing armed for {self.path} and no HQ to forward it to"
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        reply = httpx.request(
            self.command, target + self.path, content=body or None, headers=headers, timeout=20
        )
        relay(self, reply)

    do_GET = do_POST = _serve

    def log_message(self, *args: Any) -> None:
        pass


def relay(handler: BaseHTTPRequestHandler, reply: httpx.Response) -> None:
    """Answer ``handler``'s request with ``reply`` (HQ's answer, as a proxy passes it on)."""
    handler.send_response(reply.status_code)
    for k, v in reply.headers.items():
        if k.lower() not in ("content-length", "transfer-encoding", "connection"):
            handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(reply.content)))
    handler.end_headers()
    handler.wfile.write(reply.content)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: BadHqServer


class BadHqServer:
    """A loopback server in front of ``target`` (a real HQ's URL, or none): forwards every
    request there unless a misbehaviour is armed for its path."""

    def __init__(self, target: str = "") -> None:
        self.target = target.rstrip("/")
        self.stopping = threading.Event()
        self._armed: dict[str, Misbehaviour] = {}
        self._lock = threading.Lock()
        self._srv = _Server(("127.0.0.1", 0), _Handler)
        self._srv.owner = self
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._srv.server_address[1]}"

    def start(self) -> BadHqServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # drips and streams end at their next piece
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> BadHqServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def arm(self, path: str, bad: Misbehaviour) -> Misbehaviour:
        """Answer every request for ``path`` with ``bad`` until :meth:`disarm`."""
        with self._lock:
            self._armed[path] = bad
        return bad

    def disarm(self, *paths: str) -> None:
        """Forward ``paths`` (all, if none named) to HQ again; replies under way end."""
        with self._lock:
            for path in paths or list(self._armed):
                bad = self._armed.pop(path, None)
                if bad is not None:
                    bad.ended.set()

    def armed_for(self, path: str) -> Misbehaviour | None:
        with self._lock:
            return self._armed.get(path)
