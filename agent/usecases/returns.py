"""Returns: a refund takes back accrued points and gives back redeemed ones, in proportion.

Refund arithmetic is cumulative (:mod:`tillgate.core.rules.refunds`): each refund moves
only the difference between the receipt's state after all returns so far and before it,
so repeated partial refunds never drift and never over-return. Idempotent by
``refund_id``: the same refund asked again answers what it answered the first time; the
same ``refund_id`` for another receipt or other lines is :class:`IdempotencyMismatch`.
A line sold by the unit is returned in whole units; a weighed line in any quantity.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from decimal import Decimal
from typing import Any

from tillgate.core import errors
from tillgate.core.errors import IdempotencyMismatch
from tillgate.core.money import fmt
from tillgate.core.rules.model import Line
from tillgate.core.rules.refunds import PaidLine, state

from ..store import facts, points, retention, sales
from ..store.sales import Receipt, RefundLines
from .context import TillContext


def refund(
    ctx: TillContext,
    receipt_id: str,
    *,
    refund_id: str,
    lines: list[tuple[int, Decimal]] | None,
) -> dict[str, Any]:
    """Return some (``lines``: index and quantity) or all of a confirmed receipt."""
    now, now_local = ctx.now()
    with ctx.db.write() as conn:
        done = sales.refund_done(conn, refund_id)
        if done is not None:
            _same_refund(refund_id, done, receipt_id=receipt_id, lines=lines)
            return done.response
        row = _refundable(conn, receipt_id)
        qtys = row.calc.qtys()
        before = sales.returned(conn, receipt_id)
        _whole_units(receipt_id, qtys, sales.line_kinds(row.calc), lines)
        after = _returned_after(receipt_id, qtys, before, lines)
        paid_lines = [
            PaidLine(index=ln.index, qty=qtys[ln.index], paid=ln.paid, eligible=ln.eligible)
            for ln in row.calc.lines
        ]
        prev = state(paid_lines, before, accrued=row.accrued, redeemed=row.redeemed)
        new = state(paid_lines, after, accrued=row.accrued, redeemed=row.redeemed)
        reversed_now = new.points_reversed - prev.points_reversed
        returned_now = new.points_returned - prev.points_returned
        card = row.card
        if card:
            _move_points(ctx, conn, row, refund_id, reversed_now, returned_now, now=now)
        sales.save_returns(
            conn,
            receipt_id=receipt_id,
            returned_now=after,
            amount_returned=new.amount_returned,
            in_full=all(after.get(i, 0) >= q for i, q in qtys.items()),
            now=now,
        )
        if card:
            ctx.sweep_in(conn, now, card)
        response = {
            "receipt_id": receipt_id,
            "refund_id": refund_id,
            "status": "refunded",
            "points_reversed": reversed_now if card else 0,
            "points_returned": returned_now if card else 0,
            "amount_returned": fmt(new.amount_returned - prev.amount_returned),
            "card": ctx.card_after(conn, card, now=now, now_local=now_local, source=None),
            "offline": ctx.offline,
        }
        sales.save_refund(
            conn,
            receipt_id=receipt_id,
            refund_id=refund_id,
            lines=lines,
            response=response,
            now=now,
        )
        facts.add(
            conn,
            kind="refund",
            key=refund_id,
            receipt_id=receipt_id,
            body={
                "receipt_id": receipt_id,
                "refund_id": refund_id,
                "till": ctx.settings.till,
                "card": card,
                "at": now.isoformat(),
                "offline": ctx.offline,
                "lines": [[i, str(q)] for i, q in lines] if lines is not None else None,
                "returned": {str(i): str(q) for i, q in sorted(after.items())},
                "amount_returned": new.amount_returned - prev.amount_returned,
                "points_reversed": response["points_reversed"],
                "points_returned": response["points_returned"],
            },
            now=now,
        )
    ctx.announce(response | {"status": "refunded"})
    return response


def _same_refund(
    refund_id: str,
    done: sales.Refund,
    *,
    receipt_id: str,
    lines: list[tuple[int, Decimal]] | None,
) -> None:
    """A retried refund must be for the same receipt and the same lines (the same quantity
    of each line, however it is written or ordered)."""
    if done.receipt_id != receipt_id:
        raise IdempotencyMismatch(
            f"refund_id {refund_id} was used with receipt_id {done.receipt_id}, not "
            f"{receipt_id}. Nothing was changed: use a new refund_id for another refund",
            details={"field": "receipt_id", "first": done.receipt_id},
        )
    if _per_line(done.lines) != _per_line(tuple(lines) if lines is not None else None):
        raise IdempotencyMismatch(
            f"refund_id {refund_id} was used with lines {_described(done.lines)}; this "
            f"request has lines {_described(lines)}. Nothing was changed: resend the first "
            "refund's body to get its answer again, or use a new refund_id for another refund",
            details={
                "field": "lines",
                "first": None
                if done.lines is None
                else [{"index": i, "qty": str(q)} for i, q in done.lines],
            },
        )


def _per_line(lines: RefundLines | None) -> dict[int, Decimal] | None:
    if lines is None:
        return None
    out: dict[int, Decimal] = {}
    for index, qty in lines:
        out[index] = out.get(index, Decimal(0)) + qty
    return out


def _described(lines: RefundLines | list[tuple[int, Decimal]] | None) -> str:
    if lines is None:
        return "left out (the rest of the receipt)"
    return "[" + ", ".join(f"line {i} × {q}" for i, q in lines) + "]"


def _whole_units(
    receipt_id: str,
    qtys: dict[int, Decimal],
    kinds: dict[int, bool | None],
    lines: list[tuple[int, Decimal]] | None,
) -> None:
    """Refuse part of a unit of a line sold by the unit (weighed lines return any amount).

    Weighed or not is the engine's rule (:attr:`Line.weighed`) over what the POS said.
    """
    for index, qty in lines or ():
        if index not in qtys or qty == qty.to_integral_value():
            continue
        sold = Line(
            index=index, sku="", qty=qtys[index], price=Decimal(0), is_weighed=kinds.get(index)
        )
        if not sold.weighed:
            raise errors.FractionalQuantity(
                f"line {index} of receipt {receipt_id} is sold by the unit ({qtys[index]} "
                f"sold): return a whole number of units, not {qty}",
                details={"index": index},
            )


def _refundable(conn: sqlite3.Connection, receipt_id: str) -> Receipt:
    row = sales.get(conn, receipt_id)
    if row is None or row.status == "calculated":
        gone = retention.pruned_before(conn)
        kept = (
            ""
            if gone is None
            else f" (receipts older than {gone.date().isoformat()} are no longer kept at"
            " this till: till.retention_days)"
        )
        raise errors.ReceiptNotFound(f"no confirmed receipt {receipt_id}{kept}")
    if row.status == "cancelled":
        raise errors.ReceiptCancelled(f"receipt {receipt_id} was cancelled")
    return row


def _returned_after(
    receipt_id: str,
    qtys: dict[int, Decimal],
    before: dict[int, Decimal],
    lines: list[tuple[int, Decimal]] | None,
) -> dict[int, Decimal]:
    """The cumulative returned quantity of each line once this refund is made."""
    if lines is None:
        if all(before.get(i, Decimal(0)) >= q for i, q in qtys.items()):
            raise errors.RefundExceedsReceipt(
                f"receipt {receipt_id} has already been returned in full"
            )
        return dict(qtys)
    after = dict(before)
    for index, qty in lines:
        if index not in qtys:
            raise errors.InvalidRequest(
                f"receipt {receipt_id} has no line {index} (it has {len(qtys)} lines)"
            )
        after[index] = after.get(index, Decimal(0)) + qty
        if after[index] > qtys[index]:
            raise errors.RefundExceedsReceipt(
                f"line {index}: {after[index]} returned in total but only {qtys[index]} were sold"
            )
    return after


def _move_points(
    ctx: TillContext,
    conn: sqlite3.Connection,
    row: Receipt,
    refund_id: str,
    reversed_now: int,
    returned_now: int,
    *,
    now: datetime,
) -> None:
    """Take back accrued points, give back redeemed ones (with their original expiry)."""
    assert row.card is not None
    till = ctx.settings.till
    if reversed_now > 0:
        points.reverse_accrual(
            conn,
            till=till,
            card=row.card,
            receipt_id=row.receipt_id,
            refund_id=refund_id,
            points=reversed_now,
            now=now,
        )
    if returned_now > 0:
        points.return_redeemed(
            conn,
            till=till,
            card=row.card,
            receipt_id=row.receipt_id,
            refund_id=refund_id,
            points=returned_now,
            now=now,
        )
