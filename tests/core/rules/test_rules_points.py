"""Tiers, tier accrual, redemption caps, welcome and birthday bonuses."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from tillgate.core.rules.engine import effective_tier
from tillgate.core.rules.program import parse_program


@pytest.fixture(scope="module")
def program(make):
    return make.catalog().program


@pytest.mark.parametrize(
    ("assigned", "spend", "expected"),
    [
        (None, "0", "silver"),
        (None, "19999.99", "silver"),
        (None, "20000", "gold"),
        (None, "60000", "platinum"),
        ("platinum", "0", "platinum"),  # HQ's assignment is a floor
        ("silver", "60000", "platinum"),  # spend raises it
        ("diamond", "25000", "gold"),  # unknown assigned tier is ignored
        ("gold", "-5", "gold"),
    ],
)
def test_effective_tier(program, assigned, spend, expected):
    assert effective_tier(program, assigned, Decimal(spend)) == expected


def test_effective_tier_without_tiers_is_none():
    program = parse_program({"program": {"name": "x"}}).program
    assert effective_tier(program, "gold", Decimal(100)) is None


def test_tier_accrual_on_paid_eligible_amount_rounds_down_once(make):
    cat = make.catalog()
    r = make.run(
        cat,
        make.line("a", "99.90"),
        make.line("cig", "300.00", category="tobacco"),
        customer=make.customer(tier="gold"),
    )
    assert r.accrued_points == 4  # 5% of 99.90 = 4.995
    assert r.tier == "gold"


def test_accrual_uses_the_spend_tier(make):
    cat = make.catalog()
    r = make.run(
        cat,
        make.line("a", "100.00"),
        customer=make.customer(tier="silver", rolling_spend=Decimal("50000")),
    )
    assert r.tier == "platinum" and r.accrued_points == 7


def test_accrual_is_summed_exactly_before_rounding(make):
    cat = make.catalog(
        make.promo("x", {"kind": "points_percent", "value": "0.5"}, when=make.items("d")),
        make.promo("y", {"kind": "points_percent", "value": "0.5"}, when=make.items("d")),
    )
    # silver 3% of 10.00 = 0.3; each promotion 0.05 → 0.4 in all, still 0 points…
    r = make.run(cat, make.line("a", "10.00", category="d"), customer=make.customer())
    assert r.accrued_points == 0
    # …but on 250.00: 7.5 + 1.25 + 1.25 = 10 exactly; rounding each part first would give 9.
    r = make.run(cat, make.line("a", "250.00", category="d"), customer=make.customer())
    assert r.accrued_points == 10
    assert [e.points for e in r.effects] == [1, 1]


def test_no_card_no_points_and_no_redemption(make):
    cat = make.catalog(welcome_points=100)
    r = make.run(cat, make.line("a", "100.00"), redeem="max")
    assert (r.accrued_points, r.redeem_max, r.redeemed_points, r.tier) == (0, 0, 0, None)


def test_blocked_card_neither_earns_nor_spends(make):
    cat = make.catalog(welcome_points=100)
    r = make.run(
        cat,
        make.line("a", "100.00"),
        redeem="max",
        customer=make.customer(status="blocked", redeemable=500, visits=0),
    )
    assert (r.accrued_points, r.redeem_max, r.welcome_points) == (0, 0, 0)
    assert any(h.kind == "warning" and "•••2345" in h.text for h in r.hints)


def test_redeem_max_is_capped_by_max_redeem_percent(make):
    cat = make.catalog()
    r = make.run(
        cat, make.line("a", "1000.00"), customer=make.customer(redeemable=10_000), redeem="max"
    )
    assert r.redeem_max == 500 and r.redeemed_points == 500 and r.redeemed_amount == 50000
    assert r.total == 50000


def test_redeem_cap_is_taken_after_discounts_and_excludes_non_eligible_lines(make):
    cat = make.catalog(make.promo("d", {"kind": "percent", "value": 10, "on": "order"}))
    r = make.run(
        cat,
        make.line("a", "1000.00"),
        make.line("c", "500.00", category="tobacco"),
        customer=make.customer(redeemable=10_000),
        redeem="max",
    )
    assert r.redeem_max == 450
    assert [ln.redeemed for ln in r.lines] == [45000, 0]


def test_redeem_cap_rounds_down_to_whole_points(make):
    cat = make.catalog(max_redeem_percent=33)
    r = make.run(cat, make.line("a", "1000.00"), customer=make.customer(redeemable=10_000))
    assert r.redeem_max == 330
    cat = make.catalog(point_value="0.30")
    # 50% of 100.00 = 50.00 → 166 points of 0.30 (49.80).
    r = make.run(
        cat, make.line("a", "100.00"), customer=make.customer(redeemable=10_000), redeem="max"
    )
    assert (r.redeem_max, r.redeemed_amount) == (166, 4980)


def test_redeem_is_capped_by_the_balance_and_the_offline_cap(make):
    cat = make.catalog()
    customer = make.customer(redeemable=120)
    r = make.run(cat, make.line("a", "1000.00"), customer=customer, redeem="max")
    assert r.redeem_max == 120
    r = make.run(cat, make.line("a", "1000.00"), customer=customer, redeem="max", redeem_cap=40)
    assert r.redeem_max == 40 and r.redeemed_points == 40


def test_redeem_a_number(make):
    cat = make.catalog()
    customer = make.customer(redeemable=1000)
    r = make.run(cat, make.line("a", "100.00"), customer=customer, redeem=30)
    assert (r.redeem_max, r.redeemed_points, r.redeemed_amount) == (50, 30, 3000)
    # More than allowed: the engine takes what it can; the service refuses the request.
    r = make.run(cat, make.line("a", "100.00"), customer=customer, redeem=80)
    assert (r.redeem_max, r.redeemed_points) == (50, 50)


def test_min_redeem_points(make):
    cat = make.catalog(min_redeem_points=100)
    r = make.run(
        cat, make.line("a", "1000.00"), customer=make.customer(redeemable=99), redeem="max"
    )
    assert (r.redeem_max, r.redeemed_points) == (0, 0)
    r = make.run(cat, make.line("a", "1000.00"), customer=make.customer(redeemable=500), redeem=50)
    assert (r.redeem_max, r.redeemed_points) == (500, 0)
    assert any(h.kind == "warning" and "100" in h.text for h in r.hints)


def test_redeemed_money_is_spread_over_eligible_lines_and_reduces_accrual(make):
    cat = make.catalog()
    r = make.run(
        cat,
        make.line("a", "300.00"),
        make.line("b", "100.00"),
        customer=make.customer(tier="gold", redeemable=1000),
        redeem=100,
    )
    assert [ln.redeemed for ln in r.lines] == [7500, 2500]
    assert [ln.paid for ln in r.lines] == [22500, 7500]
    assert r.accrued_points == 15  # 5% of 300.00 paid


def test_welcome_points_on_the_first_purchase(make):
    cat = make.catalog(welcome_points=100)
    r = make.run(cat, make.line("a", "100.00"), customer=make.customer(visits=0))
    assert (r.welcome_points, r.accrued_points) == (100, 103)
    r = make.run(cat, make.line("a", "100.00"), customer=make.customer(visits=1))
    assert (r.welcome_points, r.accrued_points) == (0, 3)


def test_welcome_points_even_when_nothing_earns(make):
    cat = make.catalog(welcome_points=100)
    r = make.run(
        cat, make.line("cig", "100.00", category="tobacco"), customer=make.customer(visits=0)
    )
    assert r.accrued_points == 100


def test_birthday_points_within_the_window_once_a_year(make):
    cat = make.catalog(birthday_points=200)
    near = make.customer(birthday=date(1990, 11, 7), visits=3)
    r = make.run(cat, make.line("a", "100.00"), customer=near)
    assert (r.birthday_points, r.birthday_year, r.accrued_points) == (200, 2026, 203)
    again = make.customer(birthday=date(1990, 11, 7), visits=4, last_birthday_bonus=2026)
    r = make.run(cat, make.line("a", "100.00"), customer=again)
    assert (r.birthday_points, r.birthday_year) == (0, None)
    far = make.customer(birthday=date(1990, 11, 8))
    assert make.run(cat, make.line("a", "100.00"), customer=far).birthday_points == 0
    before = make.customer(birthday=date(1990, 11, 1))
    assert make.run(cat, make.line("a", "100.00"), customer=before).birthday_points == 200


def test_birthday_window_across_new_year(make):
    cat = make.catalog(birthday_points=200)
    jan2 = datetime(2027, 1, 2, 12, 0)
    dec31 = make.customer(birthday=date(1990, 12, 31))
    r = make.run(cat, make.line("a", "100.00"), customer=dec31, now=jan2)
    # The bonus is for the 2026 birthday: that year is what the service records.
    assert (r.birthday_points, r.birthday_year) == (200, 2026)
    given = make.customer(birthday=date(1990, 12, 31), last_birthday_bonus=2026)
    assert make.run(cat, make.line("a", "1.00"), customer=given, now=jan2).birthday_points == 0
    # …and the next birthday is honoured even though the bonus was recorded in January.
    r = make.run(cat, make.line("a", "1.00"), customer=given, now=datetime(2027, 12, 29))
    assert (r.birthday_points, r.birthday_year) == (200, 2027)
    jan1 = make.customer(birthday=date(1990, 1, 1))
    r = make.run(cat, make.line("a", "1.00"), customer=jan1, now=datetime(2026, 12, 30))
    assert (r.birthday_points, r.birthday_year) == (200, 2027)


def test_feb_29_birthday_falls_on_feb_28_off_leap_years(make):
    cat = make.catalog(birthday_points=200, birthday_window_days=0)
    leapling = make.customer(birthday=date(2000, 2, 29))
    run = lambda now: make.run(cat, make.line("a", "1.00"), customer=leapling, now=now)  # noqa: E731
    assert run(datetime(2027, 2, 28, 10)).birthday_points == 200
    assert run(datetime(2027, 3, 1, 10)).birthday_points == 0
    assert run(datetime(2028, 2, 29, 10)).birthday_points == 200
    assert run(datetime(2028, 2, 28, 10)).birthday_points == 0


def test_points_percent_without_tiers_and_with_point_value(make):
    cat = make.catalog(
        make.promo("x", {"kind": "points_percent", "value": 10}, when=make.items("d")),
        point_value="0.50",
        tiers=[],
    )
    r = make.run(cat, make.line("a", "100.00", category="d"), customer=make.customer(tier=None))
    # 10% of 100.00 is 10.00 of value, 20 points of 0.50.
    assert (r.tier, r.accrued_points) == (None, 20)


def test_blocked_card_still_gets_mass_promotions_but_nothing_personal(make):
    cat = make.catalog(
        make.promo("all", {"kind": "percent", "value": 10, "on": "order"}),
        make.promo(
            "gold", {"kind": "percent", "value": 10, "on": "order"}, who={"tiers": ["silver"]}
        ),
        make.promo(
            "stamp",
            {"kind": "stamp", "every": 2, "reward": {"kind": "points", "value": 5}},
            who={"card": False},
        ),
    )
    r = make.run(cat, make.line("a", "100.00"), customer=make.customer(status="blocked"))
    assert r.uses == ("all",) and r.stamps == {} and r.accrued_points == 0
