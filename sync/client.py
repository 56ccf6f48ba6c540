"""The HTTP client a till talks to head office with (``docs/sync-protocol.md``).

httpx's transport is the seam: the daemon uses the real network, tests plug in an
``httpx.MockTransport`` or a real loopback server. Every httpx exception and every error
reply is translated here into the sync branch of the error tree:

* :class:`HqUnreachable` — no answer (connection refused, DNS, TLS, timeout), or no
  *whole* answer within the deadline;
* :class:`HqRefused`     — HQ answered an error (``status`` + protocol ``code``);
* :class:`HqBadReply`    — HQ answered something that is not the protocol, or more of it
  than any true reply holds.

Nothing HQ sends is trusted to be small or quick (:class:`ReplyLimits`): every reply is
streamed and read only up to a size limit for its kind, and every exchange — connect,
send, wait, read to the last byte — ends at a deadline, enforced here because httpx's
timeouts bound each network read, not their sum.

Transient failures (no answer, 5xx, 429) are retried a few times with jittered back-off
(stamina), bounded by ``retry_seconds`` in total: sync runs on its own thread, so a
retry never holds up a sale, but a sync attempt must still end soon so the next one can
start on time. A push is idempotent at HQ, so retrying one whose reply was lost is safe.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import stamina

from tillgate.core import __version__
from tillgate.core.errors import HqBadReply, HqRefused, HqUnreachable, SyncError

from . import cardrows, jsonpieces
from .deadline import Deadline, Kept
from .wire import (
    CardSnapshotInfo,
    ChangePage,
    EnrollReply,
    ErrorReply,
    HoldReply,
    ProductPage,
    PushReply,
    ResolveReply,
    parse,
)

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
KiB, MiB = 1 << 10, 1 << 20


@dataclass(frozen=True, kw_only=True)
class ReplyLimits:
    """How much of a reply from head office the till reads, and for how long.

    The sizes are what a true reply never comes near (docs/sync-protocol.md, "Limits"),
    yet small enough that a reply at the limit, parsed, leaves the till well inside its
    memory: JSON parsed into Python objects takes up to ~25 times its size. A change page
    over ``page_bytes`` is asked for again, smaller (:meth:`HqClient.changes`).
    """

    page_bytes: int = 2 * MiB  # a change page: 500 cards with a dozen lots are ~0.9 MiB
    # A product list page: 5000 products with a barcode and an alias each are ~0.6 MiB.
    products_bytes: int = 4 * MiB
    reply_bytes: int = 1 * MiB  # a push or enrolment reply: 1000 conflicts are ~150 KiB
    part_bytes: int = 2 * MiB  # a card snapshot's part: 1 MiB (hq/snapshots.py PART_BYTES)
    error_bytes: int = 64 * KiB  # an error's body; past it, the status alone is the answer
    seconds: float = 15.0  # one whole exchange, first byte sent to last byte read


DEFAULT_LIMITS = ReplyLimits()
SNAPSHOT_PATH = "/v1/sync/card-snapshot"


class _TooBig(HqBadReply):
    """A reply over its size limit. Within this module a change page that is too big is
    asked for again with half the ``limit``; to everyone else it is an HqBadReply."""


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, HqUnreachable):
        return True
    return isinstance(exc, HqRefused) and (exc.status >= 500 or exc.status == 429)


# How a kept connection that the other end closed while it was idle fails: the request
# cannot be written, or the connection ends before any reply.
_STALE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)

_PAGE_LISTS = ("cards", "card_rows", "coupons_revoked", "coupons_used", "budgets")


def _count(data: Any, keys: tuple[str, ...]) -> int:
    """How many items the lists (or objects) under ``keys`` of a raw reply hold in all."""
    if not isinstance(data, dict):
        return 0  # the parse names the problem
    return sum(len(v) for k in keys if isinstance(v := data.get(k), list | dict))


class HqClient:
    """One till's connection to head office; ``credential`` None for enrolment only."""

    def __init__(
        self,
        *,
        url: str,
        credential: str | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: bool | ssl.SSLContext = True,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry_attempts: int = 4,
        retry_seconds: float = 5.0,
        limits: ReplyLimits = DEFAULT_LIMITS,
        keep_alive: float = 0.0,
    ) -> None:
        self.url = url.rstrip("/")
        # No compression: a reply's size on the wire must be its size in memory (64 KiB of
        # gzip inflate to 64 MiB), and a compressed reply is refused unread.
        headers = {"User-Agent": f"tillgate/{__version__}", "Accept-Encoding": "identity"}
        if credential:
            headers["Authorization"] = f"Bearer {credential}"
        self.retry_attempts = retry_attempts
        self.retry_seconds = retry_seconds
        self.limits = limits
        # A fresh connection per exchange: a sync makes a few requests a minute, and the
        # handshakes cost next to nothing. With ``keep_alive`` (seconds idle), one
        # connection is kept and used by one exchange at a time, so that the deadline of
        # the exchange running knows its socket (deadline.Kept).
        self.kept: Kept | None = Kept() if keep_alive > 0 else None
        self._one_at_a_time = threading.Lock()
        connections = httpx.Limits(max_keepalive_connections=0)
        if keep_alive > 0:
            connections = httpx.Limits(
                max_connections=1, max_keepalive_connections=1, keepalive_expiry=keep_alive
            )
        try:
            self._http = httpx.Client(
                base_url=self.url,
                transport=transport,
                verify=verify,
                timeout=timeout,
                headers=headers,
                limits=connections,
            )
        except (OSError, ValueError) as exc:  # a ca_file that is missing or not PEM
            raise SyncError(f"cannot set up TLS for head office at {self.url}: {exc}") from exc

    def close(self) -> None:
        self._http.close()
        if self.kept is not None:
            self.kept.close()

    def __enter__(self) -> HqClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ protocol

    def enroll(self, code: str) -> EnrollReply:
        """Exchange a one-time enrolment code for this till's credential (never retried)."""
        data = self._once(
            "POST",
            "/v1/enroll",
            what="enrolment reply",
            limit=self.limits.reply_bytes,
            json={"code": code},
        )
        return parse(EnrollReply, data, what="enrolment reply")

    def push(self, body: dict[str, Any]) -> PushReply:
        """Send a batch of ledger entries, coupon uses and new cards."""
        data = self._retrying(
            "POST", "/v1/sync/push", what="push reply", limit=self.limits.reply_bytes, json=body
        )
        # Counted before the reply is parsed into models (which cost far more than its
        # JSON): every conflict is one of the entries sent.
        sent, conflicts = len(body.get("entries") or ()), _count(data, ("conflicts",))
        if conflicts > sent:
            raise HqBadReply(f"head office reports {conflicts} conflicts for {sent} entries sent")
        return parse(PushReply, data, what="push reply")

    def hold(self, body: dict[str, Any]) -> HoldReply:
        """Reserve a receipt's points and coupons (``POST /v1/holds``; never retried)."""
        data = self._once("POST", "/v1/holds", what="hold reply", json=body)
        return parse(HoldReply, data, what="hold reply")

    def resolve_hold(self, body: dict[str, Any]) -> ResolveReply:
        """Tell head office how a receipt's hold ended (never retried: the push retries)."""
        data = self._once("POST", "/v1/holds/resolve", what="hold reply", json=body)
        return parse(ResolveReply, data, what="hold reply")

    def card_snapshot(self) -> CardSnapshotInfo | None:
        """The card snapshot head office offers this till, or None (it has none for it, or
        is from before snapshots: the till pulls the change pages)."""
        try:
            data = self._retrying("GET", SNAPSHOT_PATH, what="card snapshot")
        except HqRefused as exc:
            if exc.status == 404:
                return None
            raise
        return parse(CardSnapshotInfo, data, what="card snapshot")

    def card_snapshot_part(self, snapshot: int, seq: int) -> bytes:
        """Part ``seq`` of card snapshot ``snapshot``'s compressed bytes, as sent."""
        data = self._retrying(
            "GET",
            SNAPSHOT_PATH + "/parts",
            what="card snapshot part",
            limit=self.limits.part_bytes,
            params={"id": snapshot, "seq": seq},
            decode=bytes,
        )
        return bytes(data)

    def changes(self, cursor: int, limit: int, *, cards_through: int = 0) -> ChangePage:
        """One page of the change feed after ``cursor``, of at most ``limit`` changes
        (``cards_through``: the till holds every card as of that change from a snapshot).

        A page over ``page_bytes`` is asked for again with half the ``limit`` (cards with
        many lots make big pages: the till must still get through them, a few at a time),
        down to one change; only a single change over the limit is refused for good.
        """
        data, limit = self._halving(
            "/v1/sync/changes",
            what="change page",
            unit="changes",
            page_bytes=self.limits.page_bytes,
            # a compact page (sync/cardrows.py)
            params={"cursor": cursor, "cards": "rows"}
            | ({"cards_through": cards_through} if cards_through > cursor else {}),
            limit=limit,
            decode=cardrows.loads,
        )
        # Counted before the page is parsed into models (which cost far more than its
        # JSON: 2 MiB of minimal cards would be 150 MiB of them).
        program = isinstance(data, dict) and data.get("program") is not None
        size = _count(data, _PAGE_LISTS) + program
        if size > limit:
            raise HqBadReply(
                f"head office sent a change page of {size} changes, asked for at most {limit}"
            )
        return cardrows.change_page(data)

    def products(self, version: str, after: int, limit: int) -> ProductPage:
        """One page of the product list ``version``: the products after position ``after``,
        at most ``limit``; a page over ``products_bytes`` is asked for again, halved."""
        data, limit = self._halving(
            "/v1/sync/products",
            what="product list page",
            unit="products",
            page_bytes=self.limits.products_bytes,
            params={"version": version, "after": after},
            limit=limit,
        )
        size = _count(data, ("products",))
        if size > limit:
            raise HqBadReply(
                f"head office sent a product list page of {size} products, asked for at "
                f"most {limit}"
            )
        return parse(ProductPage, data, what="product list page")

    # ------------------------------------------------------------ plumbing

    def _halving(
        self,
        path: str,
        *,
        what: str,
        unit: str,
        page_bytes: int,
        params: dict[str, Any],
        limit: int,
        decode: Callable[[bytes], Any] = jsonpieces.loads,
    ) -> tuple[Any, int]:
        """GET a page of at most ``limit`` items, and the limit it was got with: a page over
        ``page_bytes`` is asked for again with half the limit, down to one item; only a
        single item over the bytes is refused for good."""
        while True:
            try:
                data = self._retrying(
                    "GET",
                    path,
                    what=what,
                    limit=page_bytes,
                    params={**params, "limit": limit},
                    decode=decode,
                )
            except _TooBig as exc:
                if limit <= 1:
                    raise
                logger.warning("%s; asking for %d %s instead of %d", exc, limit // 2, unit, limit)
                limit //= 2
                continue
            return data, limit

    def _retrying(self, method: str, path: str, **kw: Any) -> Any:
        for attempt in stamina.retry_context(
            on=_transient,
            attempts=self.retry_attempts,
            timeout=self.retry_seconds,
            wait_initial=0.2,
            wait_max=2.0,
            wait_jitter=0.5,
        ):
            with attempt:
                if attempt.num > 1:
                    logger.info("head office: %s %s, attempt %d", method, path, attempt.num)
                return self._once(method, path, **kw)
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    def _once(
        self,
        method: str,
        path: str,
        *,
        what: str = "reply",
        limit: int | None = None,
        decode: Callable[[bytes], Any] = jsonpieces.loads,
        **kw: Any,
    ) -> Any:
        """One exchange: the reply's JSON (read with ``decode``), read to at most ``limit``
        bytes (by default ``reply_bytes``) within the deadline."""
        limit = self.limits.reply_bytes if limit is None else limit
        deadline = Deadline(self.limits.seconds, self.kept)
        with deadline:
            if self.kept is None:
                status, kind, body = self._exchange(method, path, deadline, what, limit, kw)
            else:
                status, kind, body = self._on_kept(method, path, deadline, what, limit, kw)
        return json_of(body, url=self.url, path=path, status=status, kind=kind, decode=decode)

    def _on_kept(
        self, method: str, path: str, deadline: Deadline, what: str, limit: int, kw: Any
    ) -> tuple[int, str, bytes]:
        """An exchange on the kept connection, one at a time. A kept connection that head
        office (or a proxy) closed while it was idle fails before any reply: then once
        more on a new one, within the same deadline (a hold and its resolution are
        idempotent, so even one that was served is safe to send again)."""
        if not self._one_at_a_time.acquire(timeout=deadline.left):
            raise late(self.url, path, deadline)
        try:
            try:
                return self._exchange(method, path, deadline, what, limit, kw)
            except HqUnreachable as exc:
                stale = isinstance(exc.__cause__, _STALE) and not deadline.connections
                if not stale or deadline.fired or deadline.expired:
                    raise
                logger.debug("head office closed the kept connection; %s on a new one", path)
                return self._exchange(method, path, deadline, what, limit, kw)
        finally:
            self._one_at_a_time.release()

    def _exchange(
        self, method: str, path: str, deadline: Deadline, what: str, limit: int, kw: Any
    ) -> tuple[int, str, bytes]:
        """Send, and read the reply within the deadline: its status, type and body."""
        try:
            with self._http.stream(method, path, extensions={"trace": deadline.trace}, **kw) as r:
                if r.status_code >= 400:
                    body = self._read(r, self.limits.error_bytes, deadline, what="error reply")
                    raise self._refused(r, body)
                body = self._read(r, limit, deadline, what=what)
                return r.status_code, r.headers.get("content-type", "no type"), body
        except httpx.HTTPError as exc:
            if deadline.fired or deadline.expired:
                raise late(self.url, path, deadline) from exc
            raise self._unreachable(exc) from exc

    def _read(self, r: httpx.Response, limit: int, deadline: Deadline, *, what: str) -> bytes:
        """The body as sent, to at most ``limit`` bytes; for an error reply (whose status
        is the answer) a body that is compressed or too big is read no further, as if
        there were none."""
        lenient = what == "error reply"
        path = r.request.url.path
        headers = r.headers
        if not worth_reading(path, what, limit, headers.get("content-encoding"),
                             headers.get("content-length")):  # fmt: skip
            return b""
        chunks: list[bytes] = []
        size = 0
        try:
            # A transport may hand back a reply already in memory (tests' stubs do): the
            # limit still holds for what is made of it.
            for chunk in [r.content] if r.is_stream_consumed else r.iter_raw():
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    if lenient:
                        return b""
                    raise too_big(path, what, limit, "it went on; read no further")
                if deadline.expired:  # the timer would cut it; this is sooner
                    raise late(self.url, path, deadline)
        except BaseException:
            # The error's traceback keeps this frame, and stamina keeps the error, in a
            # cycle only the garbage collector breaks: let the bytes go now.
            chunks.clear()
            raise
        if deadline.fired:  # a reply that ends when its connection does, cut short
            raise late(self.url, path, deadline)
        return b"".join(chunks)

    def _unreachable(self, exc: httpx.HTTPError) -> HqUnreachable:
        if isinstance(exc, httpx.TimeoutException):
            why = f"no answer in time ({type(exc).__name__})"
        else:
            why = str(exc) or type(exc).__name__
        return HqUnreachable(f"cannot reach head office at {self.url}: {why}")

    def _refused(self, reply: httpx.Response, body: bytes) -> HqRefused:
        request = reply.request
        return refusal(
            reply.status_code, reply.reason_phrase, request.method, request.url.path, body
        )


def json_of(
    body: bytes,
    *,
    url: str,
    path: str,
    status: int,
    kind: str,
    decode: Callable[[bytes], Any] = jsonpieces.loads,
) -> Any:
    """A reply's JSON (by default its lists parsed item by item: :mod:`.jsonpieces`);
    anything else is :class:`HqBadReply`."""
    try:
        return decode(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        why = "JSON nested too deeply" if isinstance(exc, RecursionError) else "not JSON"
        raise HqBadReply(
            f"head office at {url} answered {path} with something that is {why} "
            f"(HTTP {status}, {kind})"
        ) from exc


def worth_reading(
    path: str, what: str, limit: int, encoding: str | None, length: str | None
) -> bool:
    """Whether a reply's body is to be read, by its ``Content-Encoding`` and
    ``Content-Length``. A compressed body, or one that says it is over ``limit``, is not:
    an error reply (``what`` "error reply", whose status is the answer) is then taken as
    one without a body (False); any other reply is bad (raised)."""
    lenient = what == "error reply"
    encoding = (encoding or "identity").strip().lower()
    if encoding not in ("", "identity"):
        if lenient:
            return False
        raise HqBadReply(
            f"head office answered {path} with a {encoding}-encoded {what}; this till "
            "asks for none (a compressed reply hides its size until it is inflated)"
        )
    declared = length or ""
    if declared.isdigit() and int(declared) > limit:
        if lenient:
            return False
        raise too_big(path, what, limit, f"it says {declared}; refused unread")
    return True


def too_big(path: str, what: str, limit: int, how: str) -> HqBadReply:
    return _TooBig(
        f"head office answered {path} with a {what} of more than {limit} bytes ({how}); "
        "no true reply is that big"
    )


def late(url: str, path: str, deadline: Deadline) -> HqUnreachable:
    return HqUnreachable(
        f"head office at {url} did not finish answering {path} within "
        f"{deadline.seconds:g} s; the till stopped waiting"
    )


def refusal(status: int, reason: str, method: str, path: str, body: bytes) -> HqRefused:
    """Head office's error reply (``status``, and the protocol's error body if it is one)."""
    code, message, details = f"http_{status}", reason, {}
    try:
        data = json.loads(body)
        err = parse(ErrorReply, data, what="error reply")
    except (ValueError, RecursionError, HqBadReply):
        pass  # a proxy's HTML page, say, or no body worth reading: the status must do
    else:
        code, message = err.error.code, err.error.message
        raw = data["error"]
        extra = raw.get("details") if isinstance(raw.get("details"), dict) else {}
        details = {
            **{k: v for k, v in data.items() if k != "error"},
            **{k: v for k, v in raw.items() if k not in ("code", "message", "details")},
            **extra,
        }
    hint = ""
    if status == 401:
        hint = "; enroll the till again (tillgate enroll CODE --hq URL)"
    elif status == 403 and code == "wrong_till":
        hint = "; [till] id must be the till this credential was enrolled as"
    return HqRefused(
        f"head office refused {method} {path}: "
        f"{status} {code}{': ' + message if message else ''}{hint}",
        status=status,
        code=code,
        details=details,
    )
