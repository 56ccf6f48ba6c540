"""Receipt facts: what a till saw and decided for one receipt, as plain JSON.

A till records the facts of every confirmed receipt (and every refund) and sends them to
head office through its outbox. They carry:

- the **inputs** the engine was given (the basket, the card as the till saw it — tier,
  visits, rolling spend, uses, stamps, balance — the coupons, the points asked for, the
  local time, store and till, budgets used, any offline cap), exactly, so that head office
  can run the very same pure engine on them (:func:`reprice`);
- the **outcome**: every line's amount, discount and paid money with its resolved category,
  the promotions applied with their effects, coupons used, stamps, points accrued and
  redeemed, the total paid.

Each input line is the line as the engine priced it: its sku, category and tags as the
product list resolved them, ``no_discount`` true for a ``no_loyalty`` line. Since version 2
each input line also says how its category was found (``match``: one of
:data:`tillgate.core.products.MATCHES`) and the inputs carry the product list's version
(``products_version``); neither changes the price, so facts of version 1, which lack
them, decode and re-price as before (:func:`matches` reads them back, None when absent).

Encoding is exact: :func:`decode_inputs` of :func:`encode_inputs` gives back equal values
(money and quantities as decimal strings, instants as ISO text), so re-pricing at head
office evaluates what the till evaluated. The card holder's name is left out: it decides
nothing the facts are checked for (it only greets the customer). A birthday is written
as its month and day alone (``--03-14``): that is all any rule reads of it, and all a
chain's till knows (facts from older tills carry a whole date, read as well).

Pure: no I/O, no clock, no globals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ..products import MATCHES, Match
from .engine import Catalog, evaluate
from .model import Context, Coupon, Customer, Line, Request, Result
from .tiers import month_day_text, parse_birthday

FACTS_VERSION = 2  # 2: input lines' match, the inputs' products_version


def encode_inputs(
    request: Request,
    context: Context,
    *,
    matches: Sequence[Match] | None = None,
    products_version: str | None = None,
) -> dict[str, Any]:
    """The engine's inputs as JSON-ready values (see :func:`decode_inputs`).

    ``matches``: how each line's category was found (core/productmatch.py), by position;
    with them the inputs also carry ``products_version``.
    """
    if matches is not None and len(matches) != len(request.lines):
        raise ValueError(f"{len(matches)} matches for {len(request.lines)} lines")
    c = request.customer
    out: dict[str, Any] = {
        "lines": [
            {
                "index": ln.index,
                "sku": ln.sku,
                "name": ln.name,
                "qty": str(ln.qty),
                "price": str(ln.price),
                "category": ln.category,
                "tags": list(ln.tags),
                "no_discount": ln.no_discount,
                "is_weighed": ln.is_weighed,
            }
            | ({"codes": list(ln.codes)} if ln.codes else {})
            for ln in request.lines
        ],
        "customer": None
        if c is None
        else {
            "number": c.number,
            "status": c.status,
            "tier": c.tier,
            "segments": sorted(c.segments),
            "clubs": sorted(c.clubs),
            "birthday": month_day_text(c.birthday) if c.birthday else None,
            "visits": c.visits,
            "rolling_spend": str(c.rolling_spend),
            "balance": c.balance,
            "pending": c.pending,
            "redeemable": c.redeemable,
            "last_birthday_bonus": c.last_birthday_bonus,
            "uses_today": dict(c.uses_today),
            "uses_total": dict(c.uses_total),
            "stamps": dict(c.stamps),
        },
        "coupons": [
            {
                "code": k.code,
                "promotion_id": k.promotion_id,
                "valid_until": k.valid_until.isoformat(),
            }
            for k in request.coupons
        ],
        "redeem": request.redeem,
        "money_off": request.money_off,
        "now": context.now.isoformat(),
        "store": context.store,
        "till": context.till,
        "language": context.language,
        "budget_used": dict(context.budget_used),
        "redeem_cap": context.redeem_cap,
    }
    if matches is not None:
        for line, match in zip(out["lines"], matches, strict=True):
            line["match"] = match
        out["products_version"] = products_version
    return out


def matches(inputs: Mapping[str, Any]) -> list[Match | None]:
    """How each input line's category was found; None for a line of older facts."""
    out: list[Match | None] = []
    for ln in inputs.get("lines") or []:
        got = ln.get("match") if isinstance(ln, Mapping) else None
        out.append(next((m for m in MATCHES if m == got), None))
    return out


def decode_inputs(data: Mapping[str, Any]) -> tuple[Request, Context]:
    """The engine's inputs back from :func:`encode_inputs`'s JSON."""
    c = data["customer"]
    customer = (
        None
        if c is None
        else Customer(
            number=c["number"],
            status=c["status"],
            tier=c["tier"],
            segments=frozenset(c["segments"]),
            clubs=frozenset(c["clubs"]),
            birthday=parse_birthday(c["birthday"]) if c["birthday"] else None,
            visits=int(c["visits"]),
            rolling_spend=Decimal(c["rolling_spend"]),
            balance=int(c["balance"]),
            pending=int(c["pending"]),
            redeemable=int(c["redeemable"]),
            last_birthday_bonus=c["last_birthday_bonus"],
            uses_today={k: int(v) for k, v in c["uses_today"].items()},
            uses_total={k: int(v) for k, v in c["uses_total"].items()},
            stamps={k: int(v) for k, v in c["stamps"].items()},
        )
    )
    request = Request(
        lines=tuple(
            Line(
                index=int(ln["index"]),
                sku=ln["sku"],
                name=ln["name"],
                qty=Decimal(ln["qty"]),
                price=Decimal(ln["price"]),
                category=ln["category"],
                tags=tuple(ln["tags"]),
                no_discount=bool(ln["no_discount"]),
                is_weighed=ln["is_weighed"],
                codes=tuple(ln.get("codes", ())),
            )
            for ln in data["lines"]
        ),
        customer=customer,
        coupons=tuple(
            Coupon(
                code=k["code"],
                promotion_id=k["promotion_id"],
                valid_until=date.fromisoformat(k["valid_until"]),
            )
            for k in data["coupons"]
        ),
        redeem=data["redeem"],
        money_off=bool(data["money_off"]),
    )
    context = Context(
        now=datetime.fromisoformat(data["now"]),
        store=data["store"],
        till=data["till"],
        language=data["language"],
        budget_used={k: int(v) for k, v in data["budget_used"].items()},
        redeem_cap=data["redeem_cap"],
    )
    return request, context


def encode_outcome(request: Request, result: Result) -> dict[str, Any]:
    """What the engine decided, as the facts carry it (kopecks and whole points)."""
    by_index = {ln.index: ln for ln in request.lines}
    return {
        "lines": [
            {
                "index": r.index,
                "sku": by_index[r.index].sku,
                "category": by_index[r.index].category,
                "qty": str(by_index[r.index].qty),
                "price": str(by_index[r.index].price),
                "amount": r.amount,
                "discount": r.discount,
                "redeemed": r.redeemed,
                "paid": r.paid,
                "eligible": r.eligible,
                "promotions": list(r.promotions),
            }
            for r in result.lines
        ],
        "effects": [
            {"id": e.id, "discount": e.discount, "points": e.points} for e in result.effects
        ],
        "coupons": list(result.coupons_applied),
        "stamps": dict(result.stamps),
        "subtotal": result.subtotal,
        "discount": result.discount,
        "redeemed_points": result.redeemed_points,
        "redeemed_amount": result.redeemed_amount,
        "total": result.total,
        "accrued_points": result.accrued_points,
        "tier": result.tier,
    }


def reprice(catalog: Catalog, inputs: Mapping[str, Any], outcome: Mapping[str, Any]) -> list[str]:
    """Run the engine again on a receipt's recorded inputs; what disagrees with its outcome.

    Returns one line per disagreement (empty: the facts are what the engine makes of them).
    The redemption is checked against what the receipt actually redeemed: a till may redeem
    less than the most it could, never more.
    """
    request, context = decode_inputs(inputs)
    # The receipt redeemed what it redeemed: evaluate with exactly that.
    redeemed = int(outcome["redeemed_points"])
    if request.redeem == "max" or request.redeem != redeemed:
        request = Request(
            lines=request.lines,
            customer=request.customer,
            coupons=request.coupons,
            redeem=redeemed,
            money_off=request.money_off,
        )
    result = evaluate(catalog, request, context)
    want = encode_outcome(request, result)
    problems: list[str] = []
    for key in ("accrued_points", "redeemed_points", "total", "discount", "subtotal"):
        if int(outcome[key]) != int(want[key]):
            problems.append(f"{key}: the receipt says {outcome[key]}, the engine {want[key]}")
    got_lines = {int(ln["index"]): ln for ln in outcome["lines"]}
    for ln in want["lines"]:
        mine = got_lines.get(ln["index"])
        if mine is None or int(mine["paid"]) != ln["paid"]:
            paid = None if mine is None else mine["paid"]
            problems.append(f"line {ln['index']}: paid {paid}, the engine {ln['paid']}")
    return problems
