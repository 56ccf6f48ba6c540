"""An online chain till's round trip to head office inside calculate and confirm.

Head office is the authority on what a card can spend chain-wide (docs/sync-protocol.md,
"Online holds"). So an online calculate that redeems points or applies coupons first
reserves them there, in one round trip bounded by ``sync.hold_timeout_ms``:

* head office grants up to what is available chain-wide; the receipt redeems at most what
  was granted (``"max"`` takes the grant, an exact number it cannot have is
  ``409 insufficient_points``), and coupon codes another open or confirmed receipt holds
  are rejected (``in_use``, ``used``, ``revoked``);
* no answer in time: this receipt is priced by the offline rules (``program.offline``),
  the response says ``"offline": true`` with a cashier hint, and the next push releases
  whatever head office may have reserved for it (``store/hqholds.py``). No retry.

A calculate that redeems nothing and applies no coupon, and had reserved nothing before,
makes no round trip at all.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tillgate.core import errors
from tillgate.core.cards import mask
from tillgate.core.rules import model as m

from ..store import hqholds, sales, syncstate
from .context import TillContext
from .ports import HoldAsk, HoldEnd, HoldGrant

logger = logging.getLogger(__name__)

# Head office's word for a code it would not reserve is the reason the POS sees.
REFUSED = {"used": "used", "in_use": "in_use", "revoked": "revoked"}


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """What head office said for one calculate (None fields: no round trip was made)."""

    asked: bool  # a round trip was made
    grant: HoldGrant | None  # None with ``asked``: no answer in time (priced offline)

    @property
    def fallback(self) -> bool:
        return self.asked and self.grant is None

    def refused_codes(self) -> dict[str, str]:
        """Coupon codes head office would not reserve, with the reason the POS sees."""
        if self.grant is None:
            return {}
        return {
            code: REFUSED.get(status, status)
            for code, status in self.grant.coupons.items()
            if status != "reserved"
        }


NOT_ASKED = Verdict(asked=False, grant=None)


def online(ctx: TillContext) -> bool:
    """Whether this till reserves at head office now (a chain till that is not offline)."""
    return ctx.reservations.enabled and not ctx.offline


def ask(
    ctx: TillContext,
    conn: sqlite3.Connection,
    *,
    receipt_id: str,
    card: str | None,
    request: m.Request,
    result: m.Result,
) -> Verdict:
    """Reserve what ``result`` would redeem and apply, if anything needs reserving."""
    before = hqholds.get(conn, receipt_id)
    points = result.redeemed_points if card else 0
    codes = tuple(sorted(result.coupons_applied))
    had = before is not None and before.state == "held" and (before.granted or before.coupons)
    if not points and not codes and not had:
        return NOT_ASKED
    grant = ctx.reservations.reserve(
        HoldAsk(
            receipt_id=receipt_id,
            card=card,
            points=points,
            exact=isinstance(request.redeem, int) and request.redeem > 0,
            coupons=codes,
            seconds=ctx.settings.hold_seconds,
        )
    )
    if grant is not None and grant.refused == "insufficient_points":
        raise errors.InsufficientPoints(
            f"{points} points asked, but the card has {grant.available} available across the "
            "chain now (other tills hold the rest)",
            details={"redeemable": min(grant.available, result.redeem_max)},
        )
    if grant is not None and grant.refused:
        raise errors.ReceiptAlreadyConfirmed(
            f"head office has receipt {receipt_id} confirmed already; use refund to change it"
        )
    return Verdict(asked=True, grant=grant)


def recompute_needed(verdict: Verdict, result: m.Result, card: str | None) -> bool:
    """Whether the grant takes anything away from what the engine first decided."""
    if verdict.grant is None:
        return verdict.fallback
    wanted = result.redeemed_points if card else 0
    return verdict.grant.granted < wanted or bool(verdict.refused_codes())


def capped(request: m.Request, context: m.Context, verdict: Verdict) -> tuple[m.Request, m.Context]:
    """The engine's inputs with the grant applied: fewer points, no refused coupons."""
    if verdict.grant is None:
        return request, context
    refused = verdict.refused_codes()
    cap = verdict.grant.granted
    if context.redeem_cap is not None:
        cap = min(cap, context.redeem_cap)
    return (
        replace(request, coupons=tuple(c for c in request.coupons if c.code not in refused)),
        replace(context, redeem_cap=cap),
    )


def record(
    ctx: TillContext,
    conn: sqlite3.Connection,
    *,
    receipt_id: str,
    card: str | None,
    verdict: Verdict,
    result: m.Result,
    now: datetime,
) -> int | None:
    """Keep what head office reserved for the receipt; the seconds its hold lasts."""
    if not verdict.asked:
        return None
    grant = verdict.grant
    if grant is None:
        hqholds.unknown(conn, receipt_id=receipt_id, card=card, now=now)
        logger.warning(
            "head office did not answer within the hold timeout: receipt %s%s priced offline",
            receipt_id,
            f" (card {mask(card)})" if card else "",
        )
        return None
    hqholds.put(
        conn,
        receipt_id=receipt_id,
        card=card,
        granted=grant.granted,
        coupons=[c for c, s in grant.coupons.items() if s == "reserved"],
        state="held",
        expires_at=now + timedelta(seconds=grant.seconds),
        now=now,
    )
    return grant.seconds


def forget(ctx: TillContext, receipt_id: str, card: str | None, *, now: datetime) -> None:
    """A calculate that asked head office failed after the question: whatever head office
    holds for the receipt is released with the next push (``unknown``)."""
    try:
        with ctx.db.write() as conn:
            hqholds.unknown(conn, receipt_id=receipt_id, card=card, now=now)
    except errors.TillgateError as exc:  # the hold then ends with its time at head office
        logger.warning("receipt %s: cannot note its hold at head office: %s", receipt_id, exc)


def end(
    ctx: TillContext,
    conn: sqlite3.Connection,
    row: sales.Receipt,
    *,
    resolution: str,
    now: datetime,
) -> HoldEnd | None:
    """Record, in the confirm's or cancel's transaction, how the receipt's hold ended."""
    redeemed = row.redeemed if resolution == "confirmed" and row.card else 0
    held = hqholds.resolve(conn, row.receipt_id, resolution=resolution, redeemed=redeemed, now=now)
    if held is None:
        return None
    used = tuple(row.calc.coupons_used) if resolution == "confirmed" else ()
    return HoldEnd(
        receipt_id=row.receipt_id,
        resolution="confirmed" if resolution == "confirmed" else "cancelled",
        redeemed=redeemed,
        coupons=used,
        card=row.card,
    )


def tell(ctx: TillContext, ended: HoldEnd | None) -> None:
    """After the commit: tell head office at once; if it does not hear, the push will."""
    if ended is None or not ctx.reservations.enabled:
        return
    if ctx.reservations.resolve(ended):
        with ctx.db.write() as conn:
            hqholds.mark_sent(conn, [ended.receipt_id], now=ctx.clock.now())


def reserve_again(
    ctx: TillContext, conn: sqlite3.Connection, row: sales.Receipt, *, now: datetime
) -> None:
    """Confirm after the receipt's hold timed out: reserve its points again, exactly.

    Head office's hold ended with the till's; online, the points must be reserved again
    before they are spent. Offline, or with no answer, they are spent as offline: within
    ``program.offline`` for this till, as if the receipt were calculated now.
    """
    if not ctx.settings.chain or not row.card or not row.redeemed:
        return
    grant = None
    if online(ctx):
        grant = ctx.reservations.reserve(
            HoldAsk(
                receipt_id=row.receipt_id,
                card=row.card,
                points=row.redeemed,
                exact=True,
                coupons=tuple(row.calc.coupons_used),
                seconds=ctx.settings.hold_seconds,
            )
        )
    if grant is None:
        policy = ctx.catalog_in(conn).program.offline
        cap = syncstate.offline_cap(
            conn, policy=policy, card=row.card, receipt_id=row.receipt_id, now=now
        )
        if row.redeemed > cap.points:
            raise errors.OfflineLimit(
                f"the hold on {row.redeemed} points timed out, and without head office this "
                f"till may spend at most {cap.points} now; calculate again",
                details={"redeemable": cap.points, "limit": cap.reason},
            )
        return
    if grant.refused or grant.granted < row.redeemed:
        raise errors.InsufficientPoints(
            f"the hold on {row.redeemed} points timed out and only {grant.available} are "
            "available across the chain now; calculate again"
        )
    hqholds.put(
        conn,
        receipt_id=row.receipt_id,
        card=row.card,
        granted=grant.granted,
        coupons=[c for c, s in grant.coupons.items() if s == "reserved"],
        state="held",
        expires_at=now + timedelta(seconds=grant.seconds),
        now=now,
    )
