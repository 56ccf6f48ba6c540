"""Closing a sale at the till: confirm (commits the last calculation), cancel (releases).

Pricing is :mod:`.calculate`. Each runs in one write transaction (``BEGIN IMMEDIATE``), so
concurrent POS calls on one card are serialized and a confirm is either entirely in the
ledger or not at all. What happened is published on the event bus only after the commit.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime
from decimal import Decimal
from typing import Any

from tillgate.core import errors
from tillgate.core.clock import local
from tillgate.core.errors import IdempotencyMismatch

from ..store import cards as card_store
from ..store import facts, ledger, points, receipts, sales
from ..store.sales import Calculation, Receipt
from . import reserve
from .context import TillContext

logger = logging.getLogger(__name__)


class CouponAlreadyUsed(errors.ApiError):
    status, code = 409, "coupon_already_used"


# ---------------------------------------------------------------- confirm


def confirm(
    ctx: TillContext,
    receipt_id: str,
    *,
    paid: str | None = None,
    fiscal_id: str | None = None,
    print_items: bool = True,
) -> dict[str, Any]:
    """Commit the last calculation of a receipt to the ledger (idempotent).

    Confirmed already: the same ``paid`` and ``fiscal_id`` get the first answer again,
    different ones :class:`IdempotencyMismatch` (nothing changes either way).
    What the receipt prints (coupons, prompts) goes to the print queue once, when the
    receipt is first confirmed, unless ``print_items`` is false (interception prints it
    inside the POS's own receipt instead).
    """
    now, now_local = ctx.now()
    presented = ctx.session.current(now)
    with ctx.db.write() as conn:
        row = sales.get(conn, receipt_id)
        if row is None:
            raise errors.ReceiptNotFound(f"receipt {receipt_id} was never calculated")
        if row.done:
            assert row.response is not None
            _same_confirm(row, paid=paid, fiscal_id=fiscal_id)
            return dict(json.loads(row.response))
        if row.status == "cancelled":
            raise errors.ReceiptCancelled(f"receipt {receipt_id} was cancelled")
        calc = row.calc
        accrued: dict[str, Any] = {"points": 0, "available_from": None}
        if row.card:
            if receipt_id in ctx.sweep_in(conn, now, row.card):
                row = sales.get(conn, receipt_id)  # its own hold timed out: read it again
            assert row is not None and row.card
            if not row.hold_entry and row.redeemed:
                reserve.reserve_again(ctx, conn, row, now=now)
            _redeem(ctx, conn, row, now)
            accrued = _accrue(ctx, conn, row, now)
            _card_effects(conn, row.card, calc)
        receipts.record_uses(
            conn,
            receipt_id=receipt_id,
            card=row.card,
            day=now_local.date().isoformat(),
            uses=calc.uses,
            budget=calc.budget,
        )
        used = receipts.record_coupons(
            conn,
            receipt_id=receipt_id,
            card=row.card,
            now=now,
            used=calc.coupons_used,
            issued=[p for p in calc.printed if p["kind"] == "coupon"],
        )
        if used is not None:
            raise CouponAlreadyUsed(
                f"coupon {used} was used on another receipt meanwhile; calculate again"
            )
        response: dict[str, Any] = {
            "receipt_id": receipt_id,
            "status": "confirmed",
            "card": ctx.card_after(
                conn, row.card, now=now, now_local=now_local, source=calc.card_source
            ),
            "accrued": accrued,
            "redeemed": {
                "points": row.redeemed if row.card else 0,
                "amount": calc.redeemed_amount if row.card else "0.00",
            },
            "printed": list(calc.printed),
            "offline": ctx.offline,
        }
        sales.mark_confirmed(
            conn, receipt_id, calc=calc, paid=paid, fiscal_id=fiscal_id, response=response, now=now
        )
        _sale_facts(ctx, conn, row, paid=paid, fiscal_id=fiscal_id, now=now, now_local=now_local)
        ended = reserve.end(ctx, conn, row, resolution="confirmed", now=now)
    # Head office hears at once that the hold became a redemption (or with the next push).
    reserve.tell(ctx, ended)
    if paid is not None and paid != calc.total:
        logger.warning(
            "receipt %s confirmed with paid=%s but calculated total %s",
            receipt_id,
            paid,
            calc.total,
        )
    if presented is not None and calc.card_source == "session":
        ctx.session.clear(presented)
    # The screen shows what was paid: the confirm response has no totals, the calculation
    # it committed has.
    ctx.announce(
        response | {"subtotal": calc.subtotal, "discount": calc.discount, "total": calc.total}
    )
    if print_items and calc.printed:
        # After the commit: a printer fault never undoes a sale (the queue only queues).
        ctx.printer.submit(receipt_id, list(calc.printed))
    return response


def _same_confirm(row: Receipt, *, paid: str | None, fiscal_id: str | None) -> None:
    """A retried confirm must say what the first one said (amounts compared as amounts)."""
    first_paid = None if row.paid is None else Decimal(row.paid)
    for field, first, now, same in (
        ("paid", row.paid, paid, first_paid == (None if paid is None else Decimal(paid))),
        ("fiscal_id", row.fiscal_id, fiscal_id, row.fiscal_id == fiscal_id),
    ):
        if not same:
            raise IdempotencyMismatch(
                f"receipt {row.receipt_id} was confirmed with {field} "
                f"{_shown(first)}; this confirm says {_shown(now)}. Nothing was changed: "
                "resend the first confirm's body to get its answer again",
                details={"field": field, "first": first},
            )


def _shown(value: str | None) -> str:
    return "nothing" if value is None else repr(value)


def _redeem(ctx: TillContext, conn: sqlite3.Connection, row: Receipt, now: datetime) -> None:
    """Turn the receipt's hold into a redemption (or spend afresh if the hold timed out)."""
    card, want = row.card, row.redeemed
    if not card or not want:
        return
    if row.hold_entry:
        points.release(
            conn,
            till=ctx.settings.till,
            card=card,
            hold_entry=row.hold_entry,
            points=row.hold_points,
            receipt_id=row.receipt_id,
            now=now,
            note="confirmed",
        )
    else:
        # The hold timed out: spend only if the points are still there.
        bal = ledger.balance(conn, card, now)
        if bal.redeemable < want:
            raise errors.InsufficientPoints(
                f"the hold on {want} points timed out and only "
                f"{bal.redeemable} are spendable now; calculate again"
            )
    entry = ledger.append(
        conn,
        till=ctx.settings.till,
        card=card,
        kind="redeem",
        points=-want,
        at=now,
        receipt_id=row.receipt_id,
        ref=row.hold_entry,
    )
    taken = 0
    if row.hold_entry:
        # Spend the very lots the hold set aside, even if one expired since.
        taken = ledger.spend_reserved(conn, redeem_entry=entry, hold_entry=row.hold_entry)
    if want > taken:
        ledger.consume(conn, entry_id=entry, card=card, points=want - taken, now=now)


def _accrue(
    ctx: TillContext, conn: sqlite3.Connection, row: Receipt, now: datetime
) -> dict[str, Any]:
    """Credit the points the receipt earns as one lot; say when they become spendable."""
    if not row.card or row.accrued <= 0:
        return {"points": 0, "available_from": None}
    program = ctx.catalog_in(conn).program
    _, available = points.credit(
        conn,
        till=ctx.settings.till,
        card=row.card,
        kind="accrue",
        points=row.accrued,
        now=now,
        delay_days=program.accrual_delay_days,
        expiry_days=program.expiry_days,
        receipt_id=row.receipt_id,
    )
    return {
        "points": row.accrued,
        "available_from": local(available, ctx.settings.timezone).date().isoformat(),
    }


def _sale_facts(
    ctx: TillContext,
    conn: sqlite3.Connection,
    row: Receipt,
    *,
    paid: str | None,
    fiscal_id: str | None,
    now: datetime,
    now_local: datetime,
) -> None:
    """What head office learns of the sale: the engine's inputs and outcome, and the rest."""
    facts.add(
        conn,
        kind="sale",
        key=row.receipt_id,
        receipt_id=row.receipt_id,
        body={
            "receipt_id": row.receipt_id,
            "till": ctx.settings.till,
            "store": ctx.settings.store,
            "card": row.card,
            "confirmed_at": now.isoformat(),
            "local_time": now_local.isoformat(),
            "offline": ctx.offline,
            "paid_reported": paid,
            "fiscal_id": fiscal_id,
            "total": row.calc.total,
            "accrued": row.accrued if row.card else 0,
            "redeemed": row.redeemed if row.card else 0,
            # What the chain-wide counters count (hq/counters.py): the promotions that
            # applied, the points each budgeted one gave, the card's stamp counts after.
            "uses": list(row.calc.uses),
            "budget": dict(row.calc.budget),
            "stamps": dict(row.calc.stamps),
            "calculation": row.calc.facts,  # None: calculated before facts were recorded
        },
        now=now,
    )


def _card_effects(conn: sqlite3.Connection, card: str, calc: Calculation) -> None:
    """A stamp more for each stamp card of the receipt (this till's own count; the other
    tills' come from head office), and the birthday bonus marked as given this year."""
    for pid in calc.stamps:
        receipts.add_stamps(conn, card, pid)
    if calc.birthday_points and calc.birthday_year:
        card_store.set_birthday_bonus(conn, card, calc.birthday_year)


# ---------------------------------------------------------------- cancel


def cancel(ctx: TillContext, receipt_id: str) -> dict[str, Any]:
    """Abandon a calculated receipt and release its hold (idempotent)."""
    now = ctx.clock.now()
    ended = None
    with ctx.db.write() as conn:
        row = sales.get(conn, receipt_id)
        if row is None:
            raise errors.ReceiptNotFound(f"receipt {receipt_id} was never calculated")
        if row.done:
            raise errors.ReceiptAlreadyConfirmed(
                f"receipt {receipt_id} is confirmed; use refund to return it"
            )
        if row.status == "calculated":
            ended = reserve.end(ctx, conn, row, resolution="cancelled", now=now)
            if row.hold_entry and row.card:
                points.release(
                    conn,
                    till=ctx.settings.till,
                    card=row.card,
                    hold_entry=row.hold_entry,
                    points=row.hold_points,
                    receipt_id=receipt_id,
                    now=now,
                    note="cancelled",
                )
            sales.mark_cancelled(conn, receipt_id, now=now)
    reserve.tell(ctx, ended)
    response = {"receipt_id": receipt_id, "status": "cancelled", "offline": ctx.offline}
    ctx.announce(response)
    return response
