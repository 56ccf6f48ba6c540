"""Every reward kind and every stacking mode, through the real POS API and SQLite file."""

from __future__ import annotations

from typing import Any

from tests.conftest import ANNA, BORIS, line, program


def promo(pid: str, reward: dict[str, Any], **kw: Any) -> dict[str, Any]:
    out = {"id": pid, "name": pid, "reward": reward, "who": {"card": False}}
    out.update(kw)
    return out


DAIRY = {"items": {"categories": ["dairy"]}}


def test_percent_on_matching_lines(make_till):
    till = make_till(
        program(promo("dairy-10", {"kind": "percent", "value": 10, "on": "matching"}, when=DAIRY))
    )
    r = till.ok_calc(
        "R1", [line("milk", "89.00", 2, "dairy"), line("cig", "210.00", 1, "tobacco")], card=ANNA
    )
    assert r["lines"][0]["discount"] == "17.80"
    assert r["lines"][0]["total"] == "160.20"
    assert r["lines"][0]["promotions"] == ["dairy-10"]
    assert r["lines"][1]["discount"] == "0.00"
    assert r["subtotal"] == "388.00" and r["discount"] == "17.80" and r["total"] == "370.20"
    assert r["promotions"] == [
        {"id": "dairy-10", "name": "dairy-10", "discount": "17.80", "points": 0}
    ]
    # silver 3% of the paid eligible amount (tobacco earns nothing): 160.20 * 3% = 4.806
    assert r["accrued"]["points"] == 4
    assert r["accrued"]["available_from"] == "2026-12-07"


def test_percent_on_order_is_spread_in_proportion_and_capped_by_max(make_till):
    till = make_till(
        program(promo("all-5", {"kind": "percent", "value": 5, "on": "order", "max": "10.00"}))
    )
    r = till.ok_calc("R1", [line("a", "100.00"), line("b", "300.00")])
    # 5% of 400.00 = 20.00, capped at 10.00, spread 1:3
    assert r["discount"] == "10.00"
    assert [ln["discount"] for ln in r["lines"]] == ["2.50", "7.50"]


def test_percent_on_cheapest_unit(make_till):
    till = make_till(
        program(promo("cheap-50", {"kind": "percent", "value": 50, "on": "cheapest"}, when=DAIRY))
    )
    r = till.ok_calc("R1", [line("milk", "89.00", 2, "dairy"), line("kefir", "60.00", 3, "dairy")])
    assert [ln["discount"] for ln in r["lines"]] == ["0.00", "30.00"]


def test_amount_off_order(make_till):
    till = make_till(
        program(
            promo(
                "minus-100",
                {"kind": "amount", "value": "100.00", "on": "order"},
                when={"min_total": "500.00"},
            )
        )
    )
    small = till.ok_calc("R1", [line("a", "499.99")])
    assert small["discount"] == "0.00"
    r = till.ok_calc(
        "R2", [line("a", "300.00"), line("b", "200.00"), line("c", "50.00", 1, "tobacco")]
    )
    assert r["discount"] == "100.00"
    assert [ln["discount"] for ln in r["lines"]] == ["60.00", "40.00", "0.00"]


def test_price_reward_sells_matching_items_at_a_unit_price(make_till):
    till = make_till(
        program(
            promo(
                "bread-49", {"kind": "price", "value": "49.00"}, when={"items": {"skus": ["bread"]}}
            )
        )
    )
    r = till.ok_calc("R1", [line("bread", "65.00", 3), line("milk", "89.00")])
    assert r["lines"][0]["total"] == "147.00"
    assert r["lines"][1]["discount"] == "0.00"


def test_free_item_buy_two_get_one(make_till):
    till = make_till(
        program(
            promo(
                "two-plus-one",
                {"kind": "free_item", "buy": 2, "get": 1},
                when={"items": {"categories": ["snacks"]}},
            ),
            max_discount_percent=100,
        )
    )
    r = till.ok_calc(
        "R1",
        [
            line("chips", "120.00", 2, "snacks"),
            line("nuts", "200.00", 3, "snacks"),
            line("soda", "80.00", 1, "snacks"),
        ],
    )
    # units by price: 200 200 200 | 120 120 80 -> the cheapest of each group is free
    assert [ln["discount"] for ln in r["lines"]] == ["0.00", "200.00", "80.00"]
    assert r["discount"] == "280.00"


def test_points_points_percent_and_multiplier_stack(make_till):
    till = make_till(
        program(
            promo("bonus-50", {"kind": "points", "value": 50}, who={"card": True}),
            promo(
                "coffee-x2",
                {"kind": "multiplier", "value": 2},
                when={"items": {"categories": ["coffee"]}},
            ),
            promo("dairy-plus-5", {"kind": "points_percent", "value": 5}, when=DAIRY),
        )
    )
    r = till.ok_calc(
        "R1", [line("coffee", "500.00", 1, "coffee"), line("milk", "100.00", 1, "dairy")], card=ANNA
    )
    # tier 3% of 600 = 18; multiplier x2 on coffee adds 3% of 500 = 15; +5% of 100 = 5; +50
    assert r["accrued"]["points"] == 18 + 15 + 5 + 50
    points = {p["id"]: p["points"] for p in r["promotions"]}
    assert points == {"bonus-50": 50, "coffee-x2": 15, "dairy-plus-5": 5}


def test_message_reward_prints_and_hints(make_till):
    till = make_till(program(promo("hello", {"kind": "message", "text": "Спасибо за покупку!"})))
    r = till.ok_calc("R1", [line("a", "10.00")])
    assert {"kind": "message", "promotion": "hello"}.items() <= r["print"][0].items()
    assert "Спасибо за покупку!" in (r["print"][0].get("text") or "")


def test_stamp_every_third_purchase_earns_the_reward(make_till):
    till = make_till(
        program(
            promo(
                "coffee-stamp",
                {
                    "kind": "stamp",
                    "every": 3,
                    "reward": {"kind": "percent", "value": 100, "on": "matching"},
                },
                who={"card": True},
                when={"items": {"categories": ["coffee"]}},
            ),
            max_discount_percent=100,
        )
    )
    discounts = []
    for i in range(6):
        r = till.sale(f"S{i}", [line("latte", "150.00", 1, "coffee")], card=BORIS)
        discounts.append(r["discount"])
    assert discounts == ["0.00", "0.00", "150.00", "0.00", "0.00", "150.00"]


def test_stacking_exclusive_best_and_stackable(make_till):
    till = make_till(
        program(
            promo(
                "ex-dairy",
                {"kind": "percent", "value": 20, "on": "matching"},
                when=DAIRY,
                stacking="exclusive",
                priority=300,
            ),
            promo(
                "best-a",
                {"kind": "percent", "value": 5, "on": "order"},
                stacking="best",
                priority=200,
            ),
            promo(
                "best-b",
                {"kind": "amount", "value": "30.00", "on": "order"},
                stacking="best",
                priority=100,
            ),
            promo(
                "stack-3",
                {"kind": "percent", "value": 3, "on": "order"},
                stacking="stackable",
                priority=50,
            ),
        )
    )
    r = till.ok_calc("R1", [line("milk", "100.00", 1, "dairy"), line("meat", "400.00", 1, "meat")])
    ids = [p["id"] for p in r["promotions"]]
    assert ids[0] == "ex-dairy"
    # best of (5% of 400 = 20.00, 30.00 amount) is best-b, only on the unlocked meat line
    assert "best-b" in ids and "best-a" not in ids
    milk, meat = r["lines"]
    assert milk["discount"] == "20.00" and milk["promotions"] == ["ex-dairy"]
    # meat: 400 - 30 = 370, then 3% of 370 = 11.10
    assert meat["discount"] == "41.10"
    assert meat["promotions"] == ["best-b", "stack-3"]


def test_tiers_decide_accrual_and_gold_only_promotions(make_till):
    till = make_till(
        program(
            promo(
                "gold-10",
                {"kind": "percent", "value": 10, "on": "order"},
                who={"card": True, "tiers": ["gold", "platinum"]},
            )
        )
    )
    anna = till.ok_calc("R1", [line("a", "1000.00")], card=ANNA)
    boris = till.ok_calc("R2", [line("a", "1000.00")], card=BORIS)
    assert anna["discount"] == "0.00" and anna["accrued"]["points"] == 30
    assert boris["discount"] == "100.00" and boris["accrued"]["points"] == 45  # 5% of 900
    assert anna["card"]["tier"] == "silver" and boris["card"]["tier"] == "gold"


def test_rolling_spend_lifts_the_tier(make_till):
    till = make_till(program())
    till.sale("BIG", [line("tv", "20000.00")], card=ANNA)
    r = till.ok_calc("NEXT", [line("a", "100.00")], card=ANNA)
    assert r["card"]["tier"] == "gold"
    assert r["accrued"]["points"] == 5


def test_visits_and_rolling_spend_count_sold_receipts_only(make_till):
    """Open calculations and cancelled receipts are no visits; a refunded one still is."""
    till = make_till(
        program(
            promo("regular", {"kind": "percent", "value": 10, "on": "order"}, who={"min_visits": 2})
        )
    )
    basket = [line("a", "100.00")]
    for rid in ("OPEN-1", "OPEN-2", "GONE"):
        till.ok_calc(rid, basket, card=ANNA)
    assert till.http.post("/v1/receipts/GONE/cancel").status_code == 200
    till.sale("SOLD-1", basket, card=ANNA)
    assert till.ok_calc("NEXT", basket, card=ANNA)["discount"] == "0.00"  # one visit
    till.sale("SOLD-2", [line("tv", "20000.00")], card=ANNA)
    body = {"refund_id": "RF-1", "lines": [{"index": 0, "qty": 1}]}
    assert till.http.post("/v1/receipts/SOLD-2/refund", json=body).status_code == 200
    r = till.ok_calc("NEXT", basket, card=ANNA)
    assert r["discount"] == "10.00"  # two visits, the refunded one counted
    # What was returned is not spend: the tier stays where 100 ₽ of purchases put it.
    assert r["card"]["tier"] == "silver"


def test_a_points_budget_runs_out_over_the_receipts_that_spend_it(make_till):
    """The points a budgeted promotion has given are kept as a total beside its uses
    (``budget_points``), not summed over them on every calculate."""
    till = make_till(
        program(promo("bonus", {"kind": "points", "value": 40}, limits={"budget_points": 100}))
    )
    given = []
    for i in range(4):
        r = till.sale(f"B-{i}", [line("a", "10.00")], card=ANNA if i % 2 else BORIS)
        given.append(next((e["points"] for e in r["promotions"] if e["id"] == "bonus"), 0))
    assert given == [40, 40, 20, 0]
    with till.service.db.read() as conn:
        rows = conn.execute("SELECT promotion_id, points FROM budget_points").fetchall()
        assert [tuple(r) for r in rows] == [("bonus", 100)]


def test_no_discount_categories_and_lines(make_till):
    till = make_till(program(promo("all-50", {"kind": "percent", "value": 50, "on": "order"})))
    r = till.ok_calc(
        "R1",
        [
            line("cig", "200.00", 1, "tobacco"),
            line("gift", "100.00", 1, "grocery", no_discount=True),
            line("milk", "100.00", 1, "dairy"),
        ],
        card=ANNA,
        redeem="max",
    )
    assert [ln["discount"] for ln in r["lines"]] == ["0.00", "0.00", "50.00"]
    assert [ln["redeemed"] for ln in r["lines"]][:2] == ["0.00", "0.00"]


def test_price_floor_holds_whatever_stacks(make_till):
    till = make_till(
        program(
            promo("p60", {"kind": "percent", "value": 60, "on": "order"}, priority=2),
            promo("p50", {"kind": "percent", "value": 50, "on": "order"}, priority=1),
            promo("m500", {"kind": "amount", "value": "500.00", "on": "order"}),
            max_discount_percent=70,
        )
    )
    r = till.ok_calc("R1", [line("a", "100.00"), line("b", "33.33")])
    for ln in r["lines"]:
        from decimal import Decimal

        assert Decimal(ln["total"]) >= (Decimal(ln["amount"]) * Decimal("0.30")).quantize(
            Decimal("0.01")
        )
    assert r["total"] == "40.00"


def test_near_miss_upsell_hint(make_till):
    till = make_till(
        program(
            promo(
                "gift-500",
                {"kind": "points", "value": 100},
                when={"min_total": "500.00"},
                hint={"near": "200.00", "text": "Ещё {missing} ₽ до подарка"},
            )
        )
    )
    r = till.ok_calc("R1", [line("a", "388.00")], card=ANNA)
    upsell = [h for h in r["hints"] if h["kind"] == "upsell"]
    assert upsell == [
        {"kind": "upsell", "text": "Ещё 112.00 ₽ до подарка", "promotion": "gift-500"}
    ]
    far = till.ok_calc("R2", [line("a", "100.00")], card=ANNA)
    assert not [h for h in far["hints"] if h["kind"] == "upsell"]


def test_ask_card_hint_without_a_card(make_till):
    till = make_till(program())
    r = till.ok_calc("R1", [line("a", "100.00")])
    assert r["card"] is None
    assert "ask_card" in [h["kind"] for h in r["hints"]]
    assert r["accrued"]["points"] == 0
