"""A sale at the till: calculate (may hold points), confirm (commits), cancel (releases).

Each runs in one write transaction (``BEGIN IMMEDIATE``), so concurrent POS calls on one
card are serialized, a hold placed by one calculate is seen by the next, and a confirm is
either entirely in the ledger or not at all. What happened is published on the event bus
only after the commit.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from tillgate.core import errors
from tillgate.core.cardfile import CardRecord
from tillgate.core.cards import mask
from tillgate.core.clock import local
from tillgate.core.rules import model as m
from tillgate.core.rules.coupons import canonical, promotion_tag, serial_for
from tillgate.core.rules.engine import Catalog, evaluate
from tillgate.core.rules.hints import offline_hint

from ..store import cards as card_store
from ..store import ledger, points, receipts, sales, syncstate
from ..store.sales import Calculation, PaidLine, Receipt
from . import responses
from .context import TillContext
from .request import SaleRequest

logger = logging.getLogger(__name__)

_OFFLINE_WHY = {
    "max_hours": "no sync for longer than program.offline.max_hours",
    "per_card": "program.offline.redeem_per_card for this card",
    "per_till": "program.offline.redeem_per_till for this till",
}


class CouponAlreadyUsed(errors.ApiError):
    status, code = 409, "coupon_already_used"


# ---------------------------------------------------------------- calculate


@dataclass(frozen=True, kw_only=True)
class _Who:
    """The card a receipt is for, and where it came from."""

    rec: CardRecord | None
    source: str | None


def calculate(ctx: TillContext, req: SaleRequest, *, money_off: bool = True) -> dict[str, Any]:
    """Price a basket; may place (or replace) a hold on the points it would redeem."""
    if len(req.lines) > ctx.settings.max_lines:
        raise errors.PayloadTooLarge(
            f"the basket has {len(req.lines)} lines; at most {ctx.settings.max_lines} "
            "are accepted (pos_api.max_lines)"
        )
    now, now_local = ctx.now()
    with ctx.db.write() as conn:
        catalog = ctx.catalog_in(conn)
        before = _open_receipt(conn, req.receipt_id)
        who = _whose(ctx, conn, req, before, now=now)
        card = who.rec.number if who.rec else None
        ctx.sweep_in(conn, now, card)
        # The sweep may have released this receipt's own timed-out hold: read it again.
        before = sales.get(conn, req.receipt_id)
        own_hold = before.hold_points if before and before.hold_entry and before.card == card else 0
        customer = (
            ctx.customer(
                conn, who.rec, now=now, now_local=now_local, catalog=catalog, own_hold=own_hold
            )
            if who.rec
            else None
        )
        coupons, rejected = _coupons(ctx, conn, req.coupons, catalog)
        cap = (
            syncstate.offline_cap(
                conn,
                policy=catalog.program.offline,
                card=card,
                receipt_id=req.receipt_id,
                now=now,
            )
            if ctx.offline and card is not None
            else None
        )
        result = evaluate(
            catalog,
            m.Request(
                lines=_engine_lines(req),
                customer=customer,
                coupons=tuple(coupons),
                redeem=req.redeem,
                money_off=money_off,
            ),
            m.Context(
                now=now_local,
                store=ctx.settings.store,
                till=ctx.settings.till,
                language=ctx.settings.language,
                budget_used=points.budgets_used(
                    conn, [p.id for p in catalog.by_id.values() if p.limits.budget_points]
                ),
                redeem_cap=cap.points if cap is not None else None,
            ),
        )
        _check_redeem(req, result, cap)
        hold_entry, hold_points, hold_expires = _hold(
            ctx, conn, req.receipt_id, before, card, result.redeemed_points if card else 0, now
        )
        response = responses.calculation(
            req,
            result,
            # every open hold on the card counts, this receipt's included
            card=responses.card_out(
                customer,
                tier=result.tier,
                source=who.source,
                held=ledger.open_held(conn, card) if card else 0,
            ),
            rejected=rejected,
            prints=_prints(ctx, req.receipt_id, result, now_local.date()),
            available_from=(
                now_local.date() + timedelta(days=catalog.program.accrual_delay_days)
                if result.accrued_points
                else None
            ),
            offline=ctx.offline,
        )
        if cap is not None:
            hint = offline_hint(
                reason=cap.reason,
                points=cap.points,
                max_hours=cap.policy.max_hours,
                language=ctx.settings.language,
            )
            response["hints"] = [
                {"kind": hint.kind, "text": hint.text, "promotion": None},
                *response["hints"],
            ]
        sales.save_calculation(
            conn,
            receipt_id=req.receipt_id,
            card=card,
            request=_request_json(req),
            calc=_record(result, coupons, response, who.source),
            hold_entry=hold_entry,
            hold_points=hold_points,
            hold_expires_at=hold_expires,
            accrued=result.accrued_points,
            redeemed=result.redeemed_points,
            paid_kop=result.total,
            now=now,
        )
    # "Printer out of paper: coupons are queued" belongs on the cashier's screen.
    response["hints"] = [*response["hints"], *ctx.devices.hints()]
    ctx.announce(response | {"status": "calculated"})
    ctx.events.publish(
        "hints",
        {
            "receipt_id": response["receipt_id"],
            "card": response["card"],
            "hints": response["hints"],
        },
    )
    return response


def _open_receipt(conn: sqlite3.Connection, receipt_id: str) -> Receipt | None:
    """The receipt as calculated before, if it may still be calculated again."""
    before = sales.get(conn, receipt_id)
    if before is not None and before.done:
        raise errors.ReceiptAlreadyConfirmed(
            f"receipt {receipt_id} is already confirmed; use refund to change it"
        )
    if before is not None and before.status == "cancelled":
        raise errors.ReceiptCancelled(f"receipt {receipt_id} was cancelled")
    return before


def _whose(
    ctx: TillContext,
    conn: sqlite3.Connection,
    req: SaleRequest,
    before: Receipt | None,
    *,
    now: datetime,
) -> _Who:
    """Which card: the request's, else this receipt's earlier one, else the session's."""
    raw: str | None = req.card
    source: str | None = None
    if raw is not None:
        source = "request"
    elif before is not None and before.card:
        raw, source = before.card, before.calc.card_source or "request"
    else:
        presented = ctx.session.current(now)
        if presented is not None:
            raw, source = presented.raw, "session"
    if raw is None:
        return _Who(rec=None, source=None)
    rec = ctx.resolve_card(conn, raw, now=now, register=True)
    if rec.status == "blocked":
        raise errors.CardBlocked(f"card {mask(rec.number)} is blocked")
    return _Who(rec=rec, source=source)


def _coupons(
    ctx: TillContext, conn: sqlite3.Connection, codes: tuple[str, ...], catalog: Catalog
) -> tuple[list[m.Coupon], list[dict[str, str]]]:
    """The codes this till can honour, and the refused ones with their reason."""
    accepted: list[m.Coupon] = []
    rejected: list[dict[str, str]] = []
    by_tag = {
        promotion_tag(pid): pid
        for pid, p in catalog.by_id.items()
        if p.reward.kind == "coupon" or p.when.coupon
    }
    for raw in codes:
        try:
            code = canonical(raw)
            signed = ctx.signer.verify(code)
        except errors.TillgateError:
            rejected.append({"code": raw, "reason": "invalid"})
            continue
        promo = by_tag.get(signed.promotion_tag)
        refused = "unknown_promotion" if promo is None else receipts.coupon_state(conn, code)
        if refused is not None or promo is None:
            rejected.append({"code": code, "reason": refused or "unknown_promotion"})
        else:
            accepted.append(m.Coupon(code=code, promotion_id=promo, valid_until=signed.valid_until))
    return accepted, rejected


def _engine_lines(req: SaleRequest) -> tuple[m.Line, ...]:
    return tuple(
        m.Line(
            index=i,
            sku=ln.sku,
            name=ln.name,
            qty=ln.qty,
            price=ln.price,
            category=ln.category,
            tags=ln.tags,
            no_discount=ln.no_discount,
            is_weighed=ln.weighed,
        )
        for i, ln in enumerate(req.lines)
    )


def _check_redeem(req: SaleRequest, result: m.Result, cap: syncstate.OfflineCap | None) -> None:
    """Refuse a number of points the receipt cannot take, saying why and what it can."""
    if not isinstance(req.redeem, int) or req.redeem <= result.redeem_max:
        return
    if cap is not None and req.redeem > cap.points:
        raise errors.OfflineLimit(
            f"{req.redeem} points asked, but offline this till may spend at most "
            f"{cap.points} now ({_OFFLINE_WHY[cap.reason]})",
            details={"redeemable": result.redeem_max, "limit": cap.reason},
        )
    raise errors.InsufficientPoints(
        f"{req.redeem} points asked, at most {result.redeem_max} can be spent on this receipt",
        details={"redeemable": result.redeem_max},
    )


def _hold(
    ctx: TillContext,
    conn: sqlite3.Connection,
    receipt_id: str,
    before: Receipt | None,
    card: str | None,
    want: int,
    now: datetime,
) -> tuple[str | None, int, str | None]:
    """Hold the points this receipt would spend, replacing any earlier hold of it."""
    hold_entry = before.hold_entry if before is not None else None
    hold_points = before.hold_points if before is not None else 0
    if before is not None and hold_entry and (want != hold_points or before.card != card):
        points.release(
            conn,
            till=ctx.settings.till,
            card=before.card or "",
            hold_entry=hold_entry,
            points=hold_points,
            receipt_id=receipt_id,
            now=now,
            note="basket changed",
        )
        hold_entry, hold_points = None, 0
    if want and card and not hold_entry:
        hold_entry = points.hold(
            conn, till=ctx.settings.till, card=card, points=want, receipt_id=receipt_id, now=now
        )
        hold_points = want
    expires = ledger.ts(now + timedelta(seconds=ctx.settings.hold_seconds)) if hold_entry else None
    return hold_entry, hold_points, expires


def _prints(
    ctx: TillContext, receipt_id: str, result: m.Result, today: date
) -> list[dict[str, Any]]:
    """What will be printed; coupons get their signed code (the same for the same receipt)."""
    out: list[dict[str, Any]] = []
    for item in result.print:
        if item.kind == "coupon":
            valid_until = item.valid_until or today
            code = ctx.signer.issue(
                promotion_id=item.promotion,
                serial=serial_for(ctx.settings.till, receipt_id, item.promotion),
                valid_until=valid_until,
            )
            out.append(responses.coupon_print(item, code=code, valid_until=valid_until))
        else:
            out.append(responses.message_print(item))
    return out


def _record(
    result: m.Result,
    coupons: list[m.Coupon],
    response: dict[str, Any],
    source: str | None,
) -> Calculation:
    """What confirm and refund will need of this calculation."""
    qtys = {ln["index"]: ln["qty"] for ln in response["lines"]}
    return Calculation(
        card_source=source,
        lines=tuple(
            PaidLine(index=ln.index, qty=qtys[ln.index], paid=ln.paid, eligible=ln.eligible)
            for ln in result.lines
        ),
        uses=tuple(result.uses),
        stamps=dict(result.stamps),
        budget=dict(result.budget_points),
        birthday_points=result.birthday_points,
        birthday_year=result.birthday_year,
        coupons_used={c.code: c.promotion_id for c in coupons if c.code in result.coupons_applied},
        printed=tuple(response["print"]),
        subtotal=response["subtotal"],
        discount=response["discount"],
        total=response["total"],
        redeemed_amount=response["redeemed"]["amount"],
    )


def _request_json(req: SaleRequest) -> str:
    """The request as the receipt's facts (kept with the receipt)."""
    return json.dumps(
        {
            "receipt_id": req.receipt_id,
            "card": req.card,
            "coupons": list(req.coupons),
            "redeem": req.redeem,
            "lines": [
                {
                    "sku": ln.sku,
                    "name": ln.name,
                    "qty": str(ln.qty),
                    "price": str(ln.price),
                    "category": ln.category,
                    "tags": list(ln.tags),
                    "no_discount": ln.no_discount,
                    "weighed": ln.weighed,
                }
                for ln in req.lines
            ],
        },
        ensure_ascii=False,
    )


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
            return dict(json.loads(row.response))
        if row.status == "cancelled":
            raise errors.ReceiptCancelled(f"receipt {receipt_id} was cancelled")
        calc = row.calc
        accrued: dict[str, Any] = {"points": 0, "available_from": None}
        if row.card:
            ctx.sweep_in(conn, now, row.card)
            row = sales.get(conn, receipt_id)
            assert row is not None and row.card
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
            conn, receipt_id, paid=paid, fiscal_id=fiscal_id, response=response, now=now
        )
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


def _card_effects(conn: sqlite3.Connection, card: str, calc: Calculation) -> None:
    """Stamps counted and the birthday bonus marked as given this year."""
    for pid, count in calc.stamps.items():
        receipts.set_stamps(conn, card=card, promotion_id=pid, count=count)
    if calc.birthday_points and calc.birthday_year:
        card_store.set_birthday_bonus(conn, card, calc.birthday_year)


# ---------------------------------------------------------------- cancel


def cancel(ctx: TillContext, receipt_id: str) -> dict[str, Any]:
    """Abandon a calculated receipt and release its hold (idempotent)."""
    now = ctx.clock.now()
    with ctx.db.write() as conn:
        row = sales.get(conn, receipt_id)
        if row is None:
            raise errors.ReceiptNotFound(f"receipt {receipt_id} was never calculated")
        if row.done:
            raise errors.ReceiptAlreadyConfirmed(
                f"receipt {receipt_id} is confirmed; use refund to return it"
            )
        if row.status == "calculated":
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
    response = {"receipt_id": receipt_id, "status": "cancelled", "offline": ctx.offline}
    ctx.announce(response)
    return response
