"""Every reward kind, with the arithmetic worked out by hand in kopecks."""

from __future__ import annotations

from datetime import date


def test_percent_on_matching_lines(make):
    cat = make.catalog(
        make.promo(
            "dairy-10", {"kind": "percent", "value": 10, "on": "matching"}, when=make.items("dairy")
        )
    )
    r = make.run(
        cat,
        make.line("milk", "89.00", 2, category="dairy"),
        make.line("bread", "50.00", category="bakery"),
    )
    assert [ln.discount for ln in r.lines] == [1780, 0]
    assert r.lines[0].promotions == ("dairy-10",)
    assert r.effects[0].discount == 1780 and r.effects[0].points == 0


def test_percent_on_order_is_spread_in_proportion(make):
    cat = make.catalog(make.promo("all-10", {"kind": "percent", "value": 10, "on": "order"}))
    r = make.run(
        cat,
        make.line("a", "100.00"),
        make.line("b", "50.00"),
        make.line("cig", "210.00", category="tobacco"),
    )
    assert [ln.discount for ln in r.lines] == [1000, 500, 0]
    assert r.discount == 1500


def test_percent_on_order_rounds_once_and_gives_the_remainder_to_the_largest_line(make):
    cat = make.catalog(make.promo("all-10", {"kind": "percent", "value": 10, "on": "order"}))
    r = make.run(cat, make.line("a", "0.05"), make.line("b", "0.05"), make.line("c", "0.06"))
    # 10% of 0.16 is 0.016 → 0.02; shares round down to 0, the whole remainder goes to
    # the largest line (domain.md: "rounding remainders go to the largest line").
    assert r.discount == 2
    assert [ln.discount for ln in r.lines] == [0, 0, 2]


def test_percent_max_caps_the_promotion_keeping_proportions(make):
    cat = make.catalog(
        make.promo(
            "p",
            {"kind": "percent", "value": 10, "on": "matching", "max": "500.00"},
            when=make.items("tv"),
        )
    )
    lines = [make.line(f"tv{k}", "3000.00", category="tv") for k in range(3)]
    r = make.run(cat, *lines)
    assert r.discount == 50000
    assert [ln.discount for ln in r.lines] == [16668, 16666, 16666]


def test_percent_max_on_order(make):
    cat = make.catalog(
        make.promo("p", {"kind": "percent", "value": 50, "on": "order", "max": "10.00"})
    )
    r = make.run(cat, make.line("a", "100.00"))
    assert r.discount == 1000


def test_percent_on_cheapest_takes_one_unit_of_the_cheapest_line(make):
    cat = make.catalog(
        make.promo(
            "half", {"kind": "percent", "value": 50, "on": "cheapest"}, when=make.items("coffee")
        )
    )
    r = make.run(
        cat,
        make.line("beans", "100.00", 3, category="coffee"),
        make.line("pods", "60.00", category="coffee"),
    )
    assert [ln.discount for ln in r.lines] == [0, 3000]


def test_percent_on_cheapest_unit_of_a_multi_unit_line(make):
    cat = make.catalog(
        make.promo(
            "half", {"kind": "percent", "value": 50, "on": "cheapest"}, when=make.items("coffee")
        )
    )
    # One unit of 3 × 33.33 is 33.33…; half of it is 16.666… → 16.67.
    r = make.run(
        cat,
        make.line("beans", "33.33", 3, category="coffee"),
        make.line("pods", "60.00", category="coffee"),
    )
    assert [ln.discount for ln in r.lines] == [1667, 0]


def test_amount_on_order_is_spread_in_proportion(make):
    cat = make.catalog(make.promo("100off", {"kind": "amount", "value": "100.00", "on": "order"}))
    r = make.run(cat, make.line("a", "300.00"), make.line("b", "100.00"))
    assert [ln.discount for ln in r.lines] == [7500, 2500]


def test_amount_never_exceeds_what_the_lines_cost(make):
    cat = make.catalog(make.promo("big", {"kind": "amount", "value": "1000.00", "on": "order"}))
    r = make.run(cat, make.line("a", "300.00"), make.line("b", "100.00"))
    assert [ln.total for ln in r.lines] == [0, 0]
    assert r.discount == 40000 and r.total == 0


def test_amount_on_matching_only_touches_matching_lines(make):
    cat = make.catalog(
        make.promo(
            "m", {"kind": "amount", "value": "30.00", "on": "matching"}, when=make.items("dairy")
        )
    )
    r = make.run(
        cat,
        make.line("milk", "100.00", category="dairy"),
        make.line("kefir", "50.00", category="dairy"),
        make.line("bread", "40.00"),
    )
    assert [ln.discount for ln in r.lines] == [2000, 1000, 0]


def test_price_sells_matching_units_at_the_price(make):
    cat = make.catalog(
        make.promo("cola", {"kind": "price", "value": "59.00"}, when={"items": {"skus": ["cola"]}})
    )
    r = make.run(cat, make.line("cola", "89.00", 3), make.line("water", "30.00"))
    assert [ln.total for ln in r.lines] == [17700, 3000]


def test_price_above_the_current_price_gives_nothing(make):
    cat = make.catalog(
        make.promo("cola", {"kind": "price", "value": "99.00"}, when={"items": {"skus": ["cola"]}})
    )
    r = make.run(cat, make.line("cola", "89.00", 3))
    assert r.discount == 0 and r.effects == () and r.uses == ()


def test_price_on_weighed_goods_is_per_kilogram(make):
    cat = make.catalog(
        make.promo("cheese", {"kind": "price", "value": "400.00"}, when=make.items("cheese"))
    )
    r = make.run(cat, make.line("gouda", "500.00", "0.350", category="cheese"))
    assert r.lines[0].amount == 17500 and r.lines[0].total == 14000


def test_price_per_receipt_caps_the_units_sold_at_the_price(make):
    cat = make.catalog(
        make.promo(
            "cola",
            {"kind": "price", "value": "59.00"},
            when={"items": {"skus": ["cola"]}},
            limits={"per_receipt": 2},
        )
    )
    r = make.run(cat, make.line("cola", "89.00", 3))
    assert r.discount == 6000


def test_price_per_receipt_goes_to_the_biggest_saving_first(make):
    cat = make.catalog(
        make.promo(
            "p",
            {"kind": "price", "value": "50.00"},
            when=make.items("wine"),
            limits={"per_receipt": 1},
        )
    )
    r = make.run(
        cat,
        make.line("cheap", "60.00", category="wine"),
        make.line("dear", "90.00", category="wine"),
    )
    assert [ln.discount for ln in r.lines] == [0, 4000]


def test_free_item_makes_the_cheapest_of_each_group_free(make):
    cat = make.catalog(
        make.promo("3for2", {"kind": "free_item", "buy": 2, "get": 1}, when=make.items("yogurt"))
    )
    r = make.run(
        cat,
        make.line("a", "100.00", 3, category="yogurt"),
        make.line("b", "50.00", 3, category="yogurt"),
    )
    # Units 100,100,100 | 50,50,50: one 100 and one 50 are free.
    assert [ln.discount for ln in r.lines] == [10000, 5000]


def test_free_item_incomplete_group_gets_nothing(make):
    cat = make.catalog(
        make.promo("3for2", {"kind": "free_item", "buy": 2, "get": 1}, when=make.items("yogurt"))
    )
    r = make.run(
        cat,
        make.line("a", "100.00", 2, category="yogurt"),
        make.line("b", "50.00", category="yogurt"),
    )
    assert [ln.discount for ln in r.lines] == [0, 5000]
    r = make.run(cat, make.line("a", "100.00", 2, category="yogurt"))
    assert r.discount == 0


def test_free_item_per_receipt_caps_groups(make):
    cat = make.catalog(
        make.promo(
            "3for2",
            {"kind": "free_item", "buy": 2, "get": 1},
            when=make.items("yogurt"),
            limits={"per_receipt": 1},
        )
    )
    r = make.run(cat, make.line("a", "30.00", 9, category="yogurt"))
    assert r.discount == 3000


def test_free_item_counts_a_weighed_line_as_one_unit(make):
    cat = make.catalog(
        make.promo("2for1", {"kind": "free_item", "buy": 1, "get": 1}, when=make.items("fruit"))
    )
    r = make.run(
        cat,
        make.line("apples", "200.00", "1.500", category="fruit"),
        make.line("pears", "100.00", "0.500", category="fruit"),
    )
    assert [ln.discount for ln in r.lines] == [0, 5000]


def test_free_item_with_a_huge_quantity_is_computed_without_listing_units(make):
    cat = make.catalog(
        make.promo("3for2", {"kind": "free_item", "buy": 2, "get": 1}, when=make.items("nails"))
    )
    r = make.run(cat, make.line("nail", "0.03", 3_000_000, category="nails"))
    assert r.discount == 3_000_000


def test_points_reward_adds_fixed_points(make):
    cat = make.catalog(make.promo("bonus", {"kind": "points", "value": 50}))
    r = make.run(cat, make.line("a", "100.00"), customer=make.customer())
    assert r.accrued_points == 3 + 50
    assert r.effects[0].points == 50 and r.effects[0].discount == 0


def test_points_need_a_card(make):
    cat = make.catalog(make.promo("bonus", {"kind": "points", "value": 50}))
    r = make.run(cat, make.line("a", "100.00"))
    assert r.accrued_points == 0 and r.effects == () and r.uses == ()


def test_points_percent_is_extra_accrual_on_matching_paid(make):
    cat = make.catalog(
        make.promo("x", {"kind": "points_percent", "value": 10}, when=make.items("dairy"))
    )
    r = make.run(
        cat,
        make.line("milk", "100.00", category="dairy"),
        make.line("bread", "100.00"),
        customer=make.customer(),
    )
    assert r.accrued_points == 6 + 10  # silver 3% of 200 + 10% of 100
    assert r.effects[0].points == 10


def test_multiplier_multiplies_the_tier_accrual_on_matching_lines(make):
    cat = make.catalog(
        make.promo("x2", {"kind": "multiplier", "value": "2"}, when=make.items("dairy"))
    )
    r = make.run(
        cat,
        make.line("milk", "200.00", category="dairy"),
        make.line("bread", "100.00"),
        customer=make.customer(tier="gold"),
    )
    assert r.accrued_points == 15 + 10  # gold 5% of 300 + one more 5% of 200


def test_message_prints_and_shows_a_hint(make):
    cat = make.catalog(make.promo("hello", {"kind": "message", "text": "Приходите ещё"}))
    r = make.run(cat, make.line("a", "10.00"))
    assert [(p.kind, p.text) for p in r.print] == [("message", "Приходите ещё")]
    assert [(h.kind, h.text, h.promotion) for h in r.hints if h.kind == "promo"] == [
        ("promo", "Приходите ещё", "hello")
    ]
    assert r.uses == ("hello",) and r.effects == ()


def test_coupon_reward_prints_a_coupon(make):
    reward = {
        "kind": "coupon",
        "discount": {"kind": "percent", "value": 15, "on": "order"},
        "valid_days": 14,
        "title": "−15% на кофе",
    }
    cat = make.catalog(make.promo("next", reward, when={"min_total": "100.00"}))
    r = make.run(cat, make.line("a", "150.00"))
    (item,) = r.print
    assert item.kind == "coupon" and item.promotion == "next" and item.title == "−15% на кофе"
    assert item.valid_until == date(2026, 11, 18)
    assert r.discount == 0 and r.uses == ("next",)
    assert any(h.kind == "coupon" and "−15% на кофе" in h.text for h in r.hints)


def test_print_text_of_an_applied_promotion_is_printed(make):
    cat = make.catalog(
        make.promo("d", {"kind": "percent", "value": 10, "on": "order"}, print={"text": "Спасибо!"})
    )
    r = make.run(cat, make.line("a", "10.00"))
    assert [(p.kind, p.promotion, p.text) for p in r.print] == [("message", "d", "Спасибо!")]
