"""Checks across a program file: every refusal in one pass, named by id; and the warnings."""

from __future__ import annotations

from typing import Any

import pytest

from tillgate.core.errors import ProgramError
from tillgate.core.rules.coupons import promotion_tag
from tillgate.core.rules.program import parse_program
from tillgate.core.rules.program_checks import program_warnings

PERCENT = {"kind": "percent", "value": 10, "on": "order"}


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(data)
    return info.value.errors


def colliding_ids() -> tuple[str, str]:
    seen: dict[int, str] = {}
    for n in range(200_000):
        pid = f"c{n}"
        first = seen.setdefault(promotion_tag(pid), pid)
        if first != pid:
            return first, pid
    raise AssertionError("no collision found")


def test_cross_checks_are_reported_with_field_errors_in_one_pass(make: Any) -> None:
    a, b = colliding_ids()
    coupon = {"kind": "coupon", "title": "t", "discount": PERCENT}
    errs = errors_of(
        make.file(
            make.promo("bad-value", {"kind": "percent", "value": 0, "on": "order"}),
            make.promo("gold-only", PERCENT, who={"tiers": ["golden"]}),
            make.promo("twice", PERCENT),
            make.promo("twice", PERCENT),
            make.promo(a, coupon),
            make.promo(b, {"kind": "amount", "value": "5.00"}, when={"coupon": "true"}),
        )
    )
    assert errs == [
        "promotions[0].reward.value: must be > 0 (promotion 'bad-value')",
        "promotions[1].who.tiers: unknown tier 'golden' (promotion 'gold-only')",
        "promotions[3].id: duplicate id 'twice'",
        f"promotions[5].id: its coupon code tag collides with promotions[4] ({a!r}); "
        f"rename one (promotion {b!r})",
    ]


def test_cross_checks_alone_are_reported_as_before(make: Any) -> None:
    errs = errors_of(make.file(make.promo("x", PERCENT, who={"tiers": ["golden"]})))
    assert errs == ["promotions[0].who.tiers: unknown tier 'golden' (promotion 'x')"]


def test_unknown_tiers_are_not_judged_by_a_tier_list_that_cannot_be_read(make: Any) -> None:
    data = make.file(make.promo("x", PERCENT, who={"tiers": ["gold"]}))
    data["program"]["tiers"] = [{"min_spend": "0"}]  # no name: a field error of its own
    errs = errors_of(data)
    assert errs == ["program.tiers[0].name: is required"]


def test_a_promotion_without_a_readable_id_is_named_by_its_path(make: Any) -> None:
    promo = make.promo("x", {"kind": "percent", "value": 0, "on": "order"})
    promo["id"] = 7
    errs = errors_of(make.file(promo))
    assert "promotions[0].reward.value: must be > 0" in errs


def test_program_errors_are_not_named_after_a_promotion(make: Any) -> None:
    errs = errors_of(make.file(make.promo("x", PERCENT), max_redeem_percent=150))
    assert errs == ["program.max_redeem_percent: must be <= 100"]


# ---------------------------------------------------------------- warnings


def warnings_of(make: Any, *promotions: dict[str, Any], **kw: Any) -> list[str]:
    categories = kw.pop("categories", None)
    file = parse_program(make.file(*promotions, **kw))
    return program_warnings(file, known_categories=categories)


def test_a_category_no_product_has(make: Any) -> None:
    dairy = make.promo("dairy-10", PERCENT, when={"items": {"categories": ["dary"]}})
    known = {"dairy", "bakery"}
    got = warnings_of(make, dairy, categories=known)
    assert got == [
        "program.no_discount_categories: no product in the product list has category "
        "'tobacco'; check the spelling, or the product list",
        "promotions[0].when.items.categories: no product in the product list has category "
        "'dary' (promotion 'dairy-10'); check the spelling, or the product list",
    ]
    # without a product list nothing is judged
    assert warnings_of(make, dairy) == []


def test_a_category_a_match_rule_gives_is_known(make: Any) -> None:
    data = make.file()
    data["categories"] = {"match": [{"pattern": "сигарет", "category": "tobacco"}]}
    assert program_warnings(parse_program(data), known_categories=set()) == []


def test_a_coupons_own_items_are_checked(make: Any) -> None:
    coupon = make.promo(
        "coffee-coupon",
        {
            "kind": "coupon",
            "title": "t",
            "items": {"categories": ["cofee"]},
            "discount": {"kind": "percent", "value": 15, "on": "matching"},
        },
        when={"min_total": "1.00"},
    )
    got = warnings_of(make, coupon, categories={"tobacco"})
    assert len(got) == 1 and got[0].startswith("promotions[0].reward.items.categories:")


def test_equal_priorities_that_meet_on_a_line(make: Any) -> None:
    dairy = make.promo(
        "dairy-10",
        {"kind": "percent", "value": 10, "on": "matching"},
        priority=100,
        when={"items": {"categories": ["dairy"]}},
    )
    order = make.promo("Order-50", {"kind": "amount", "value": "50.00"}, priority=100)
    got = warnings_of(make, dairy, order)
    assert len(got) == 1
    warning = got[0]
    # 'O' sorts before 'd': the engine compares ids character by character
    assert warning.startswith(
        "promotions[0].priority: 'dairy-10' has the same priority (100) as 'Order-50' "
        "(promotions[1]) and both can take money off one receipt"
    )
    assert "id order, character by character ('Order-50' first)" in warning
    # the engine does apply them in that order
    cat = make.catalog(dairy, order)
    assert [p.id for p in cat.ordered] == ["Order-50", "dairy-10"]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # different priorities
        ({"priority": 1}, {"priority": 2}),
        # lines that cannot meet: one category each
        (
            {"when": {"items": {"categories": ["dairy"]}}},
            {"when": {"items": {"categories": ["meat"]}}},
        ),
        ({"when": {"items": {"skus": ["1"]}}}, {"when": {"items": {"skus": ["2"]}}}),
        # never on one receipt: stores, tills, tiers, days, dates
        ({"where": {"stores": ["s1"]}}, {"where": {"stores": ["s2"]}}),
        ({"where": {"tills": ["t1"]}}, {"where": {"tills": ["t2"]}}),
        ({"who": {"tiers": ["gold"]}}, {"who": {"tiers": ["silver"]}}),
        ({"schedule": {"days": ["mon"]}}, {"schedule": {"days": ["tue"]}}),
        (
            {"valid": {"from": "2026-01-01T00:00", "to": "2026-01-31T23:59"}},
            {"valid": {"from": "2026-02-01T00:00"}},
        ),
        # switched off
        ({"enabled": False}, {}),
    ],
)
def test_no_warning_when_order_cannot_matter(
    make: Any, a: dict[str, Any], b: dict[str, Any]
) -> None:
    reward = {"kind": "percent", "value": 10, "on": "matching"}
    items = {"when": {"items": {"tags": ["any"]}}}
    first = make.promo("a", reward, **(items | a))
    second = make.promo("b", reward, **(items | b))
    assert warnings_of(make, first, second) == []


def test_no_warning_for_points(make: Any) -> None:
    a = make.promo("a", {"kind": "points", "value": 5})
    b = make.promo("b", {"kind": "multiplier", "value": 2})
    c = make.promo("c", {"kind": "message", "text": "hi"})
    d = make.promo("d", PERCENT)  # the one money-off promotion has nothing to meet
    assert warnings_of(make, a, b, c, d) == []


def test_two_best_promotions_compete_even_on_other_lines(make: Any) -> None:
    dairy = make.promo(
        "dairy",
        {"kind": "percent", "value": 10, "on": "matching"},
        stacking="best",
        when={"items": {"categories": ["dairy"]}},
    )
    meat = make.promo(
        "meat",
        {"kind": "percent", "value": 10, "on": "matching"},
        stacking="best",
        when={"items": {"categories": ["meat"]}},
    )
    got = warnings_of(make, dairy, meat)
    assert len(got) == 1 and "a tie in their `best` contest" in got[0]


def test_a_coupon_and_a_stamp_take_money_off_too(make: Any) -> None:
    coupon = make.promo(
        "coupon",
        {"kind": "coupon", "title": "t", "discount": PERCENT},
        when={"min_total": "1.00"},
    )
    stamp = make.promo(
        "stamp",
        {"kind": "stamp", "every": 3, "reward": {"kind": "amount", "value": "5.00"}},
    )
    got = warnings_of(make, coupon, stamp)
    assert len(got) == 1 and "('coupon' first)" in got[0]


def test_the_example_program_has_no_warnings() -> None:
    from tests.conftest import ROOT
    from tillgate.core.rules.program import load_program_file

    file = load_program_file(ROOT / "program.example.toml")
    categories = {"dairy", "bakery", "coffee", "produce", "meat", "grocery", "household"}
    assert program_warnings(file, known_categories=categories) == []
