"""The POS API's JSON bodies, shaped from the rules engine's result (pure, no I/O).

Money leaves the engine as whole kopecks and is written here as two-place decimal
strings; card numbers leave masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from tillgate.core.cards import mask
from tillgate.core.money import fmt
from tillgate.core.rules import model as m
from tillgate.core.rules.hints import tier_title
from tillgate.core.rules.program import Program
from tillgate.core.rules.program_texts import Language

from .request import SaleRequest

RECEIPT_EVENT_KEYS = (
    "receipt_id",
    "status",
    "card",
    "subtotal",
    "discount",
    "total",
    "redeemed",
    "redeem_max",  # the most points this receipt could take (calculate only)
    "accrued",
    "points_reversed",
    "points_returned",
    "amount_returned",
    "printed",  # what the agent prints for a confirmed receipt (coupons, messages)
    "offline",
)


def card_out(
    customer: m.Customer | None,
    *,
    tier: str | None,
    held: int,
    source: str | None,
    program: Program,
    language: Language,
) -> dict[str, Any] | None:
    """The ``card`` object: masked number, holder, tier (its id and what the cashier calls
    it), balance, pending, redeemable."""
    if customer is None:
        return None
    return {
        "number": mask(customer.number),
        "holder": customer.holder,
        "tier": tier,
        "tier_title": None if tier is None else tier_title(program, tier, language),
        "status": customer.status,
        "balance": customer.balance,
        "pending": customer.pending,
        "redeemable": max(0, customer.balance - held),
        "held": held,
        "source": source,
    }


def coupon_print(item: m.PrintItem, *, code: str, valid_until: date) -> dict[str, Any]:
    return {
        "kind": "coupon",
        "title": item.title,
        "code": code,
        "valid_until": valid_until.isoformat(),
        "promotion": item.promotion,
    }


def message_print(item: m.PrintItem) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "title": item.title or None,
        "text": item.text,
        "promotion": item.promotion,
    }


def calculation(
    req: SaleRequest,
    result: m.Result,
    *,
    card: dict[str, Any] | None,
    rejected: list[dict[str, str]],
    prints: list[dict[str, Any]],
    available_from: date | None,
    offline: bool,
    categories: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """The calculate response (pos-api.md): every line, effect, hint and print item.

    ``categories``: each line's category as the till resolved it (the product list, the
    program's match rules); default: what the request said.
    """
    by_line = {ln.index: ln for ln in result.lines}
    if categories is None:
        categories = [ln.category for ln in req.lines]
    return {
        "receipt_id": req.receipt_id,
        "offline": offline,
        "card": card,
        "lines": [
            {
                "index": i,
                "sku": ln.sku,
                "qty": str(ln.qty),
                "price": str(ln.price),
                "amount": fmt(by_line[i].amount),
                "discount": fmt(by_line[i].discount),
                "total": fmt(by_line[i].total),
                "redeemed": fmt(by_line[i].redeemed),
                "paid": fmt(by_line[i].paid),
                "promotions": list(by_line[i].promotions),
                # False: the program leaves the line out (no discount, no points, not
                # counted toward thresholds), e.g. tobacco; the category says why.
                "eligible": by_line[i].eligible,
                "category": categories[i],
            }
            for i, ln in enumerate(req.lines)
        ],
        "subtotal": fmt(result.subtotal),
        "discount": fmt(result.discount),
        "redeemed": {"points": result.redeemed_points, "amount": fmt(result.redeemed_amount)},
        # What ``redeem: "max"`` would spend on this basket now (caps and holds applied);
        # ``card.redeemable`` is the card's, whatever the basket.
        "redeem_max": result.redeem_max,
        "total": fmt(result.total),
        "accrued": {
            "points": result.accrued_points,
            "available_from": available_from.isoformat() if available_from else None,
        },
        "promotions": [
            {"id": e.id, "name": e.name, "discount": fmt(e.discount), "points": e.points}
            for e in result.effects
        ],
        "coupons": {
            "applied": list(result.coupons_applied),
            "rejected": rejected + [{"code": c, "reason": r} for c, r in result.coupons_rejected],
        },
        "hints": [{"kind": h.kind, "text": h.text, "promotion": h.promotion} for h in result.hints],
        "print": prints,
    }


def internal(result: m.Result, coupons: list[m.Coupon]) -> dict[str, Any]:
    """What confirm and refund need later and the POS never sees (stored with the receipt)."""
    return {
        "lines": [
            {"index": ln.index, "paid": ln.paid, "eligible": ln.eligible} for ln in result.lines
        ],
        "uses": list(result.uses),
        "stamps": dict(result.stamps),
        "budget": dict(result.budget_points),
        "birthday_points": result.birthday_points,
        "birthday_year": result.birthday_year,
        "welcome_points": result.welcome_points,
        "coupons_used": {
            c.code: c.promotion_id for c in coupons if c.code in result.coupons_applied
        },
        "effects": {e.id: e.points for e in result.effects},
    }


def receipt_event(response: dict[str, Any]) -> dict[str, Any]:
    """The ``receipt`` event for the cashier's screen, from any receipt response."""
    return {k: response[k] for k in RECEIPT_EVENT_KEYS if k in response}
