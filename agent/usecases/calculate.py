"""Pricing a basket: the calculate use case and its steps.

Runs in one write transaction (``BEGIN IMMEDIATE``): a hold placed by one calculate is
seen by the next on the same card. What it leaves for confirm and refund is a
:class:`~tillgate.agent.store.sales.Calculation` record on the receipt row, never the
response itself.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from tillgate.core import errors
from tillgate.core.cardfile import CardRecord
from tillgate.core.cards import mask
from tillgate.core.rules import model as m
from tillgate.core.rules.bounds import check_bounds, describe
from tillgate.core.rules.coupons import canonical, serial_for
from tillgate.core.rules.engine import Catalog, evaluate
from tillgate.core.rules.facts import encode_inputs, encode_outcome
from tillgate.core.rules.hints import hq_silent_hint, offline_hint

from ..store import ledger, points, productmisses, receipts, sales, syncstate
from ..store.sales import Calculation, PaidLine, Receipt
from . import reserve, responses
from .context import TillContext
from .matching import Matched, engine_lines, match
from .request import SaleRequest

_OFFLINE_WHY = {
    "max_hours": "no sync for longer than program.offline.max_hours",
    "per_card": "program.offline.redeem_per_card for this card",
    "per_till": "program.offline.redeem_per_till for this till",
}


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
    asked: list[str | None] = []  # the card of a round trip made to head office, if one was
    try:
        # The open receipt's working state: its commit does not wait for the disk (the
        # confirm's does, and takes this one with it; store/db.py).
        with ctx.db.write(durable=False) as conn:
            catalog = ctx.catalog_in(conn)
            matched = match(conn, catalog, req)
            lines = engine_lines(req, matched)
            # Before anything is written (a new card included).
            _check_bounds(catalog, lines)
            opened = _open_receipt(conn, req.receipt_id)
            who = _whose(ctx, conn, req, opened, now=now, catalog=catalog)
            card = who.rec.number if who.rec else None
            released = ctx.sweep_in(conn, now, card)
            # The sweep may have released this receipt's own timed-out hold: read it again.
            before = sales.get(conn, req.receipt_id) if req.receipt_id in released else opened
            customer = _customer(ctx, conn, who, before, catalog, now=now, now_local=now_local)
            coupons, rejected = _coupons(ctx, conn, req.coupons, catalog)
            offline = ctx.offline
            cap = _offline_cap(conn, catalog, card, req.receipt_id, now, offline=offline)
            inputs = _inputs(
                ctx, conn, catalog, req, lines, customer, coupons, cap, money_off, now_local
            )
            result = evaluate(catalog, *inputs)
            _check_redeem(req, result, cap)
            verdict = reserve.NOT_ASKED
            if reserve.online(ctx):
                # Head office grants what the card has chain-wide; less, or refused coupons,
                # and the basket is priced again within the grant.
                verdict = reserve.ask(
                    ctx,
                    conn,
                    receipt_id=req.receipt_id,
                    card=card,
                    request=inputs[0],
                    result=result,
                )
                if verdict.asked:  # (a refusal by head office changed nothing there)
                    asked.append(card)
                again = reserve.recompute_needed(verdict, result, card)
                if verdict.fallback:  # no answer in time: this receipt is priced offline
                    offline = True
                    cap = _offline_cap(conn, catalog, card, req.receipt_id, now, offline=True)
                    inputs = (inputs[0], replace(inputs[1], redeem_cap=cap.points if cap else None))
                elif again:
                    inputs = reserve.capped(*inputs, verdict)
                    rejected += [
                        {"code": c, "reason": why} for c, why in verdict.refused_codes().items()
                    ]
                if again:
                    result = evaluate(catalog, *inputs)
                    _check_redeem(req, result, cap)
            seconds = reserve.record(
                ctx,
                conn,
                receipt_id=req.receipt_id,
                card=card,
                verdict=verdict,
                result=result,
                now=now,
            )
            hold_entry, hold_points, hold_expires = _hold(
                ctx,
                conn,
                req.receipt_id,
                before,
                card,
                result.redeemed_points if card else 0,
                now,
                seconds=seconds,
            )
            response = _response(
                ctx,
                conn,
                req,
                result,
                customer,
                who,
                rejected,
                cap,
                catalog,
                now_local=now_local,
                offline=offline,
                matched=matched,
            )
            facts = _facts(ctx, inputs, result, matched, offline=offline)
            productmisses.record(
                conn,
                # A POS line may come with a sku alone: then the sku names the miss.
                (
                    (ln.name or ln.sku, r.match)
                    for ln, r in zip(req.lines, matched.lines, strict=True)
                ),
                receipt_id=req.receipt_id,
                products_version=matched.products_version,
                now=now,
            )
            sales.save_calculation(
                conn,
                receipt_id=req.receipt_id,
                card=card,
                calc=_record(req, result, coupons, response, who.source, facts),
                hold_entry=hold_entry,
                hold_points=hold_points,
                hold_expires_at=hold_expires,
                accrued=result.accrued_points,
                redeemed=result.redeemed_points,
                paid_kop=result.total,
                now=now,
            )
    except BaseException:
        # Head office may hold what this calculate asked for, and the transaction that
        # would have kept that is gone: the next push releases it there.
        if asked:
            reserve.forget(ctx, req.receipt_id, asked[0], now=now)
        raise

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


def _check_bounds(catalog: Catalog, lines: tuple[m.Line, ...]) -> None:
    """Refuse a basket beyond ``[program.limits]``, naming the line and the limit."""
    breaches = check_bounds(catalog.program.limits, lines)
    if breaches:
        first = breaches[0]
        raise errors.OutOfRange(
            describe(breaches),
            details={"limit": first.limit}
            | ({"line": first.line} if first.line is not None else {}),
        )


def _customer(
    ctx: TillContext,
    conn: sqlite3.Connection,
    who: _Who,
    before: Receipt | None,
    catalog: Catalog,
    *,
    now: datetime,
    now_local: datetime,
) -> m.Customer | None:
    """The card as the engine sees it; this receipt's own hold is still its to spend."""
    if who.rec is None:
        return None
    own = before is not None and before.hold_entry and before.card == who.rec.number
    return ctx.customer(
        conn,
        who.rec,
        now=now,
        now_local=now_local,
        catalog=catalog,
        own_hold=before.hold_points if own and before is not None else 0,
    )


def _offline_cap(
    conn: sqlite3.Connection,
    catalog: Catalog,
    card: str | None,
    receipt_id: str,
    now: datetime,
    *,
    offline: bool,
) -> syncstate.OfflineCap | None:
    """Offline, the most points this receipt may redeem (None: online, or no card)."""
    if not offline or card is None:
        return None
    return syncstate.offline_cap(
        conn, policy=catalog.program.offline, card=card, receipt_id=receipt_id, now=now
    )


def _inputs(
    ctx: TillContext,
    conn: sqlite3.Connection,
    catalog: Catalog,
    req: SaleRequest,
    lines: tuple[m.Line, ...],
    customer: m.Customer | None,
    coupons: list[m.Coupon],
    cap: syncstate.OfflineCap | None,
    money_off: bool,
    now_local: datetime,
) -> tuple[m.Request, m.Context]:
    """What the rules engine is given (it is pure: everything it needs is handed to it)."""
    return (
        m.Request(
            lines=lines,
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
            budget_used=points.budgets_used(conn, list(catalog.budgeted)),
            redeem_cap=cap.points if cap is not None else None,
        ),
    )


def _response(
    ctx: TillContext,
    conn: sqlite3.Connection,
    req: SaleRequest,
    result: m.Result,
    customer: m.Customer | None,
    who: _Who,
    rejected: list[dict[str, str]],
    cap: syncstate.OfflineCap | None,
    catalog: Catalog,
    *,
    now_local: datetime,
    offline: bool,
    matched: Matched,
) -> dict[str, Any]:
    """The calculate answer; offline, why points are limited comes first among the hints."""
    card = who.rec.number if who.rec else None
    response = responses.calculation(
        req,
        result,
        # every open hold on the card counts, this receipt's included
        card=responses.card_out(
            customer,
            tier=result.tier,
            source=who.source,
            held=ledger.held(conn, card) if card else 0,
            program=catalog.program,
            language=ctx.settings.language,
        ),
        rejected=rejected,
        prints=_prints(ctx, req.receipt_id, result, now_local.date()),
        available_from=(
            now_local.date() + timedelta(days=catalog.program.accrual_delay_days)
            if result.accrued_points
            else None
        ),
        offline=offline,
        categories=[r.category for r in matched.lines],
    )
    hint = None
    if cap is not None:
        hint = offline_hint(
            reason=cap.reason,
            points=cap.points,
            max_hours=cap.policy.max_hours,
            language=ctx.settings.language,
        )
    elif offline and not ctx.offline:  # head office did not answer this receipt's hold
        hint = hq_silent_hint(language=ctx.settings.language)
    if hint is not None:
        response["hints"] = [
            {"kind": hint.kind, "text": hint.text, "promotion": hint.promotion},
            *response["hints"],
        ]
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
    catalog: Catalog,
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
    rec = ctx.resolve_card(conn, raw, now=now, register=True, catalog=catalog)
    if rec.status == "blocked":
        raise errors.CardBlocked(f"card {mask(rec.number)} is blocked")
    return _Who(rec=rec, source=source)


def _coupons(
    ctx: TillContext, conn: sqlite3.Connection, codes: tuple[str, ...], catalog: Catalog
) -> tuple[list[m.Coupon], list[dict[str, str]]]:
    """The codes this till can honour, and the refused ones with their reason."""
    accepted: list[m.Coupon] = []
    rejected: list[dict[str, str]] = []
    for raw in codes:
        try:
            code = canonical(raw)
            signed = ctx.signer.verify(code)
        except errors.TillgateError:
            rejected.append({"code": raw, "reason": "invalid"})
            continue
        promo = catalog.coupon_promotions.get(signed.promotion_tag)
        refused = "unknown_promotion" if promo is None else receipts.coupon_state(conn, code)
        if refused is not None or promo is None:
            rejected.append({"code": code, "reason": refused or "unknown_promotion"})
        else:
            accepted.append(m.Coupon(code=code, promotion_id=promo, valid_until=signed.valid_until))
    return accepted, rejected


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
    *,
    seconds: int | None = None,
) -> tuple[str | None, int, str | None]:
    """Hold the points this receipt would spend, replacing any earlier hold of it.

    ``seconds``: how long head office keeps its hold of them, if it made one; the till's
    hold ends then too (never later than ``till.hold_seconds``).
    """
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
    lasts = ctx.settings.hold_seconds
    if seconds is not None:
        lasts = min(seconds, lasts)
    expires = ledger.ts(now + timedelta(seconds=lasts)) if hold_entry else None
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


def _facts(
    ctx: TillContext,
    inputs: tuple[m.Request, m.Context],
    result: m.Result,
    matched: Matched,
    *,
    offline: bool,
) -> dict[str, Any]:
    """The receipt's facts as the engine saw and decided them (head office re-prices them)."""
    request, context = inputs
    return {
        "program_version": ctx.program_version,
        "offline": offline,
        "inputs": encode_inputs(
            request,
            context,
            matches=[r.match for r in matched.lines],
            products_version=matched.products_version,
        ),
        "outcome": encode_outcome(request, result),
    }


def _record(
    req: SaleRequest,
    result: m.Result,
    coupons: list[m.Coupon],
    response: dict[str, Any],
    source: str | None,
    facts: dict[str, Any],
) -> Calculation:
    """What confirm and refund will need of this calculation."""
    qtys = {ln["index"]: ln["qty"] for ln in response["lines"]}
    return Calculation(
        card_source=source,
        lines=tuple(
            PaidLine(
                index=ln.index,
                qty=qtys[ln.index],
                paid=ln.paid,
                eligible=ln.eligible,
                weighed=req.lines[ln.index].weighed,
            )
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
        facts=facts,
    )
