"""Whole-basket point promotions: ``multiplier`` and ``points_percent`` without ``when.items``.

Without items (or with items naming no sku, category or tag) they work on every eligible
line, and never on a ``no_discount`` line or a line of a ``no_discount_categories`` category.
"""

from __future__ import annotations

from typing import Any

import pytest

from tillgate.core.errors import ProgramError
from tillgate.core.rules.program import parse_program


def lines(make: Any) -> tuple[Any, ...]:
    """Milk 100.00, bread 100.00, cigarettes 300.00 (excluded), a no_discount line 200.00."""
    return (
        make.line("milk", "100.00", category="dairy"),
        make.line("bread", "100.00", category="bakery"),
        make.line("cig", "300.00", category="tobacco"),
        make.line("gift-card", "200.00", no_discount=True),
    )


@pytest.mark.parametrize("when", [{}, {"when": {"items": {"min_qty": 1}}}])
def test_a_tier_multiplier_on_the_whole_basket(make: Any, when: dict[str, Any]) -> None:
    double = make.promo(
        "gold-x2", {"kind": "multiplier", "value": 2}, who={"card": True, "tiers": ["gold"]}
    )
    double.update(when)
    cat = make.catalog(double)
    r = make.run(cat, *lines(make), customer=make.customer(tier="gold"))
    # gold 5% of the eligible 200.00 = 10, doubled = 20; tobacco and no_discount earn nothing
    assert r.accrued_points == 20
    assert [(e.id, e.points) for e in r.effects] == [("gold-x2", 10)]
    # silver does not get it
    r = make.run(cat, *lines(make), customer=make.customer(tier="silver"))
    assert r.accrued_points == 6 and r.effects == ()


def test_points_percent_on_the_whole_basket(make: Any) -> None:
    cat = make.catalog(make.promo("plus-10", {"kind": "points_percent", "value": 10}))
    r = make.run(cat, *lines(make), customer=make.customer(tier="silver"))
    # silver 3% of 200.00 = 6, plus 10% of 200.00 = 20
    assert r.accrued_points == 26
    assert [(e.id, e.points) for e in r.effects] == [("plus-10", 20)]


def test_whole_basket_points_count_what_is_paid_after_points(make: Any) -> None:
    cat = make.catalog(make.promo("plus-10", {"kind": "points_percent", "value": 10}))
    r = make.run(
        cat,
        *lines(make),
        customer=make.customer(tier="silver", balance=100, redeemable=100),
        redeem=50,
    )
    # 150.00 of the eligible lines is paid in money: 3% + 10% of it
    assert r.redeemed_amount == 5000
    assert r.accrued_points == 4 + 15  # 4.5 + 15 = 19.5 → 19


def test_a_receipt_of_excluded_lines_alone_earns_nothing(make: Any) -> None:
    cat = make.catalog(make.promo("plus-10", {"kind": "points_percent", "value": 10}))
    r = make.run(
        cat,
        make.line("cig", "300.00", category="tobacco"),
        make.line("gift-card", "200.00", no_discount=True),
        customer=make.customer(tier="silver", visits=3),
    )
    assert r.accrued_points == 0 and r.effects == () and r.uses == ()


def test_a_stamp_of_whole_basket_double_points(make: Any) -> None:
    stamp = make.promo(
        "every-3rd-x2",
        {"kind": "stamp", "every": 3, "reward": {"kind": "multiplier", "value": 2}},
    )
    cat = make.catalog(stamp)
    customer = make.customer(tier="gold", stamps={"every-3rd-x2": 2})
    r = make.run(cat, *lines(make), customer=customer)
    assert r.stamps == {"every-3rd-x2": 3}
    assert r.accrued_points == 20


@pytest.mark.parametrize(
    "reward",
    [
        {"kind": "percent", "value": 10, "on": "matching"},
        {"kind": "price", "value": "1.00"},
        {"kind": "free_item", "buy": 2, "get": 1},
        {"kind": "stamp", "every": 3, "reward": {"kind": "price", "value": "1.00"}},
    ],
)
def test_money_off_on_matching_lines_still_needs_items(make: Any, reward: dict[str, Any]) -> None:
    with pytest.raises(ProgramError, match=r"when\.items"):
        parse_program(make.file(make.promo("p", reward, when={"items": {"min_qty": 1}})))
