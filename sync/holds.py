"""The till's line to head office for online holds: one bounded round trip, no retry.

:class:`HqHolds` is the till's :class:`~tillgate.agent.usecases.ports.Reservations`.
Each call is one exchange with head office that ends at ``sync.hold_timeout_ms`` — connect,
send, wait and read, the whole of it (sync/deadline.py) — so a calculate waits at most that
long before it prices the receipt offline. The connection is kept between calls
(``KEEP_ALIVE_SECONDS``); one that head office closed while it was idle is made anew within
the same deadline. The line is :class:`~tillgate.sync.holdline.HoldLine` (lean, on the
calculate's clock); with an httpx ``transport`` (the tests' seam to a faulty network), the
sync's own :class:`~tillgate.sync.client.HqClient` over it. Any failure
(no answer, an error status, a reply that is not the protocol) is "no answer": logged,
never raised to the POS.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import httpx

from tillgate.agent.usecases.ports import HoldAsk, HoldEnd, HoldGrant
from tillgate.core.cards import mask_in_text
from tillgate.core.errors import SyncError

from .client import HqClient, KiB, ReplyLimits
from .holdline import HoldLine

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 300
# Seconds the connection to head office is kept between holds: no handshake per hold
# (over TLS on a shop's line, two round trips of the 300 ms). Under ``hq serve``'s 75 s
# (KEEP_ALIVE_SECONDS in hq/server.py) and the usual proxies', so the till lets go first.
KEEP_ALIVE_SECONDS = 50.0


class HqHolds:
    """Reserve and resolve holds at head office within ``timeout_ms``."""

    enabled = True

    def __init__(
        self,
        *,
        url: str,
        credential: str,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        transport: httpx.BaseTransport | None = None,
        verify: bool | ssl.SSLContext = True,
        keep_alive: float = KEEP_ALIVE_SECONDS,
    ) -> None:
        seconds = timeout_ms / 1000
        self.timeout_ms = timeout_ms
        # A hold reply is a few hundred bytes: 50 coupon codes are ~3 KiB.
        replies, errors = 64 * KiB, 16 * KiB
        self.client: HoldLine | HqClient
        if transport is None:
            self.client = HoldLine(
                url=url,
                credential=credential,
                seconds=seconds,
                verify=verify,
                keep_alive=keep_alive,
                reply_bytes=replies,
                error_bytes=errors,
            )
        else:
            self.client = HqClient(
                url=url,
                credential=credential,
                transport=transport,
                verify=verify,
                timeout=httpx.Timeout(seconds),
                retry_attempts=1,
                limits=ReplyLimits(reply_bytes=replies, error_bytes=errors, seconds=seconds),
                keep_alive=keep_alive,
            )

    def reserve(self, ask: HoldAsk) -> HoldGrant | None:
        body = {
            "receipt_id": ask.receipt_id,
            "card": ask.card,
            "points": ask.points,
            "exact": ask.exact,
            "coupons": list(ask.coupons),
            "seconds": min(ask.seconds, 86_400),  # head office caps it lower still
        }
        reply = self._call("reserve", self.client.hold, body)
        if reply is None:
            return None
        if reply.receipt_id != ask.receipt_id or reply.granted > ask.points:
            logger.error(
                "head office's hold reply cannot be true (receipt %s, %d points granted of %d"
                " asked): treated as no answer",
                ask.receipt_id,
                reply.granted,
                ask.points,
            )
            return None
        return HoldGrant(
            granted=reply.granted,
            available=reply.available,
            seconds=reply.seconds,
            refused=reply.refused,
            coupons={c.code: c.status for c in reply.coupons},
        )

    def resolve(self, end: HoldEnd) -> bool:
        body = {
            "receipt_id": end.receipt_id,
            "resolution": end.resolution,
            "redeemed": end.redeemed,
            "coupons": list(end.coupons),
            "card": end.card,
        }
        return self._call("resolve", self.client.resolve_hold, body) is not None

    def _call(self, what: str, fn: Any, body: dict[str, Any]) -> Any:
        try:
            return fn(body)
        except SyncError as exc:  # unreachable, refused, a bad reply: all "no answer"
            logger.warning(
                "hold %s for receipt %s: %s", what, body["receipt_id"], mask_in_text(str(exc))
            )
            return None

    def close(self) -> None:
        self.client.close()
