"""Conditions: valid, schedule, where, who, when (min_total, items, coupon), limits, enabled."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

TEN = {"kind": "percent", "value": 10, "on": "order"}


def applies(make, promo, *lines, **kw) -> bool:
    cat = make.catalog(promo)
    return bool(make.run(cat, *(lines or (make.line("a", "100.00"),)), **kw).uses)


@pytest.mark.parametrize(
    ("now", "ok"),
    [
        (datetime(2026, 10, 31, 23, 59, 59), False),
        (datetime(2026, 11, 1, 0, 0), True),
        (datetime(2026, 11, 30, 23, 59, 0), True),
        (datetime(2026, 11, 30, 23, 59, 59, 999999), True),  # the whole minute written
        (datetime(2026, 12, 1, 0, 0), False),
    ],
)
def test_valid_is_inclusive_at_both_ends(make, now, ok):
    promo = make.promo("p", TEN, valid={"from": "2026-11-01T00:00", "to": "2026-11-30T23:59"})
    assert applies(make, promo, now=now) is ok


def test_valid_to_with_seconds_is_exact(make):
    promo = make.promo("p", TEN, valid={"to": "2026-11-04T10:30:15"})
    assert applies(make, promo, now=datetime(2026, 11, 4, 10, 30, 15))
    assert not applies(make, promo, now=datetime(2026, 11, 4, 10, 30, 16))


@pytest.mark.parametrize(
    ("now", "ok"),
    [
        (datetime(2026, 11, 4, 8, 0), True),  # Wednesday, start included
        (datetime(2026, 11, 4, 11, 59), True),
        (datetime(2026, 11, 4, 12, 0), False),  # end excluded
        (datetime(2026, 11, 4, 7, 59), False),
        (datetime(2026, 11, 5, 9, 0), False),  # Thursday
    ],
)
def test_schedule_days_and_hours(make, now, ok):
    promo = make.promo("p", TEN, schedule={"days": ["mon", "wed"], "hours": ["08:00-12:00"]})
    assert applies(make, promo, now=now) is ok


def test_schedule_24_00_ends_the_day_and_ranges_may_run_over_midnight(make):
    late = make.promo("p", TEN, schedule={"hours": ["22:00-24:00"]})
    assert applies(make, late, now=datetime(2026, 11, 4, 23, 59, 59))
    assert not applies(make, late, now=datetime(2026, 11, 4, 21, 59))
    night = make.promo("p", TEN, schedule={"hours": ["22:00-02:00"]})
    assert applies(make, night, now=datetime(2026, 11, 4, 1, 0))
    assert applies(make, night, now=datetime(2026, 11, 4, 22, 0))
    assert not applies(make, night, now=datetime(2026, 11, 4, 2, 0))


def test_schedule_several_hour_ranges(make):
    promo = make.promo("p", TEN, schedule={"hours": ["08:00-09:00", "18:00-19:00"]})
    assert applies(make, promo, now=datetime(2026, 11, 4, 18, 30))
    assert not applies(make, promo, now=datetime(2026, 11, 4, 12, 0))


def test_where_stores_and_tills(make):
    assert applies(make, make.promo("p", TEN, where={"stores": ["*"]}))
    assert applies(make, make.promo("p", TEN, where={"stores": ["store-01", "store-02"]}))
    assert not applies(make, make.promo("p", TEN, where={"stores": ["store-02"]}))
    assert applies(make, make.promo("p", TEN, where={"tills": ["till-1"]}))
    assert not applies(make, make.promo("p", TEN, where={"tills": ["till-2"]}))


def test_disabled_never_applies(make):
    assert not applies(make, make.promo("p", TEN, enabled=False))


def test_who_card_needs_an_unblocked_card(make):
    promo = make.promo("p", TEN, who={"card": True})
    assert not applies(make, promo)
    assert applies(make, promo, customer=make.customer())
    assert not applies(make, promo, customer=make.customer(status="blocked"))
    assert applies(make, promo, customer=make.customer(status="new"))


def test_mass_campaign_applies_with_or_without_card(make):
    promo = make.promo("p", TEN)
    assert applies(make, promo)
    assert applies(make, promo, customer=make.customer())
    assert applies(make, promo, customer=make.customer(status="blocked"))


def test_who_tiers_use_the_effective_tier(make):
    promo = make.promo("p", TEN, who={"tiers": ["gold", "platinum"]})
    assert not applies(make, promo)  # a tier filter needs a card even with card = false
    assert not applies(make, promo, customer=make.customer(tier="silver"))
    assert applies(make, promo, customer=make.customer(tier="gold"))
    assert applies(make, promo, customer=make.customer(tier="silver", rolling_spend=Decimal(25000)))


def test_who_segments_and_clubs(make):
    seg = make.promo("p", TEN, who={"segments": ["students"]})
    assert not applies(make, seg, customer=make.customer())
    assert applies(make, seg, customer=make.customer(segments=frozenset({"students", "x"})))
    club = make.promo("p", TEN, who={"clubs": ["wine"]})
    assert not applies(make, club)
    assert applies(make, club, customer=make.customer(clubs=frozenset({"wine"})))


def test_who_first_purchase_and_min_visits(make):
    first = make.promo("p", TEN, who={"first_purchase": True})
    assert applies(make, first, customer=make.customer(visits=0))
    assert not applies(make, first, customer=make.customer(visits=1))
    assert not applies(make, first)
    regular = make.promo("p", TEN, who={"min_visits": 5})
    assert not applies(make, regular, customer=make.customer(visits=4))
    assert applies(make, regular, customer=make.customer(visits=5))


def test_who_birthday_uses_the_program_window(make):
    promo = make.promo("p", TEN, who={"birthday": True})
    assert applies(make, promo, customer=make.customer(birthday=date(1990, 11, 7)))
    assert not applies(make, promo, customer=make.customer(birthday=date(1990, 11, 8)))
    assert not applies(make, promo, customer=make.customer())


def test_items_match_by_sku_category_or_tag(make):
    promo = make.promo(
        "p",
        {"kind": "percent", "value": 10, "on": "matching"},
        when={"items": {"skus": ["s1"], "categories": ["dairy"], "tags": ["own-brand"]}},
    )
    cat = make.catalog(promo)
    r = make.run(
        cat,
        make.line("s1", "10.00"),
        make.line("m", "10.00", category="dairy"),
        make.line("t", "10.00", tags=("x", "own-brand")),
        make.line("n", "10.00"),
    )
    assert [ln.discount for ln in r.lines] == [100, 100, 100, 0]


def test_min_qty_counts_units_and_weighed_lines_count_one(make):
    promo = make.promo(
        "p", {"kind": "percent", "value": 10, "on": "matching"}, when=make.items("fruit", min_qty=3)
    )
    assert not applies(
        make,
        promo,
        make.line("apples", "100.00", "2.500", category="fruit"),
        make.line("pear", "10.00", category="fruit"),
    )
    assert applies(
        make,
        promo,
        make.line("apples", "100.00", "2.500", category="fruit"),
        make.line("pear", "10.00", 2, category="fruit"),
    )


def test_min_total_on_matching_lines_only(make):
    promo = make.promo(
        "p",
        {"kind": "percent", "value": 10, "on": "order"},
        when={"min_total": "100.00", "items": {"categories": ["dairy"]}},
    )
    cat = make.catalog(promo)
    r = make.run(cat, make.line("milk", "90.00", category="dairy"), make.line("b", "100.00"))
    assert r.uses == ()
    r = make.run(cat, make.line("milk", "100.00", category="dairy"), make.line("b", "100.00"))
    # on = order: the items are a condition, the discount is on every eligible line.
    assert [ln.discount for ln in r.lines] == [1000, 1000]


def test_items_without_filters_count_every_eligible_line(make):
    promo = make.promo("p", TEN, when={"items": {"min_qty": 3}})
    assert not applies(make, promo, make.line("a", "1.00", 2))
    assert applies(make, promo, make.line("a", "1.00", 2), make.line("b", "1.00"))


def test_a_promotion_needs_a_line_it_can_act_on(make):
    promo = make.promo("p", {"kind": "message", "text": "hi"})
    assert not applies(make, promo, make.line("cig", "100.00", category="tobacco"))


def test_when_coupon_requires_a_coupon_of_the_promotion(make):
    promo = make.promo("p", TEN, when={"coupon": True})
    assert not applies(make, promo)
    assert applies(make, promo, coupons=(make.coupon("p"),))


def test_per_card_limits(make):
    day = make.promo("p", TEN, limits={"per_card_per_day": 2})
    assert applies(make, day, customer=make.customer(uses_today={"p": 1}))
    assert not applies(make, day, customer=make.customer(uses_today={"p": 2}))
    assert applies(make, day)  # no card: nothing to count against
    total = make.promo("p", TEN, limits={"per_card_total": 1})
    assert not applies(make, total, customer=make.customer(uses_total={"p": 1}))
    assert applies(make, total, customer=make.customer(uses_total={"other": 5}))


def test_budget_points_caps_a_promotions_points(make):
    promo = make.promo("p", {"kind": "points", "value": 50}, limits={"budget_points": 100})
    cat = make.catalog(promo)
    r = make.run(cat, make.line("a", "1.00"), customer=make.customer(), budget_used={"p": 70})
    assert r.budget_points == {"p": 30} and r.effects[0].points == 30
    r = make.run(cat, make.line("a", "1.00"), customer=make.customer(), budget_used={"p": 100})
    assert r.budget_points == {} and r.uses == () and r.accrued_points == 0
    r = make.run(cat, make.line("a", "1.00"), customer=make.customer())
    assert r.budget_points == {"p": 50}
