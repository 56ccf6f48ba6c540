"""A TCP relay on loopback in front of a real head office, to see and to break connections.

It passes bytes both ways unchanged and counts the connections it accepted, so a test
sees whether a client kept its connection. It can also do to the connections open now
what a network does to an idle one:

* :meth:`TcpRelay.drop_on_next_request` — the far end closed it: the next bytes the client
  sends on it are met with a reset, as from a server that timed the connection out just
  as the request came;
* :meth:`TcpRelay.go_silent` — a NAT or firewall forgot it: nothing sent on it arrives,
  nothing comes back, and nobody says so;
* :meth:`TcpRelay.trickle` — a line or a server so slow that the reply comes a byte every
  ``every`` seconds: each read gets something, so only a deadline on the whole ends it.

New connections are never affected: they reach head office as usual.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from urllib.parse import urlsplit


class _Pair:
    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.drop = False  # reset the client when it next sends
        self.silent = False  # swallow everything, both ways
        self.trickle = 0.0  # seconds between the bytes of what head office sends


class TcpRelay:
    """Listens on a loopback port and relays each connection to ``target`` (a URL)."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._to = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._stop = threading.Event()
        self.accepted = 0
        self.resets = 0  # connections reset by drop_on_next_request
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> TcpRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=5)
        with self._lock:
            for pair in self._pairs:
                pair.client.close()
                pair.server.close()

    def drop_on_next_request(self) -> None:
        with self._lock:
            for pair in self._pairs:
                pair.drop = True

    def go_silent(self) -> None:
        with self._lock:
            for pair in self._pairs:
                pair.silent = True

    def trickle(self, every: float = 0.05) -> None:
        with self._lock:
            for pair in self._pairs:
                pair.trickle = every

    def _accept(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(self._to, timeout=5)
            pair = _Pair(client, server)
            with self._lock:
                self.accepted += 1
                self._pairs.append(pair)
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair: _Pair) -> None:
        ends = {pair.client: pair.server, pair.server: pair.client}
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select(list(ends), [], [], 0.05)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is pair.client and pair.drop:
                        self._reset(pair.client)
                        return
                    if pair.silent:
                        continue
                    if sock is pair.server and pair.trickle:
                        for i in range(len(data)):
                            ends[sock].sendall(data[i : i + 1])
                            if self._stop.wait(pair.trickle):
                                return
                        continue
                    ends[sock].sendall(data)
        except OSError:
            return
        finally:
            pair.client.close()
            pair.server.close()

    def _reset(self, sock: socket.socket) -> None:
        """Close with a reset (SO_LINGER 0), as a server does to a connection it dropped."""
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._lock:
            self.resets += 1
