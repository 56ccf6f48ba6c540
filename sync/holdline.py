"""The till's kept line to head office for online holds: one small request, one small reply.

A hold is made while a calculate waits, a few hundred bytes each way. Through httpx a
hold cost the till about 2.1 ms of CPU on the test machine, against 0.7 ms through the
standard library's ``http.client`` (docs/performance.md, "holds: where the time goes"):
httpx's request and response models, its pool and h11's state machine are built for far
more than this. So a hold goes as one write of HTTP/1.1 on a socket this line keeps, and
its reply is read by ``http.client.HTTPResponse``, with the same guarantees as
:class:`~tillgate.sync.client.HqClient` gives:

* the whole exchange (connect, TLS, send, wait, read to the last byte) ends at the
  deadline: the watchdog shuts the socket down (sync/deadline.py), whatever read is
  blocked on it;
* a reply is read only up to its limit (``reply_bytes``; ``error_bytes`` for an error,
  whose status is the answer anyway), never compressed, and errors come as the sync
  branch of the error tree (``HqUnreachable``, ``HqRefused``, ``HqBadReply``);
* the connection is kept ``keep_alive`` seconds between holds; one head office closed
  while it was idle fails before any reply, and the request goes once more on a new
  connection within the same deadline (a hold and its resolution are idempotent).

The sync's pushes and pulls stay with :class:`~tillgate.sync.client.HqClient` (retries,
pages, replies of megabytes).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from tillgate.core import __version__
from tillgate.core.errors import HqUnreachable, SyncError

from .client import KiB, json_of, late, refusal, too_big, worth_reading
from .deadline import Deadline, Kept
from .wire import HoldReply, ResolveReply, parse

# A connection head office closed while it was idle fails on the socket (reset, broken
# pipe, end of file; under TLS an EOF the TLS layer reports) before any reply.
_STALE = OSError  # http.client's RemoteDisconnected is one too


class _Stale(Exception):
    """The kept connection was gone before the request got any reply."""


class HoldLine:
    """Holds and their resolutions at head office, each one exchange within ``seconds``."""

    def __init__(
        self,
        *,
        url: str,
        credential: str,
        seconds: float,
        verify: bool | ssl.SSLContext = True,
        keep_alive: float = 0.0,
        reply_bytes: int = 64 * KiB,
        error_bytes: int = 16 * KiB,
    ) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SyncError(f"head office's URL {url!r} is not an http:// or https:// URL")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path
        self._tls: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._tls = _tls_context(verify)
        self.seconds = seconds
        self.keep_alive = keep_alive
        self.reply_bytes = reply_bytes
        self.error_bytes = error_bytes
        close = "" if keep_alive > 0 else "Connection: close\r\n"
        self._head = (
            f"Host: {parts.netloc.rpartition('@')[2]}\r\n"
            f"User-Agent: tillgate/{__version__}\r\n"
            "Accept: application/json\r\nAccept-Encoding: identity\r\n"
            f"Authorization: Bearer {credential}\r\n"
            f"Content-Type: application/json\r\n{close}"
        ).encode("latin-1")
        self.kept = Kept()
        self._sock: socket.socket | None = None
        self._idle_since = 0.0
        self._one_at_a_time = threading.Lock()

    def hold(self, body: dict[str, Any]) -> HoldReply:
        """Reserve a receipt's points and coupons (``POST /v1/holds``)."""
        return parse(HoldReply, self._call("/v1/holds", body), what="hold reply")

    def resolve_hold(self, body: dict[str, Any]) -> ResolveReply:
        """Tell head office how a receipt's hold ended (``POST /v1/holds/resolve``)."""
        return parse(ResolveReply, self._call("/v1/holds/resolve", body), what="hold reply")

    def close(self) -> None:
        with self._one_at_a_time:
            self._drop()
        self.kept.close()

    # ------------------------------------------------------------ plumbing

    def _call(self, path: str, body: dict[str, Any]) -> Any:
        request = self._request(path, json.dumps(body).encode())
        deadline = Deadline(self.seconds, self.kept)
        with deadline:
            if not self._one_at_a_time.acquire(timeout=deadline.left):
                raise late(self.url, path, deadline)
            try:
                try:
                    status, kind, raw = self._exchange(path, request, deadline)
                except _Stale:
                    if deadline.fired or deadline.expired:
                        raise late(self.url, path, deadline) from None
                    status, kind, raw = self._exchange(path, request, deadline)
            finally:
                self._one_at_a_time.release()
        return json_of(raw, url=self.url, path=path, status=status, kind=kind)

    def _request(self, path: str, payload: bytes) -> bytes:
        line = f"POST {self._prefix}{path} HTTP/1.1\r\n".encode("latin-1")
        return b"%s%sContent-Length: %d\r\n\r\n%s" % (line, self._head, len(payload), payload)

    def _exchange(self, path: str, request: bytes, deadline: Deadline) -> tuple[int, str, bytes]:
        """One request on the kept connection (or a new one) and its reply, read whole."""
        reused = self._sock is not None and time.monotonic() - self._idle_since < self.keep_alive
        if not reused:
            self._drop()
        try:
            sock = self._sock if reused and self._sock is not None else self._connect(deadline)
            sock.settimeout(max(deadline.left, 0.001))
            sock.sendall(request)
            reply = http.client.HTTPResponse(sock, method="POST")
            try:
                reply.begin()
                status, kind, raw = self._read(reply, path, deadline)
            finally:
                reply.close()  # its reader, not the socket (which a reader keeps open)
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            if deadline.fired or deadline.expired:
                raise late(self.url, path, deadline) from exc
            if reused and isinstance(exc, _STALE):
                # Most likely closed by head office while idle; the request can go again
                # (a hold and a resolution are idempotent per receipt).
                raise _Stale from exc
            why = "no answer in time" if isinstance(exc, TimeoutError) else str(exc)
            raise HqUnreachable(
                f"cannot reach head office at {self.url}: {why or type(exc).__name__}"
            ) from exc
        except BaseException:
            self._drop()
            raise
        if reply.will_close or self.keep_alive <= 0:
            self._drop()
        else:
            self._idle_since = time.monotonic()
        if status >= 400:
            raise refusal(status, reply.reason, "POST", path, raw)
        return status, kind, raw

    def _connect(self, deadline: Deadline) -> socket.socket:
        sock = socket.create_connection((self._host, self._port), timeout=deadline.left)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        deadline.connected(sock)
        if self._tls is not None:
            try:
                sock = self._tls.wrap_socket(sock, server_hostname=self._host)
            except BaseException:
                sock.close()
                raise
            self.kept.replace(sock)
        self._sock = sock
        return sock

    def _read(
        self, reply: http.client.HTTPResponse, path: str, deadline: Deadline
    ) -> tuple[int, str, bytes]:
        """The reply's status, type and body, the body to at most its limit; an error's
        body that is compressed or too big is read no further, as if there were none."""
        status, error = reply.status, reply.status >= 400
        limit = self.error_bytes if error else self.reply_bytes
        what = "error reply" if error else "hold reply"
        # A bad reply raised here drops the connection with it (``_exchange``).
        if not worth_reading(path, what, limit, reply.getheader("content-encoding"),
                             reply.getheader("content-length")):  # fmt: skip
            self._drop()  # its body is left unread on it
            return status, "", b""
        raw = reply.read(limit + 1)
        if deadline.fired:  # a reply that ends when its connection does, cut short
            raise late(self.url, path, deadline)
        if len(raw) > limit:
            self._drop()
            if error:
                return status, "", b""
            raise too_big(path, what, limit, "it went on; read no further")
        return status, reply.getheader("content-type") or "no type", raw

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def _tls_context(verify: bool | ssl.SSLContext) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify:
        return ssl.create_default_context()
    unchecked = ssl.create_default_context()
    unchecked.check_hostname = False
    unchecked.verify_mode = ssl.CERT_NONE
    return unchecked
