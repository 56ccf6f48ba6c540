"""Coupons (honoured, required, refused) and stamp cards."""

from __future__ import annotations

from datetime import date, datetime

COUPON = {
    "kind": "coupon",
    "title": "−15% на кофе",
    "valid_days": 30,
    "discount": {"kind": "percent", "value": 15, "on": "matching"},
}


def issuing(make, **fields):
    # Issued for a coffee purchase over 500.00 by card holders; honoured on coffee.
    return make.promo(
        "coffee-15",
        COUPON,
        who={"card": True},
        when={"min_total": "500.00", "items": {"categories": ["coffee"]}},
        **fields,
    )


def test_issuing_needs_the_promotions_conditions(make):
    cat = make.catalog(issuing(make))
    r = make.run(cat, make.line("c", "600.00", category="coffee"), customer=make.customer())
    assert [p.kind for p in r.print] == ["coupon"] and r.uses == ("coffee-15",)
    r = make.run(cat, make.line("c", "600.00", category="coffee"))
    assert r.print == ()


def test_honouring_a_coupon_applies_its_discount_and_issues_none(make):
    cat = make.catalog(issuing(make))
    r = make.run(
        cat,
        make.line("c", "100.00", category="coffee"),
        make.line("b", "50.00"),
        coupons=(make.coupon("coffee-15", "TG7K2M9QX4"),),
    )
    # who/when were the conditions to issue it; honouring it needs neither.
    assert [ln.discount for ln in r.lines] == [1500, 0]
    assert r.coupons_applied == ("TG7K2M9QX4",) and r.coupons_rejected == ()
    assert r.print == () and r.uses == ("coffee-15",)
    assert [(e.id, e.discount) for e in r.effects] == [("coffee-15", 1500)]


def test_honouring_an_order_wide_coupon_needs_none_of_the_items(make):
    reward = {**COUPON, "discount": {"kind": "amount", "value": "100.00", "on": "order"}}
    cat = make.catalog(make.promo("c100", reward, when={"items": {"categories": ["coffee"]}}))
    r = make.run(cat, make.line("b", "300.00"), coupons=(make.coupon("c100"),))
    assert r.discount == 10000 and r.coupons_applied == ("C1",)


def test_honouring_checks_valid_schedule_where(make):
    cat = make.catalog(issuing(make, valid={"to": "2026-11-01T00:00"}))
    r = make.run(
        cat, make.line("c", "100.00", category="coffee"), coupons=(make.coupon("coffee-15"),)
    )
    assert r.coupons_rejected == (("C1", "not_applicable"),) and r.discount == 0
    cat = make.catalog(issuing(make, where={"stores": ["store-99"]}))
    r = make.run(
        cat, make.line("c", "100.00", category="coffee"), coupons=(make.coupon("coffee-15"),)
    )
    assert r.coupons_rejected == (("C1", "not_applicable"),)


def test_coupon_with_nothing_to_discount_is_not_applicable(make):
    cat = make.catalog(issuing(make))
    r = make.run(cat, make.line("b", "100.00"), coupons=(make.coupon("coffee-15"),))
    assert r.coupons_rejected == (("C1", "not_applicable"),)


def test_expired_unknown_and_duplicate_coupons(make):
    cat = make.catalog(issuing(make))
    coupons = (
        make.coupon("coffee-15", "OLD", valid_until=date(2026, 11, 3)),
        make.coupon("gone", "WHO"),
        make.coupon("coffee-15", "A"),
        make.coupon("coffee-15", "B"),
        make.coupon("coffee-15", "TODAY", valid_until=date(2026, 11, 4)),
    )
    r = make.run(cat, make.line("c", "100.00", category="coffee"), coupons=coupons)
    assert r.coupons_applied == ("A",)
    assert r.coupons_rejected == (
        ("OLD", "expired"),
        ("WHO", "unknown_promotion"),
        ("B", "duplicate"),
        ("TODAY", "duplicate"),
    )
    assert r.discount == 1500
    warnings = [h.text for h in r.hints if h.kind == "warning"]
    assert warnings[0] == "Купон OLD не принят: срок истёк"
    assert len(warnings) == 4


def test_coupon_valid_until_today_is_accepted(make):
    cat = make.catalog(issuing(make))
    r = make.run(
        cat,
        make.line("c", "100.00", category="coffee"),
        coupons=(make.coupon("coffee-15", valid_until=date(2026, 11, 4)),),
    )
    assert r.coupons_applied == ("C1",)


def test_coupon_of_a_disabled_promotion_is_not_applicable(make):
    cat = make.catalog(issuing(make, enabled=False))
    r = make.run(
        cat, make.line("c", "100.00", category="coffee"), coupons=(make.coupon("coffee-15"),)
    )
    assert r.coupons_rejected == (("C1", "not_applicable"),)


def test_promotion_that_requires_a_coupon(make):
    promo = make.promo(
        "vip", {"kind": "amount", "value": "50.00"}, when={"coupon": True, "min_total": "200.00"}
    )
    cat = make.catalog(promo)
    r = make.run(cat, make.line("a", "300.00"), coupons=(make.coupon("vip", "V1"),))
    assert r.discount == 5000 and r.coupons_applied == ("V1",)
    # The full conditions apply: under min_total the coupon is kept for another day.
    r = make.run(cat, make.line("a", "100.00"), coupons=(make.coupon("vip", "V1"),))
    assert r.discount == 0 and r.coupons_rejected == (("V1", "not_applicable"),)


def test_coupon_of_a_promotion_that_needs_none_is_not_spent(make):
    cat = make.catalog(make.promo("all", {"kind": "percent", "value": 10, "on": "order"}))
    r = make.run(cat, make.line("a", "100.00"), coupons=(make.coupon("all"),))
    assert r.discount == 1000 and r.coupons_rejected == (("C1", "not_applicable"),)


def test_a_coupon_losing_the_best_contest_is_kept(make):
    cat = make.catalog(
        make.promo(
            "vip", {"kind": "amount", "value": "5.00"}, stacking="best", when={"coupon": True}
        ),
        make.promo("big", {"kind": "amount", "value": "50.00"}, stacking="best"),
    )
    r = make.run(cat, make.line("a", "100.00"), coupons=(make.coupon("vip"),))
    assert r.uses == ("big",) and r.coupons_rejected == (("C1", "not_applicable"),)


def test_issued_coupon_valid_until(make):
    cat = make.catalog(issuing(make))
    r = make.run(
        cat,
        make.line("c", "600.00", category="coffee"),
        customer=make.customer(),
        now=datetime(2026, 12, 20, 9, 0),
    )
    assert r.print[0].valid_until == date(2027, 1, 19)


# ---------------------------------------------------------------- stamps

STAMP = {"kind": "stamp", "every": 3, "reward": {"kind": "percent", "value": 100, "on": "cheapest"}}


def stamp_card(make, **fields):
    return make.promo("coffee-card", STAMP, who={"card": True}, when=make.items("coffee"), **fields)


def test_stamp_counts_a_matching_purchase(make):
    cat = make.catalog(stamp_card(make))
    r = make.run(cat, make.line("c", "150.00", category="coffee"), customer=make.customer())
    assert r.stamps == {"coffee-card": 1} and r.uses == ("coffee-card",)
    assert r.discount == 0 and r.effects == ()


def test_every_nth_stamp_earns_the_reward(make):
    cat = make.catalog(stamp_card(make))
    customer = make.customer(stamps={"coffee-card": 2})
    r = make.run(cat, make.line("c", "150.00", 2, category="coffee"), customer=customer)
    assert r.stamps == {"coffee-card": 3}
    assert r.discount == 15000 and [e.id for e in r.effects] == ["coffee-card"]
    customer = make.customer(stamps={"coffee-card": 3})
    r = make.run(cat, make.line("c", "150.00", category="coffee"), customer=customer)
    assert r.stamps == {"coffee-card": 4} and r.discount == 0


def test_stamp_needs_a_card_and_a_matching_line(make):
    cat = make.catalog(
        make.promo(
            "any", STAMP | {"reward": {"kind": "points", "value": 5}}, when=make.items("coffee")
        )
    )
    assert make.run(cat, make.line("c", "1.00", category="coffee")).stamps == {}
    assert make.run(cat, make.line("b", "1.00"), customer=make.customer()).stamps == {}


def test_stamp_with_a_points_reward(make):
    stamp = {"kind": "stamp", "every": 2, "reward": {"kind": "points", "value": 40}}
    cat = make.catalog(make.promo("visits", stamp, who={"card": True}))
    r = make.run(cat, make.line("a", "100.00"), customer=make.customer(stamps={"visits": 1}))
    assert r.stamps == {"visits": 2} and r.accrued_points == 43
    assert [(e.id, e.points) for e in r.effects] == [("visits", 40)]


def test_honoured_coupon_stacks_per_its_own_stacking(make):
    reward = {**COUPON, "discount": {"kind": "percent", "value": 15, "on": "order"}}
    cat = make.catalog(
        make.promo("coupon-15", reward, stacking="exclusive", priority=10),
        make.promo("all-10", {"kind": "percent", "value": 10, "on": "order"}),
    )
    r = make.run(cat, make.line("a", "100.00"), coupons=(make.coupon("coupon-15"),))
    assert r.lines[0].promotions == ("coupon-15",) and r.discount == 1500
    r = make.run(cat, make.line("a", "100.00"))
    assert r.lines[0].promotions == ("all-10",) and r.print[0].kind == "coupon"
