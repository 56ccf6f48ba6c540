"""The HTTP client a till talks to head office with (``docs/sync-protocol.md``).

httpx's transport is the seam: the daemon uses the real network, tests plug in an
``httpx.MockTransport`` or a real loopback server. Every httpx exception and every error
reply is translated here into the sync branch of the error tree:

* :class:`HqUnreachable` — no answer (connection refused, DNS, TLS, timeout);
* :class:`HqRefused`     — HQ answered an error (``status`` + protocol ``code``);
* :class:`HqBadReply`    — HQ answered something that is not the protocol.

Transient failures (no answer, 5xx, 429) are retried a few times with jittered back-off
(stamina), bounded by ``retry_seconds`` in total: sync runs on its own thread, so a
retry never holds up a sale, but a sync attempt must still end soon so the next one can
start on time. A push is idempotent at HQ, so retrying one whose reply was lost is safe.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import httpx
import stamina

from tillgate.core import __version__
from tillgate.core.errors import HqBadReply, HqRefused, HqUnreachable, SyncError

from .wire import ChangePage, EnrollReply, ErrorReply, PushReply, parse

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def _transient(exc: Exception) -> bool:
    if isinstance(exc, HqUnreachable):
        return True
    return isinstance(exc, HqRefused) and (exc.status >= 500 or exc.status == 429)


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
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"tillgate/{__version__}"}
        if credential:
            headers["Authorization"] = f"Bearer {credential}"
        self.retry_attempts = retry_attempts
        self.retry_seconds = retry_seconds
        try:
            self._http = httpx.Client(
                base_url=self.url,
                transport=transport,
                verify=verify,
                timeout=timeout,
                headers=headers,
            )
        except (OSError, ValueError) as exc:  # a ca_file that is missing or not PEM
            raise SyncError(f"cannot set up TLS for head office at {self.url}: {exc}") from exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HqClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ protocol

    def enroll(self, code: str) -> EnrollReply:
        """Exchange a one-time enrolment code for this till's credential (never retried)."""
        data = self._once("POST", "/v1/enroll", json={"code": code})
        return parse(EnrollReply, data, what="enrolment reply")

    def push(self, body: dict[str, Any]) -> PushReply:
        """Send a batch of ledger entries, coupon uses and new cards."""
        data = self._retrying("POST", "/v1/sync/push", json=body)
        return parse(PushReply, data, what="push reply")

    def changes(self, cursor: int, limit: int) -> ChangePage:
        """One page of the change feed after ``cursor``."""
        data = self._retrying("GET", "/v1/sync/changes", params={"cursor": cursor, "limit": limit})
        return parse(ChangePage, data, what="change page")

    # ------------------------------------------------------------ plumbing

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

    def _once(self, method: str, path: str, **kw: Any) -> Any:
        try:
            reply = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if reply.status_code >= 400:
            raise self._refused(reply)
        try:
            return reply.json()
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise HqBadReply(
                f"head office at {self.url} answered {path} with something that is not JSON "
                f"(HTTP {reply.status_code}, {reply.headers.get('content-type', 'no type')})"
            ) from exc

    def _unreachable(self, exc: httpx.HTTPError) -> HqUnreachable:
        if isinstance(exc, httpx.TimeoutException):
            why = f"no answer in time ({type(exc).__name__})"
        else:
            why = str(exc) or type(exc).__name__
        return HqUnreachable(f"cannot reach head office at {self.url}: {why}")

    def _refused(self, reply: httpx.Response) -> HqRefused:
        status = reply.status_code
        code, message, details = f"http_{status}", reply.reason_phrase, {}
        try:
            data = reply.json()
            err = parse(ErrorReply, data, what="error reply")
        except (ValueError, HqBadReply):
            pass  # a proxy's HTML page, say: the status alone must do
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
            f"head office refused {reply.request.method} {reply.request.url.path}: "
            f"{status} {code}{': ' + message if message else ''}{hint}",
            status=status,
            code=code,
            details=details,
        )
