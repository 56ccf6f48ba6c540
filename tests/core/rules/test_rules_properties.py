"""Properties over random programs and baskets: the receipt always adds up and keeps its rules.

Programs mix every money-off kind with random stacking, priorities, floors and redemption
settings; baskets mix whole and weighed quantities, excluded lines and coupons.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tillgate.core.rules.engine import Catalog, evaluate
from tillgate.core.rules.model import Coupon, Customer, Line, Request, Result
from tillgate.core.rules.program import parse_program

CATEGORIES = ("dairy", "bread", "coffee", "tobacco")

money = st.integers(min_value=1, max_value=50_000).map(lambda k: str(Decimal(k) / 100))
ints = st.integers

# Strategies are built once here: composing them per example is what makes hypothesis slow.
items = st.fixed_dictionaries(
    {
        "categories": st.lists(
            st.sampled_from(CATEGORIES[:3]), min_size=1, max_size=2, unique=True
        ),
        "tags": st.lists(st.sampled_from(["x", "y"]), max_size=1),
        "min_qty": ints(0, 3),
    }
)
percent = st.fixed_dictionaries(
    {
        "kind": st.just("percent"),
        "value": ints(1, 100),
        "on": st.sampled_from(["order", "matching", "cheapest"]),
    },
    optional={"max": money},
)
amount = st.fixed_dictionaries(
    {"kind": st.just("amount"), "value": money, "on": st.sampled_from(["order", "matching"])}
)
price = st.fixed_dictionaries({"kind": st.just("price"), "value": money})
free_item = st.fixed_dictionaries(
    {"kind": st.just("free_item"), "buy": ints(1, 3), "get": ints(1, 2)}
)
money_reward = st.one_of(percent, amount, price, free_item)
point_reward = st.one_of(
    st.fixed_dictionaries({"kind": st.just("points"), "value": ints(1, 500)}),
    st.fixed_dictionaries({"kind": st.just("points_percent"), "value": ints(1, 30)}),
    st.fixed_dictionaries({"kind": st.just("multiplier"), "value": st.sampled_from(["2", "1.5"])}),
)
other_reward = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("coupon"),
            "title": st.just("c"),
            "valid_days": st.just(7),
            "discount": st.sampled_from(
                [
                    {"kind": "percent", "value": 20, "on": "order"},
                    {"kind": "amount", "value": "50.00", "on": "order"},
                    {"kind": "percent", "value": 15, "on": "matching"},
                ]
            ),
        }
    ),
    st.fixed_dictionaries({"kind": st.just("stamp"), "every": ints(2, 3), "reward": money_reward}),
    st.just({"kind": "message", "text": "hi"}),
)
# Money kinds twice as often: they are what stacking and the floor are about.
reward = st.one_of(money_reward, money_reward, point_reward, other_reward)
promotion_body = st.fixed_dictionaries(
    {
        "priority": ints(-2, 2),
        "stacking": st.sampled_from(["stackable", "exclusive", "best"]),
        "who": st.fixed_dictionaries({"card": st.booleans()}),
        "reward": reward,
        "limits": st.fixed_dictionaries(
            {"per_receipt": ints(0, 2), "budget_points": st.sampled_from([0, 0, 10])}
        ),
        "hint": st.just({"near": "50.00"}),
        "when": st.fixed_dictionaries(
            {
                "min_total": st.sampled_from(["0", "0", "100.00"]),
                "coupon": st.sampled_from([False, False, False, True]),
            },
            optional={"items": items},
        ),
    }
)
ITEM_KINDS = {"price", "free_item", "points_percent", "multiplier"}


def needs_items(reward: dict[str, Any]) -> bool:
    inner = reward.get("reward", reward.get("discount", reward))
    return inner["kind"] in ITEM_KINDS or inner.get("on") in ("matching", "cheapest")


def finish(k: int, body: dict[str, Any], fallback: dict[str, Any]) -> dict[str, Any]:
    # The program validator wants items wherever a reward works on matching lines.
    when = dict(body["when"])
    if needs_items(body["reward"]) and "items" not in when:
        when["items"] = fallback
    return {**body, "id": f"p{k}", "name": f"Promo {k}", "when": when}


programs = st.builds(
    lambda head, bodies, fallback: {
        "program": head,
        "promotions": [finish(k, b, fallback) for k, b in enumerate(bodies)],
    },
    st.fixed_dictionaries(
        {
            "name": st.just("P"),
            "point_value": st.sampled_from(["0.01", "0.30", "1.00", "2.50"]),
            "max_redeem_percent": ints(0, 100),
            "min_redeem_points": st.sampled_from([1, 1, 10, 100]),
            "welcome_points": st.sampled_from([0, 100]),
            "birthday_points": st.sampled_from([0, 200]),
            "birthday_window_days": st.just(3),
            "no_discount_categories": st.just(["tobacco"]),
            "max_discount_percent": st.sampled_from(["0", "30", "50", "90", "99.5", "100"]),
            "tiers": st.just(
                [
                    {"name": "silver", "min_spend": "0", "accrue_percent": 3},
                    {"name": "gold", "min_spend": "1000", "accrue_percent": "5.5"},
                ]
            ),
        }
    ),
    st.lists(promotion_body, max_size=8),
    items,
)

quantity = st.one_of(ints(1, 7).map(Decimal), ints(1, 3000).map(lambda g: Decimal(g) / 1000))
line = st.builds(
    Line,
    index=st.just(0),
    sku=st.sampled_from(["s0", "s1", "s2", "s3"]),
    qty=quantity,
    price=ints(0, 100_000).map(lambda k: Decimal(k) / 100),
    category=st.sampled_from((*CATEGORIES, None)),
    tags=st.lists(st.sampled_from(["x", "y"]), max_size=2, unique=True).map(tuple),
    no_discount=ints(0, 9).map(lambda k: k == 0),
)
baskets = st.lists(line, max_size=10).map(
    lambda found: tuple(replace(ln, index=k) for k, ln in enumerate(found))
)
customers = st.one_of(
    st.none(),
    st.builds(
        Customer,
        number=st.just("2900000012345"),
        tier=st.sampled_from([None, "silver", "gold"]),
        status=st.sampled_from(["active", "active", "new", "blocked"]),
        birthday=st.sampled_from([None, date(1990, 11, 5), date(1990, 6, 1)]),
        visits=ints(0, 3),
        redeemable=ints(-10, 100_000),
        stamps=st.fixed_dictionaries({"p0": ints(0, 5), "p1": ints(0, 5)}),
        uses_today=st.fixed_dictionaries({"p2": ints(0, 1)}),
    ),
)
coupons = st.lists(
    st.tuples(
        st.sampled_from(["p0", "p1", "p2", "p3", "ghost"]),
        st.sampled_from([date(2026, 11, 3), date(2026, 12, 1)]),
    ),
    max_size=3,
).map(
    lambda found: tuple(
        Coupon(code=f"C{k}", promotion_id=pid, valid_until=until)
        for k, (pid, until) in enumerate(found)
    )
)
requests = st.builds(
    Request,
    lines=baskets,
    customer=customers,
    coupons=coupons,
    redeem=st.one_of(st.just("max"), ints(0, 2000)),
)
contexts = st.fixed_dictionaries(
    {
        "redeem_cap": st.sampled_from([None, 0, 50, 10_000]),
        "budget_used": st.fixed_dictionaries({"p3": ints(0, 12)}),
    }
)
cases = st.tuples(programs, requests, contexts)


def amount_of(line: Line) -> int:
    return int((line.price * line.qty * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def eligible(line: Line, data: dict[str, Any]) -> bool:
    return not line.no_discount and line.category not in data["program"]["no_discount_categories"]


def floor_of(line: Line, data: dict[str, Any]) -> int:
    if not eligible(line, data):
        return amount_of(line)
    keep = Fraction(100) - Fraction(Decimal(data["program"]["max_discount_percent"]))
    exact = amount_of(line) * keep / 100
    return int(exact + Fraction(1, 2))  # half-up, non-negative


def check_adds_up(data: dict[str, Any], request: Request, r: Result) -> None:
    """Lines add up to the receipt to the kopeck, and effects explain the discount."""
    assert [ln.amount for ln in r.lines] == [amount_of(line) for line in request.lines]
    assert sum(ln.amount for ln in r.lines) == r.subtotal
    assert sum(ln.discount for ln in r.lines) == r.discount
    assert sum(ln.redeemed for ln in r.lines) == r.redeemed_amount
    assert r.total == r.subtotal - r.discount - r.redeemed_amount
    assert sum(ln.paid for ln in r.lines) == r.total
    for ln in r.lines:
        assert ln.total == ln.amount - ln.discount
        assert ln.paid == ln.total - ln.redeemed
    assert sum(e.discount for e in r.effects) == r.discount


def check_floor(data: dict[str, Any], request: Request, r: Result) -> None:
    """No line below its floor; excluded lines untouched; nothing negative."""
    for line, ln in zip(request.lines, r.lines, strict=True):
        assert ln.total >= floor_of(line, data)
        assert ln.discount >= 0 and ln.redeemed >= 0 and ln.paid >= 0
        assert ln.eligible == eligible(line, data)
        if not ln.eligible:
            assert ln.discount == 0 and ln.redeemed == 0 and ln.promotions == ()


def check_redemption(
    data: dict[str, Any], request: Request, ctx: dict[str, Any], r: Result
) -> None:
    """Redeemed ≤ redeem_max ≤ every cap (share, balance, offline cap, minimum)."""
    program = data["program"]
    value = int(Decimal(program["point_value"]) * 100)
    assert 0 <= r.redeemed_points <= r.redeem_max
    assert r.redeemed_amount == r.redeemed_points * value
    base = sum(ln.total for ln in r.lines if ln.eligible)
    assert r.redeem_max * value <= base * Fraction(program["max_redeem_percent"]) / 100
    customer = request.customer
    if customer is None or customer.status == "blocked":
        assert r.redeem_max == 0 and r.accrued_points == 0
    else:
        assert r.redeem_max <= max(customer.redeemable, 0)
        if ctx["redeem_cap"] is not None:
            assert r.redeem_max <= ctx["redeem_cap"]
        assert r.redeem_max == 0 or r.redeem_max >= program["min_redeem_points"]
    if request.redeem == "max":
        assert r.redeemed_points == r.redeem_max


def check_points(request: Request, ctx: dict[str, Any], r: Result) -> None:
    """Accrual is never negative and the explanations agree with each other."""
    assert r.accrued_points >= 0
    assert r.accrued_points >= sum(e.points for e in r.effects) + r.welcome_points
    effect_ids = [e.id for e in r.effects]
    assert len(set(r.uses)) == len(r.uses) and set(effect_ids) <= set(r.uses)
    for ln in r.lines:
        assert set(ln.promotions) <= set(effect_ids)
    for pid, given_points in r.budget_points.items():
        assert given_points <= max(10 - ctx["budget_used"].get(pid, 0), 0)
    codes = [c.code for c in request.coupons]
    seen = list(r.coupons_applied) + [code for code, _ in r.coupons_rejected]
    assert sorted(seen) == sorted(codes)


# One generated case feeds every invariant: generating a random program and basket costs
# more than evaluating it several times.
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_receipt_invariants(make, case):
    data, request, ctx = case
    r = evaluate(Catalog.build(parse_program(data)), request, make.context(**ctx))
    check_adds_up(data, request, r)
    check_floor(data, request, r)
    check_redemption(data, request, ctx, r)
    check_points(request, ctx, r)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases, st.randoms(use_true_random=False))
def test_deterministic_and_independent_of_file_order(make, case, rnd: random.Random):
    data, request, ctx = case
    context = make.context(**ctx)
    first = evaluate(Catalog.build(parse_program(data)), request, context)
    assert evaluate(Catalog.build(parse_program(data)), request, context) == first
    shuffled = {**data, "promotions": rnd.sample(data["promotions"], len(data["promotions"]))}
    assert evaluate(Catalog.build(parse_program(shuffled)), request, context) == first
    # Renumbering the POS lines only renumbers the result.
    renumbered = replace(
        request, lines=tuple(replace(ln, index=ln.index + 100) for ln in request.lines)
    )
    again = evaluate(Catalog.build(parse_program(data)), renumbered, context)
    assert [ln.index - 100 for ln in again.lines] == [ln.index for ln in first.lines]
    assert again.total == first.total and again.effects == first.effects
