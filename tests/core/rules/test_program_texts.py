"""Per-language texts of a promotion (``text = { ru = "…", en = "…" }``) and tier titles."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tillgate.core.errors import ProgramError
from tillgate.core.rules.program import json_schema, parse_program

RU_EN = {"ru": "Ещё {missing} ₽ — скидка 10%", "en": "{missing} ₽ more for 10% off"}


def catalog(make: Any, **program: Any) -> Any:
    return make.catalog(
        make.promo(
            "dairy-10",
            {"kind": "percent", "value": 10, "on": "matching"},
            when={"min_total": "300.00", "items": {"categories": ["dairy"]}},
            hint={"near": "200.00", "text": RU_EN},
            print={"text": {"ru": "Молочная неделя", "en": "Dairy week"}},
        ),
        make.promo(
            "news",
            {
                "kind": "message",
                "text": {"ru": "Дегустация в субботу", "en": "Tasting on Saturday"},
            },
        ),
        make.promo(
            "coffee-coupon",
            {
                "kind": "coupon",
                "title": {"ru": "−15% на кофе", "en": "15% off coffee"},
                "discount": {"kind": "percent", "value": 15, "on": "order"},
            },
            when={"min_total": "50.00"},
        ),
        **program,
    )


@pytest.mark.parametrize(
    ("language", "upsell", "message", "title", "printed"),
    [
        ("ru", "Ещё 200.00 ₽ — скидка 10%", "Дегустация в субботу", "−15% на кофе", "Молочная"),
        ("en", "200.00 ₽ more for 10% off", "Tasting on Saturday", "15% off coffee", "Dairy"),
    ],
)
def test_texts_follow_the_tills_language(
    make: Any, language: str, upsell: str, message: str, title: str, printed: str
) -> None:
    cat = catalog(make)
    r = make.run(cat, make.line("milk", "100.00", category="dairy"), language=language)
    hints = {h.kind: h.text for h in r.hints}
    assert hints["upsell"] == upsell
    assert hints["promo"] == message
    assert title in hints["coupon"]
    assert [(p.kind, p.title, p.text) for p in r.print] == [
        ("coupon", title, ""),
        ("message", "news", message),
    ]
    r = make.run(cat, make.line("milk", "300.00", category="dairy"), language=language)
    assert any(p.text.startswith(printed) for p in r.print if p.promotion == "dairy-10")


def test_a_text_in_one_language_is_shown_in_the_other_too(make: Any) -> None:
    cat = make.catalog(make.promo("news", {"kind": "message", "text": {"ru": "Только по-русски"}}))
    for language in ("ru", "en"):
        r = make.run(cat, make.line("a", "1.00"), language=language)
        assert [h.text for h in r.hints if h.kind == "promo"] == ["Только по-русски"]


def test_the_plain_string_form_stays_valid(make: Any) -> None:
    cat = make.catalog(make.promo("news", {"kind": "message", "text": "Одна строка"}))
    r = make.run(cat, make.line("a", "1.00"), language="en")
    assert [h.text for h in r.hints if h.kind == "promo"] == ["Одна строка"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ({}, "at least one language"),
        ({"de": "Hallo"}, "promotions[0].reward.text.de: unknown key (promotion 'news')"),
        (5, "promotions[0].reward.text: Input should be a valid string"),
        ({"ru": ""}, "at least 1 character"),
        ({"ru": "x" * 2001}, "at most 2000 characters"),
    ],
)
def test_bad_per_language_texts_are_refused(make: Any, text: Any, expected: str) -> None:
    with pytest.raises(ProgramError) as info:
        parse_program(make.file(make.promo("news", {"kind": "message", "text": text})))
    assert any(expected in e for e in info.value.errors), info.value.errors


def test_tier_titles_in_hints(make: Any) -> None:
    tiers = [
        {"name": "silver", "min_spend": "0", "accrue_percent": 3, "title": "Серебро"},
        {
            "name": "platinum",
            "min_spend": "50000",
            "accrue_percent": 7,
            "title": {"ru": "Платина", "en": "Platinum"},
        },
    ]
    cat = make.catalog(tiers=tiers)
    customer = make.customer(tier="silver", rolling_spend=Decimal("45000"))
    r = make.run(cat, make.line("a", "1.00"), customer=customer)
    hints = {h.kind: h.text for h in r.hints}
    assert hints["greeting"] == "Анна, Серебро"
    assert hints["tier"] == "Ещё 5000.00 ₽ покупок до уровня «Платина»"
    r = make.run(cat, make.line("a", "1.00"), customer=customer, language="en")
    hints = {h.kind: h.text for h in r.hints}
    assert hints["greeting"] == "Анна, Серебро"  # one title for both languages
    assert hints["tier"] == "5000.00 ₽ more in purchases to reach Platinum"
    assert r.tier == "silver"  # the result still names the tier by its id


def test_a_tier_without_a_title_is_its_name_capitalised(make: Any) -> None:
    customer = make.customer(tier="gold", rolling_spend=Decimal("45000"))
    r = make.run(make.catalog(), make.line("a", "1.00"), customer=customer, language="en")
    hints = {h.kind: h.text for h in r.hints}
    assert hints["greeting"] == "Анна, Gold"
    assert hints["tier"] == "5000.00 ₽ more in purchases to reach Platinum"


def test_the_schema_has_both_forms() -> None:
    text = json_schema()["$defs"]["MessageReward"]["properties"]["text"]
    kinds = {option.get("type") or option.get("$ref") for option in text["oneOf"]}
    assert kinds == {"string", "#/$defs/Texts"}
    assert "title" in json_schema()["$defs"]["Tier"]["properties"]
