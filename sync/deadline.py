"""The deadline of one exchange with head office, and the connection a hold keeps.

httpx's timeouts bound each network operation, not their sum: a server that sends a byte
every few seconds keeps a read (of the body, or of the headers) alive for ever. So each
exchange has a :class:`Deadline`: the sockets it may be reading from are known to it, and
when the time is up one watchdog thread shuts them down, which ends any read or write
blocked on them in the calling thread with an error.

A client makes a new connection per exchange (the sync's pushes and pulls, a few a
minute), or keeps one (the online holds, on the POS's clock: no handshake per hold, which
over TLS on a shop's line is two round trips). A :class:`Kept` is that one connection's
socket; its client runs one exchange at a time on it, so the deadline of the exchange
running may shut it down.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

logger = logging.getLogger(__name__)


class Watchdog:
    """One thread that runs every deadline of the process when its time comes.

    A thread of its own per exchange would do, but starting one costs a few milliseconds
    at the 99th percentile (it must get the GIL first), and an online hold is on the POS's
    clock (a calculate waits for it). Deadlines are kept in a heap; a cancelled one is
    dropped when its time comes. The thread is woken only when a new deadline comes
    before every one it waits for: each wake-up takes the GIL from the exchange under way.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, when: float, fn: Callable[[], None]) -> int:
        """Run ``fn`` at ``when`` (``time.monotonic()``) unless cancelled; a token."""
        with self._cond:
            token = next(self._ids)
            self._live[token] = fn
            heapq.heappush(self._heap, (when, token))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="tillgate-hq-deadlines", daemon=True
                )
                self._thread.start()
            if self._heap[0][1] == token:  # sooner than what the thread waits for
                self._cond.notify()
            return token

    def cancel(self, token: int) -> None:
        with self._cond:
            self._live.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    when, token = self._heap[0]
                    delay = when - time.monotonic()
                    if delay <= 0:
                        heapq.heappop(self._heap)
                        fn = self._live.pop(token, None)
                        break
                    self._cond.wait(delay)
            if fn is not None:
                try:
                    fn()
                except Exception:  # pragma: no cover - a deadline's action never raises
                    logger.exception("a head-office deadline failed")


WATCHDOG = Watchdog()


class Kept:
    """The socket of the one connection a client keeps, for its deadlines to shut down.

    The socket itself, not a duplicate of its descriptor: a duplicate would keep the
    connection open after httpx closed it (no FIN until the duplicate goes). A socket
    that httpx closed has no descriptor any more, so shutting it down is a harmless error,
    never a touch on a descriptor handed to someone else since. Over TLS it is the TLS
    socket (the plain one is detached into it); the plain socket's shutdown is used on
    it, which ends the connection under TLS without touching TLS's own state, as a
    reader in another thread may be in it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    def replace(self, sock: socket.socket) -> None:
        """A connection was made (or TLS started on it): its socket is the kept one."""
        with self._lock:
            self._sock = sock

    def shutdown(self) -> bool:
        """End the kept connection (whatever is blocked on it gets an error); whether
        there was one to end."""
        with self._lock:
            sock = self._sock
        if sock is None or sock.fileno() < 0:
            return False
        with suppress(OSError):  # shutdown does not block; closed meanwhile: nothing to do
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        return True

    def close(self) -> None:
        with self._lock:
            self._sock = None


class Deadline:
    """Ends one exchange with head office at a fixed time, whatever stage it is in.

    Each connection the exchange makes is caught as it is made (httpcore's ``trace``
    extension names its stream) and a copy of its socket kept; with ``kept``, the
    connection the exchange may reuse is shut down too.
    """

    def __init__(self, seconds: float, kept: Kept | None = None) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds
        self._kept = kept
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._over = False
        self.fired = False  # the watchdog cut a connection short
        self.connections = 0  # connections made in this exchange so far
        self._token: int | None = None

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._ends

    @property
    def left(self) -> float:
        return max(0.0, self._ends - time.monotonic())

    def __enter__(self) -> Deadline:
        self._token = WATCHDOG.schedule(self._ends, self._expire)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            WATCHDOG.cancel(self._token)
        with self._lock:  # never while the watchdog is shutting one down
            self._over = True
            for sock in self._socks:
                sock.close()
            self._socks = []

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's ``trace`` extension: the sockets of the connections httpx makes."""
        if event not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        if event == "connection.connect_tcp.complete":
            self.connected(sock)
        elif self._kept is not None:  # TLS on a connection already caught
            self._kept.replace(sock)

    def connected(self, sock: socket.socket) -> None:
        """A connection this exchange made (its plain socket): the deadline ends it too."""
        if self._kept is not None:
            self._kept.replace(sock)
        self.connections += 1
        # A duplicate of the descriptor: shutting it down ends the connection (TLS on top
        # of it included), and it stays ours until __exit__.
        copy = sock.dup()
        with self._lock:
            keep = not self._over
            if keep:
                self._socks.append(copy)
        if not keep:
            copy.close()
        if self.expired:
            self._expire()

    def _expire(self) -> None:
        with self._lock:
            if self._over:
                return
            for sock in self._socks:
                self.fired = True
                with suppress(OSError):  # shutdown does not block
                    sock.shutdown(socket.SHUT_RDWR)
            if self._kept is not None and self._kept.shutdown():
                self.fired = True
