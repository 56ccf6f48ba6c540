"""Checks of a chain till's head office: reachable, really HQ, credential accepted, clock.

Head office is asked twice, each within :data:`HQ_TIMEOUT`: ``GET /healthz`` (no credential:
is it there, is it a tillgate head office, which one, and its ``Date`` header for the clock)
and one change-feed page from beyond any change (the cheapest call that proves the
credential; HQ notes the till as seen, as after any sync).
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from tillgate.core import __version__
from tillgate.core.clock import Clock, local
from tillgate.core.config import Config
from tillgate.core.errors import ConfigError, HqRefused, SyncError

from .report import Check, duration, fail, ok, os_why, skip, warn

HQ_TIMEOUT = 3.0  # seconds head office has to answer one request
MAX_SKEW = 120.0  # seconds the till's clock may differ from head office's
_FAR_CURSOR = 1 << 62  # a change-feed cursor beyond any change: an empty page

DOWN_FIX = "start head office or check [hq] url; the till keeps selling offline meanwhile"
ENROL_FIX = (
    "enrol the till: at head office `tillgate hq enroll-code --store S --till T`, "
    "then here `tillgate enroll CODE --hq {url}`"
)
CLOCK_FIX = (
    "turn on time sync: `timedatectl set-ntp true` on Linux, the Windows Time service "
    "(`w32tm /resync`) on Windows. The till's clock decides promotion days and hours, when "
    "accrued points become spendable and when they expire, and whether a coupon is still valid"
)


@dataclass(frozen=True, kw_only=True)
class HqProbe:
    """What one ``GET /healthz`` at head office showed."""

    check: Check
    is_hq: bool = False
    instance: str = ""
    verify: bool | ssl.SSLContext = True
    hq_date: datetime | None = None  # the reply's Date header
    till_time: datetime | None = None  # the till's clock halfway through the request


def probe(config: Config, clock: Clock) -> HqProbe:
    """Ask head office's ``/healthz``; the hq line and what the other checks need."""
    from tillgate.sync.wiring import tls_verify

    url = config.hq.url
    try:
        # tls_verify() logs a warning for verify = false: the hq line says it instead.
        verify = tls_verify(config) if config.hq.verify else False
    except ConfigError as exc:
        return HqProbe(check=fail("hq", str(exc), "set [hq] ca_file to a readable PEM file"))
    headers = {"User-Agent": f"tillgate/{__version__} doctor"}
    try:
        with httpx.Client(base_url=url, timeout=HQ_TIMEOUT, verify=verify, headers=headers) as c:
            before, start = clock.now(), time.monotonic()
            reply = c.get("/healthz")
            till_time = before + timedelta(seconds=(time.monotonic() - start) / 2)
    except httpx.HTTPError as exc:
        why = net_why(exc)
        fix = DOWN_FIX
        if why.startswith("TLS: "):
            fix = "set [hq] ca_file to the CA that signed head office's certificate"
        elif why.startswith("TLS"):
            fix = (
                "does head office serve https on that port (`hq serve --tls-cert …`)? "
                "If not, [hq] url must start with http://"
            )
        elif why == "host name not found":
            fix = "check the host name in [hq] url and the till's DNS settings"
        return HqProbe(check=fail("hq", f"cannot reach {url}: {why}", fix))
    try:
        body = reply.json()
    except ValueError:
        body = None
    instance = body.get("hq") if isinstance(body, dict) else None
    if reply.status_code != 200 or not isinstance(instance, str):
        pos = " (that is a till's POS API)" if body == {"status": "ok"} else ""
        return HqProbe(
            check=fail(
                "hq",
                f"{url} answers, but not as a tillgate head office "
                f"(GET /healthz: HTTP {reply.status_code}){pos}",
                "point [hq] url at `tillgate hq serve` (port 8700 unless told otherwise)",
            )
        )
    try:
        date: datetime | None = parsedate_to_datetime(reply.headers.get("date", ""))
    except (TypeError, ValueError):
        date = None
    ms = round(reply.elapsed.total_seconds() * 1000)
    detail = f"{url}: head office {instance[:8]} answers in {ms} ms"
    check = ok("hq", detail)
    if verify is False and url.startswith("https:"):
        check = warn(
            "hq",
            f"{detail}; its certificate is NOT checked ([hq] verify = false)",
            "set [hq] verify = true (and ca_file for a private CA); never skip it in a shop",
        )
    return HqProbe(
        check=check,
        is_hq=True,
        instance=instance,
        verify=verify,
        hq_date=date if date is not None and date.tzinfo is not None else None,
        till_time=till_time,
    )


def net_why(exc: httpx.HTTPError, timeout: float = HQ_TIMEOUT) -> str:
    """A short reason a request got no answer: connection refused, timed out, TLS, DNS."""
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            why = seen.verify_message or seen.reason
            return f"TLS: head office's certificate is not trusted ({why})"
        if isinstance(seen, ssl.SSLError):
            return f"TLS failed ({seen.reason or seen})"
        if isinstance(seen, socket.gaierror):
            return "host name not found"
        if isinstance(seen, OSError) and seen.errno is not None:
            return os_why(seen)
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return "connection refused" if "refused" in text.lower() else text or type(exc).__name__


def credential(config: Config, hq: HqProbe) -> Check:
    """The credential file exists, is this till's, and head office accepts it."""
    from tillgate.sync.client import HqClient
    from tillgate.sync.wiring import credential as load_credential

    url = config.hq.url
    path = Path(config.hq.credential_file)
    if not path.exists():
        return fail(
            "credential",
            f"{path}: missing: this till is not enrolled with head office",
            ENROL_FIX.format(url=url),
        )
    try:
        cred = load_credential(config)
    except ConfigError as exc:  # damaged, or enrolled as another till
        return fail("credential", str(exc), ENROL_FIX.format(url=url))
    who = f"{path}: till {cred.till} of store {cred.store}"
    if not hq.is_hq:
        return ok("credential", f"{who}; not checked with head office (not reached)")
    if cred.hq != hq.instance:
        return fail(
            "credential",
            f"{who}, enrolled at head office {cred.hq[:8]}, but {url} is head office "
            f"{hq.instance[:8]}",
            "check [hq] url, or " + ENROL_FIX.format(url=url),
        )
    try:
        with HqClient(
            url=url,
            credential=cred.credential,
            verify=hq.verify,
            timeout=httpx.Timeout(HQ_TIMEOUT),
            retry_attempts=1,
            retry_seconds=HQ_TIMEOUT,
        ) as client:
            client.changes(_FAR_CURSOR, 1)
    except HqRefused as exc:
        fix = ENROL_FIX.format(url=url)
        if exc.code == "wrong_till":
            fix = "set [till] id to the till this credential was enrolled as"
        # The client's own hint ("; enroll the till again …") is the fix, said once.
        said = re.sub(r"; (enroll the till again|\[till\] id must be) .*$", "", str(exc))
        return fail("credential", f"{who}: {said}", fix)
    except SyncError as exc:
        return warn(
            "credential",
            f"{who}; not confirmed by head office: {exc}",
            "run doctor again; if it stays, see head office's log",
        )
    return ok("credential", f"{who}, accepted by head office")


def clock_skew(config: Config, hq: HqProbe) -> Check:
    """The till's clock against the ``Date`` of head office's reply."""
    if not hq.is_hq or hq.till_time is None:
        return skip("clock", "not compared: head office not reached")
    if hq.hq_date is None:
        return skip("clock", "not compared: head office's reply had no Date header")
    # Date has whole seconds: head office's time was somewhere in the second it names.
    skew = (hq.till_time - hq.hq_date).total_seconds() - 0.5
    till = local(hq.till_time, config.till.zone)
    here = f"till time {till:%Y-%m-%d %H:%M:%S} {config.till.timezone}"
    if abs(skew) > MAX_SKEW:
        side = "ahead of" if skew > 0 else "behind"
        return fail(
            "clock",
            f"the till's clock is {duration(abs(skew))} {side} head office's ({here})",
            CLOCK_FIX,
        )
    return ok("clock", f"within {max(1, round(abs(skew)))} s of head office's ({here})")
