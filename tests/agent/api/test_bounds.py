"""Bounds: a basket beyond ``[program.limits]`` is ``400 out_of_range``, nothing overflows.

The first test is the basket that once wedged a till: two lines of 100 000 x 99 999 999.99
were accepted, and the receipt's accrual (1.4 x 10^12 points) was more than head office
takes in one entry; ten receipts of 1000 such lines made the card's sums overflow SQLite's
64-bit INTEGER (card lookup 500, calculate 503 ``integer overflow``).
"""

from __future__ import annotations

import itertools
from decimal import ROUND_DOWN, Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ANNA, BORIS, line, program
from tests.core.rules.extremes import MAX_TOTAL, Basket, amount, baskets, pos_lines, within
from tillgate.core.money import to_kop
from tillgate.core.rules.bounds import MAX_RECEIPT_POINTS

HUGE = [line("A", "99999999.99", 100000), line("B", "99999999.99", 100000)]
# One tier at 7%, points spendable at once: every receipt may redeem what the last earned.
FLAT = program(
    accrual_delay_days=0, tiers=[{"name": "silver", "min_spend": "0", "accrue_percent": 7}]
)


def rows(till: Any, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with till.service.db.read() as conn:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]


def footprint(till: Any) -> list[Any]:
    """Everything calculate could write: receipts, ledger, cards."""
    return [
        rows(till, f"SELECT * FROM {t} ORDER BY rowid") for t in ("receipts", "ledger", "cards")
    ]


def test_the_basket_that_wedged_a_till_is_refused_as_out_of_range(make_till: Any) -> None:
    till = make_till()
    r = till.calc("R-1", HUGE, card=ANNA)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "out_of_range"


def test_the_error_names_the_line_and_the_limit_and_nothing_is_written(make_till: Any) -> None:
    till = make_till()
    before = footprint(till)
    new_card = "2900000000999"  # registered on first use, but not by a refused basket
    r = till.calc("R-1", [line("A", "1.00"), line("B", "10000000.01")], card=new_card)
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "out_of_range",
        "message": "lines[1].price 10000000.01 is outside 0.00 <= price <= 10000000.00 "
        "(program.limits.max_unit_price)",
        "limit": "max_unit_price",
        "line": 1,
    }
    r = till.calc("R-1", [line("A", "10000.00", 10000), line("B", "0.01")], card=new_card)
    assert r.json()["error"] == {
        "code": "out_of_range",
        "message": "the receipt comes to 100000000.01 before discounts, over "
        "program.limits.max_receipt_total (100000000.00)",
        "limit": "max_receipt_total",
    }
    r = till.calc("R-1", [line("A", "0.01", "10000.001")])
    assert r.json()["error"]["message"].startswith("lines[0].qty 10000.001 is outside")
    assert footprint(till) == before
    # Right at the bounds the same receipt goes through.
    calc = till.ok_calc("R-1", [line("A", "10000.00", 10000)], card=new_card)
    assert calc["subtotal"] == "100000000.00"


def test_an_earlier_calculation_of_the_receipt_survives_a_refused_one(make_till: Any) -> None:
    till = make_till(program(accrual_delay_days=0))
    till.sale("R-0", [line("A", "1000.00")], card=BORIS)  # 50 points to spend
    till.ok_calc("R-1", [line("A", "100.00")], card=BORIS, redeem=50)
    before = footprint(till)
    r = till.calc("R-1", [line("A", "100.00", 10001)], card=BORIS, redeem=50)
    assert r.json()["error"]["limit"] == "max_qty"
    assert footprint(till) == before  # the hold of the earlier calculation is still there
    done = till.confirm("R-1").json()
    assert done["redeemed"]["points"] == 50


def test_the_smaller_of_the_two_line_limits_applies(make_till: Any) -> None:
    small_program = make_till(program(limits={"max_lines": 3}), max_lines=5, name="a")
    r = small_program.calc("R-1", [line(f"S{i}", "1.00") for i in range(4)])
    assert (r.status_code, r.json()["error"]["code"]) == (400, "out_of_range")
    assert "at most 3 are allowed (program.limits.max_lines)" in r.json()["error"]["message"]
    small_config = make_till(program(limits={"max_lines": 5}), max_lines=3, name="b")
    r = small_config.calc("R-1", [line(f"S{i}", "1.00") for i in range(4)])
    assert (r.status_code, r.json()["error"]["code"]) == (413, "payload_too_large")
    assert small_config.calc("R-2", [line(f"S{i}", "1.00") for i in range(3)]).status_code == 200


def test_ten_receipts_of_the_widest_basket_keep_the_card_readable(make_till: Any) -> None:
    till = make_till(max_lines=5000)
    # The baskets that overflowed the card's sums: now refused, whole.
    old_worst = [line(f"S{j}", "99999999.99", 100000) for j in range(1000)]
    assert till.calc("R-old", old_worst, card=ANNA).json()["error"]["code"] == "out_of_range"
    # The widest basket the limits take: 1000 lines coming to max_receipt_total exactly.
    widest = [line(f"S{j}", "10000.00", 10) for j in range(1000)]
    accrued = 0
    for i in range(10):
        accrued += till.sale(f"R-{i}", widest, card=ANNA, redeem="max")["accrued"]["points"]
    card = till.card(ANNA)
    assert card["balance"] + card["pending"] == till.ledger_sum(ANNA) == accrued
    assert till.ok_calc("R-next", [line("A", "1.00")], card=ANNA)["subtotal"] == "1.00"


def test_extreme_baskets_through_calculate_confirm_refund_and_lookup(make_till: Any) -> None:
    """Quantities and prices at, just under and just over the bounds, many receipts on one
    card: no 500, no 503, and the card's balance is exactly what the receipts moved."""
    till = make_till(FLAT, max_lines=5000)
    ids = itertools.count()
    moved = {"points": 0, "receipts": 0}

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        basket=baskets(),
        redeem=st.sampled_from([0, "max"]),
        refund=st.sampled_from([None, "whole", "first"]),
    )
    def sell(basket: Basket, redeem: int | str, refund: str | None) -> None:
        rid = f"R-{next(ids)}"
        r = till.calc(rid, pos_lines(basket), card=ANNA, redeem=redeem)
        if not within(basket):
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == "out_of_range"
        else:
            assert r.status_code == 200, r.text
            moved["points"] += settle(till, rid, r.json(), basket, refund)
            moved["receipts"] += 1
        card = till.card(ANNA)
        assert card["balance"] + card["pending"] == till.ledger_sum(ANNA) == moved["points"]
        (paid,) = rows(till, "SELECT SUM(paid_kop) FROM receipts WHERE status != 'calculated'")[0]
        assert (paid or 0) <= moved["receipts"] * to_kop(MAX_TOTAL)

    sell()


def settle(till: Any, rid: str, calc: dict[str, Any], basket: Basket, refund: str | None) -> int:
    """Confirm (and maybe refund) a calculated receipt; the points it moved on the card."""
    subtotal = sum((amount(q, p) for q, p in basket), Decimal(0))
    assert Decimal(calc["subtotal"]) == subtotal <= MAX_TOTAL
    # Flat 7% of what is paid, at 1.00 a point, rounded down once.
    paid = Decimal(calc["total"])
    assert calc["accrued"]["points"] == int((paid * 7 / 100).to_integral_value(ROUND_DOWN))
    r = till.confirm(rid)
    assert r.status_code == 200, r.text
    done = r.json()
    accrued, redeemed = done["accrued"]["points"], done["redeemed"]["points"]
    assert 0 <= accrued <= MAX_RECEIPT_POINTS and 0 <= redeemed <= MAX_RECEIPT_POINTS
    net = accrued - redeemed
    if refund is not None:
        body: dict[str, Any] = {"refund_id": f"F-{rid}"}
        if refund == "first":
            body["lines"] = [{"index": 0, "qty": str(basket[0][0])}]
        r = till.http.post(f"/v1/receipts/{rid}/refund", json=body)
        assert r.status_code == 200, r.text
        back = r.json()
        assert 0 <= back["points_reversed"] <= accrued
        assert 0 <= back["points_returned"] <= redeemed
        if refund == "whole":
            assert (back["points_reversed"], back["points_returned"]) == (accrued, redeemed)
        net += back["points_returned"] - back["points_reversed"]
    return net
