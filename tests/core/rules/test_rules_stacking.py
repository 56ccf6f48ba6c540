"""Stacking (stackable, exclusive, best), the price floor and lines that are never discounted."""

from __future__ import annotations


def pct(make, id, value, *, on="order", stacking="stackable", priority=0, when=None, **kw):
    reward = {"kind": "percent", "value": value, "on": on}
    return make.promo(id, reward, stacking=stacking, priority=priority, when=when or {}, **kw)


def test_stackable_promotions_apply_on_remaining_amounts(make):
    cat = make.catalog(pct(make, "a", 10, priority=2), pct(make, "b", 10, priority=1))
    r = make.run(cat, make.line("x", "100.00"))
    assert r.lines[0].total == 8100
    assert r.lines[0].promotions == ("a", "b")
    assert [(e.id, e.discount) for e in r.effects] == [("a", 1000), ("b", 900)]


def test_application_order_is_priority_then_id(make):
    cat = make.catalog(pct(make, "b", 10), pct(make, "a", 10), pct(make, "c", 10, priority=5))
    r = make.run(cat, make.line("x", "100.00"))
    assert [e.id for e in r.effects] == ["c", "a", "b"]


def test_exclusive_locks_the_lines_it_discounted(make):
    cat = make.catalog(
        pct(
            make,
            "dairy",
            10,
            on="matching",
            stacking="exclusive",
            priority=100,
            when=make.items("dairy"),
        ),
        pct(make, "all-5", 5, priority=50),
    )
    r = make.run(cat, make.line("milk", "100.00", category="dairy"), make.line("bread", "100.00"))
    assert [ln.discount for ln in r.lines] == [1000, 500]
    assert [ln.promotions for ln in r.lines] == [("dairy",), ("all-5",)]


def test_exclusive_skips_lines_an_earlier_promotion_discounted(make):
    cat = make.catalog(
        pct(make, "dairy", 10, on="matching", priority=100, when=make.items("dairy")),
        pct(make, "all-20", 20, stacking="exclusive", priority=50),
    )
    r = make.run(cat, make.line("milk", "100.00", category="dairy"), make.line("bread", "100.00"))
    assert [ln.discount for ln in r.lines] == [1000, 2000]
    assert [ln.promotions for ln in r.lines] == [("dairy",), ("all-20",)]


def test_exclusive_that_gives_nothing_locks_nothing(make):
    cat = make.catalog(
        make.promo(
            "p",
            {"kind": "price", "value": "500.00"},
            stacking="exclusive",
            priority=9,
            when=make.items("dairy"),
        ),
        pct(make, "all", 10),
    )
    r = make.run(cat, make.line("milk", "100.00", category="dairy"))
    assert r.lines[0].promotions == ("all",)


def test_best_applies_only_the_biggest_money_off(make):
    cat = make.catalog(
        pct(make, "ten", 10, stacking="best", priority=10),
        make.promo("fifty", {"kind": "amount", "value": "50.00"}, stacking="best"),
    )
    r = make.run(cat, make.line("x", "300.00"))
    assert [e.id for e in r.effects] == ["fifty"]
    assert r.discount == 5000 and r.uses == ("fifty",)


def test_best_tie_goes_to_higher_priority_then_id(make):
    cat = make.catalog(
        make.promo("b", {"kind": "amount", "value": "10.00"}, stacking="best", priority=1),
        make.promo("a", {"kind": "amount", "value": "10.00"}, stacking="best", priority=1),
        make.promo("z", {"kind": "amount", "value": "10.00"}, stacking="best", priority=0),
    )
    r = make.run(cat, make.line("x", "300.00"))
    assert r.uses == ("a",)


def test_best_contest_runs_at_the_first_best_promotion_position(make):
    cat = make.catalog(
        pct(make, "best-10", 10, stacking="best", priority=100),
        pct(make, "stack-50", 50, priority=90),
        make.promo("best-60", {"kind": "amount", "value": "60.00"}, stacking="best", priority=80),
    )
    # Simulated on 100.00 before stack-50: 10.00 vs 60.00 → best-60 wins, then 50% of 40.00.
    r = make.run(cat, make.line("x", "100.00"))
    assert [(e.id, e.discount) for e in r.effects] == [("best-60", 6000), ("stack-50", 2000)]


def test_best_does_not_apply_when_none_gives_money(make):
    cat = make.catalog(
        make.promo(
            "p", {"kind": "price", "value": "500.00"}, stacking="best", when=make.items("dairy")
        ),
    )
    r = make.run(cat, make.line("milk", "100.00", category="dairy"))
    assert r.effects == () and r.uses == ()


def test_best_respects_exclusive_locks(make):
    cat = make.catalog(
        pct(
            make,
            "excl",
            10,
            on="matching",
            stacking="exclusive",
            priority=100,
            when=make.items("dairy"),
        ),
        pct(make, "best-order", 20, stacking="best"),
    )
    r = make.run(cat, make.line("milk", "100.00", category="dairy"), make.line("bread", "100.00"))
    assert [ln.promotions for ln in r.lines] == [("excl",), ("best-order",)]


def test_point_rewards_stack_with_exclusive_and_best(make):
    cat = make.catalog(
        pct(
            make,
            "excl",
            10,
            on="matching",
            stacking="exclusive",
            priority=100,
            when=make.items("dairy"),
        ),
        make.promo(
            "pp", {"kind": "points_percent", "value": 10}, stacking="best", when=make.items("dairy")
        ),
        make.promo("bonus", {"kind": "points", "value": 7}, stacking="exclusive"),
    )
    r = make.run(cat, make.line("milk", "100.00", category="dairy"), customer=make.customer())
    assert [e.id for e in r.effects] == ["excl", "bonus", "pp"]
    # silver 3% of 90.00 = 2.7, +10% of 90.00 = 9, +7: 18.7 → 18
    assert r.accrued_points == 18


def test_no_line_goes_below_the_floor_whatever_stacks(make):
    cat = make.catalog(
        pct(make, "a", 60, priority=2), pct(make, "b", 60, priority=1), max_discount_percent=70
    )
    r = make.run(cat, make.line("x", "100.00"))
    assert r.lines[0].total == 3000
    assert [(e.id, e.discount) for e in r.effects] == [("a", 6000), ("b", 1000)]


def test_floor_is_rounded_half_up(make):
    cat = make.catalog(pct(make, "all", 100), max_discount_percent=90)
    r = make.run(cat, make.line("a", "0.15"), make.line("b", "0.14"))
    # 10% of 0.15 is 0.015 → 0.02; of 0.14 it is 0.014 → 0.01.
    assert [ln.total for ln in r.lines] == [2, 1]


def test_max_discount_percent_zero_means_no_discount_at_all(make):
    cat = make.catalog(pct(make, "all", 50), max_discount_percent=0)
    r = make.run(cat, make.line("a", "100.00"))
    assert r.discount == 0 and r.effects == ()


def test_amount_spread_respects_the_floor_and_moves_the_rest_to_other_lines(make):
    cat = make.catalog(
        make.promo("off", {"kind": "amount", "value": "100.00"}), max_discount_percent=50
    )
    r = make.run(cat, make.line("a", "100.00"), make.line("b", "200.00"))
    # Proportional would be 33.33/66.67; both fit under 50%.
    assert [ln.discount for ln in r.lines] == [3333, 6667]
    r = make.run(cat, make.line("a", "20.00"), make.line("b", "180.00"))
    # a may lose at most 10.00; b takes the rest (still under its 90.00 room).
    assert [ln.discount for ln in r.lines] == [1000, 9000]


def test_no_discount_lines_and_categories_are_never_touched(make):
    cat = make.catalog(pct(make, "all", 50), make.promo("m", {"kind": "amount", "value": "500.00"}))
    r = make.run(
        cat,
        make.line("a", "100.00"),
        make.line("b", "100.00", no_discount=True),
        make.line("c", "100.00", category="tobacco"),
        customer=make.customer(redeemable=10_000),
        redeem="max",
    )
    assert [ln.discount for ln in r.lines] == [10000, 0, 0]
    assert [ln.redeemed for ln in r.lines] == [0, 0, 0]
    assert [ln.eligible for ln in r.lines] == [True, False, False]
    assert r.accrued_points == 0


def test_non_eligible_lines_do_not_count_toward_min_total(make):
    cat = make.catalog(pct(make, "big", 10, when={"min_total": "150.00"}))
    r = make.run(cat, make.line("a", "100.00"), make.line("c", "100.00", category="tobacco"))
    assert r.effects == ()
    r = make.run(cat, make.line("a", "100.00"), make.line("c", "100.00"))
    assert r.discount == 2000


def test_min_total_is_measured_before_any_discount(make):
    cat = make.catalog(
        pct(make, "first", 50, priority=9), pct(make, "big", 10, when={"min_total": "100.00"})
    )
    r = make.run(cat, make.line("a", "100.00"))
    assert [e.id for e in r.effects] == ["first", "big"]


def test_a_stamp_whose_reward_loses_the_best_contest_still_counts(make):
    cat = make.catalog(
        make.promo(
            "card",
            {
                "kind": "stamp",
                "every": 2,
                "reward": {"kind": "amount", "value": "5.00", "on": "order"},
            },
            stacking="best",
            who={"card": True},
        ),
        make.promo("big", {"kind": "amount", "value": "50.00"}, stacking="best"),
    )
    r = make.run(cat, make.line("a", "100.00"), customer=make.customer(stamps={"card": 1}))
    assert r.stamps == {"card": 2}
    assert [e.id for e in r.effects] == ["big"]
    assert r.uses == ("big", "card")


def test_a_priced_receipt_gets_points_and_prints_but_no_money_off(make):
    # Interception: the POS has already printed the prices, so money-off promotions are
    # skipped and points are earned on what was actually paid.
    cat = make.catalog(
        pct(make, "all-10", 10),
        make.promo("x2", {"kind": "points", "value": 7}),
        make.promo("hello", {"kind": "message", "text": "Спасибо!"}),
    )
    customer = make.customer(tier="silver")
    r = make.run(cat, make.line("x", "100.00"), customer=customer, money_off=False)
    assert r.discount == 0 and r.lines[0].total == 10000
    assert [e.id for e in r.effects if e.points] == ["x2"]
    assert r.accrued_points == 3 + 7  # silver 3% of 100.00, plus the points reward
    assert [p.kind for p in r.print] == ["message"]
    priced = make.run(cat, make.line("x", "100.00"), customer=customer)
    assert priced.discount == 1000
