"""Hints for the cashier: greeting, balance, near misses, tier progress, order, language."""

from __future__ import annotations

from datetime import date
from decimal import Decimal


def kinds(result):
    return [h.kind for h in result.hints]


def test_ask_card_when_no_card(make):
    r = make.run(make.catalog(), make.line("a", "1.00"))
    assert [(h.kind, h.text) for h in r.hints] == [("ask_card", "Спросите карту лояльности")]
    r = make.run(make.catalog(), make.line("a", "1.00"), language="en")
    assert r.hints[0].text == "Ask for the loyalty card"


def test_greeting_balance_and_tier_progress(make):
    customer = make.customer(
        tier="silver", balance=1240, redeemable=620, rolling_spend=Decimal("15000")
    )
    r = make.run(make.catalog(), make.line("a", "2000.00"), customer=customer)
    assert [(h.kind, h.text) for h in r.hints] == [
        ("greeting", "Анна, Silver"),
        ("balance", "Баланс 1240 б., к списанию 620"),
        ("tier", "Ещё 5000.00 ₽ покупок до уровня «Gold»"),
    ]


def test_greeting_without_a_name_shows_a_masked_card(make):
    r = make.run(
        make.catalog(),
        make.line("a", "1.00"),
        customer=make.customer(holder="", tier="platinum"),
        language="en",
    )
    assert r.hints[0].text == "Card 2900•••••2345, Platinum"
    assert "tier" not in kinds(r)  # no tier above platinum


def test_upsell_near_min_total(make):
    gift = make.promo(
        "gift-500",
        {"kind": "points", "value": 100},
        when={"min_total": "500.00"},
        hint={"near": "200.00", "text": "Ещё {missing} ₽ до подарка"},
    )
    cat = make.catalog(gift)
    r = make.run(cat, make.line("a", "388.00"), make.line("cig", "300.00", category="tobacco"))
    up = [h for h in r.hints if h.kind == "upsell"]
    assert [(h.text, h.promotion) for h in up] == [("Ещё 112.00 ₽ до подарка", "gift-500")]
    # Too far away, or already there: no hint.
    assert "upsell" not in kinds(make.run(cat, make.line("a", "299.99")))
    assert "upsell" not in kinds(make.run(cat, make.line("a", "500.00")))


def test_upsell_default_text_in_both_languages(make):
    gift = make.promo(
        "gift",
        {"kind": "points", "value": 100},
        name="Подарок",
        when={"min_total": "500.00"},
        hint={"near": "200.00"},
    )
    cat = make.catalog(gift)
    r = make.run(cat, make.line("a", "450.00"))
    assert [h.text for h in r.hints if h.kind == "upsell"] == ["Ещё 50.00 ₽ до «Подарок»"]
    r = make.run(cat, make.line("a", "450.00"), language="en")
    assert [h.text for h in r.hints if h.kind == "upsell"] == ["50.00 ₽ more for “Подарок”"]


def test_upsell_on_missing_units(make):
    promo = make.promo(
        "3for2",
        {"kind": "free_item", "buy": 2, "get": 1},
        name="3 по цене 2",
        when=make.items("yogurt", min_qty=3),
        hint={"near": "2", "text": "Возьмите ещё {missing} шт. — одна бесплатно"},
    )
    cat = make.catalog(promo)
    r = make.run(cat, make.line("y", "40.00", category="yogurt"))
    assert [h.text for h in r.hints if h.kind == "upsell"] == [
        "Возьмите ещё 2 шт. — одна бесплатно"
    ]
    # No yogurt at all: nothing to build on, no hint.
    assert "upsell" not in kinds(make.run(cat, make.line("x", "40.00")))


def test_upsell_only_when_min_total_is_the_only_miss(make):
    members = make.promo(
        "m",
        {"kind": "points", "value": 100},
        who={"card": True},
        when={"min_total": "500.00"},
        hint={"near": "200.00"},
    )
    cat = make.catalog(members)
    assert "upsell" not in kinds(make.run(cat, make.line("a", "450.00")))
    assert "upsell" in kinds(make.run(cat, make.line("a", "450.00"), customer=make.customer()))


def test_upsells_smallest_missing_first(make):
    cat = make.catalog(
        make.promo(
            "far",
            {"kind": "points", "value": 1},
            when={"min_total": "600.00"},
            hint={"near": "300.00"},
        ),
        make.promo(
            "close",
            {"kind": "points", "value": 1},
            when={"min_total": "400.00"},
            hint={"near": "300.00"},
        ),
    )
    r = make.run(cat, make.line("a", "350.00"))
    assert [h.promotion for h in r.hints if h.kind == "upsell"] == ["close", "far"]


def test_upsell_text_with_other_braces_is_printed_as_written(make):
    promo = make.promo(
        "p",
        {"kind": "points", "value": 1},
        when={"min_total": "10.00"},
        hint={"near": "10.00", "text": "{name} {missing} {}"},
    )
    r = make.run(make.catalog(promo), make.line("a", "5.00"))
    assert [h.text for h in r.hints if h.kind == "upsell"] == ["{name} 5.00 {}"]


def test_birthday_hint(make):
    cat = make.catalog(birthday_points=200)
    r = make.run(cat, make.line("a", "1.00"), customer=make.customer(birthday=date(1990, 11, 6)))
    assert ("birthday", "День рождения 06.11: +200 б.") in [(h.kind, h.text) for h in r.hints]
    r = make.run(
        cat,
        make.line("a", "1.00"),
        language="en",
        customer=make.customer(birthday=date(1990, 11, 6), last_birthday_bonus=2026),
    )
    assert ("birthday", "Birthday Nov 6") in [(h.kind, h.text) for h in r.hints]


def test_hint_order(make):
    cat = make.catalog(
        make.promo(
            "gift",
            {"kind": "points", "value": 1},
            when={"min_total": "500.00"},
            hint={"near": "500.00"},
        ),
        make.promo(
            "next",
            {
                "kind": "coupon",
                "title": "−15%",
                "discount": {"kind": "percent", "value": 15, "on": "order"},
            },
        ),
        make.promo("msg", {"kind": "message", "text": "Привет"}),
        birthday_points=200,
    )
    r = make.run(
        cat,
        make.line("a", "100.00"),
        coupons=(make.coupon("nope"),),
        customer=make.customer(birthday=date(1990, 11, 4)),
    )
    assert kinds(r) == [
        "greeting",
        "birthday",
        "balance",
        "upsell",
        "tier",
        "promo",
        "coupon",
        "warning",
    ]
    r = make.run(cat, make.line("a", "100.00"), coupons=(make.coupon("nope"),))
    # No card: asking for it comes first, before anything the card would unlock.
    assert kinds(r) == ["ask_card", "upsell", "promo", "coupon", "warning"]
