"""``[program.limits]``: the file's table, the one bounds check, and the points a receipt earns."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from tests.conftest import ROOT
from tests.core.rules.conftest import NOW, base_program
from tests.core.rules.extremes import MAX_TOTAL, Basket, baskets, within
from tillgate.core.errors import ProgramError
from tillgate.core.money import to_kop
from tillgate.core.rules.bounds import (
    MAX_RECEIPT_POINTS,
    check_bounds,
    describe,
    receipt_points_bound,
    receipt_redeem_bound,
)
from tillgate.core.rules.engine import Catalog, evaluate
from tillgate.core.rules.model import Context, Customer, Line, Request
from tillgate.core.rules.program import (
    ProgramLimits,
    decode_program,
    json_schema,
    load_program_file,
    parse_program,
)

LIMITS = ProgramLimits()


def lines(*pairs: tuple[str, str]) -> list[Line]:
    return [
        Line(index=i, sku=f"S{i}", qty=Decimal(q), price=Decimal(p))
        for i, (q, p) in enumerate(pairs)
    ]


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(data)
    return info.value.errors


# ---------------------------------------------------------------- the table


def test_defaults_when_the_table_is_absent() -> None:
    limits = parse_program({"program": {"name": "x"}}).program.limits
    assert limits.max_qty == 10_000
    assert limits.max_unit_price == Decimal("10000000.00")
    assert limits.max_receipt_total == Decimal("100000000.00")
    assert limits.max_lines == 1000
    assert limits.max_clock_skew_seconds == 300


def test_the_table_in_toml_and_in_the_schema() -> None:
    pf = decode_program(
        '[program]\nname = "x"\n[program.limits]\nmax_qty = 500.5\n'
        'max_unit_price = "250000.00"\nmax_receipt_total = "1000000.00"\nmax_lines = 200\n'
        "max_clock_skew_seconds = 60\n",
        fmt="toml",
        source="t",
    )
    assert pf.program.limits == ProgramLimits(
        max_qty=Decimal("500.5"),
        max_unit_price=Decimal("250000.00"),
        max_receipt_total=Decimal("1000000.00"),
        max_lines=200,
        max_clock_skew_seconds=60,
    )
    limits = json_schema()["$defs"]["ProgramLimits"]
    assert set(limits["properties"]) == {
        "max_qty",
        "max_unit_price",
        "max_receipt_total",
        "max_lines",
        "max_clock_skew_seconds",
    }
    assert limits["properties"]["max_clock_skew_seconds"]["default"] == 300
    assert "limits" in json.dumps(json_schema()["$defs"]["Program"])


def test_limits_cannot_be_raised_past_their_ceilings() -> None:
    errs = errors_of(
        {
            "program": {
                "name": "x",
                "limits": {
                    "max_qty": "100000.001",
                    "max_unit_price": "100000000.00",
                    "max_receipt_total": "1000000000.01",
                    "max_lines": 10_001,
                    "max_clock_skew_seconds": 0,
                    "max_basket": 1,
                },
            }
        }
    )
    assert "program.limits.max_qty: must be <= 100000" in errs
    assert "program.limits.max_unit_price: must be <= 99999999.99" in errs
    assert "program.limits.max_receipt_total: must be <= 1000000000.00" in errs
    assert "program.limits.max_lines: must be <= 10000" in errs
    assert "program.limits.max_clock_skew_seconds: must be >= 1" in errs
    assert "program.limits.max_basket: unknown key" in errs
    errs = errors_of({"program": {"name": "x", "limits": {"max_unit_price": 10.5, "max_qty": 0}}})
    assert 'program.limits.max_unit_price: write money as a string, e.g. "89.00"' in errs
    assert "program.limits.max_qty: must be > 0" in errs


# ---------------------------------------------------------------- the check


def test_within_the_limits_nothing_is_said() -> None:
    assert check_bounds(LIMITS, lines(("10000", "10000.00"))) == []  # exactly the total
    assert check_bounds(LIMITS, lines(("10", "10000000.00"))) == []
    assert check_bounds(LIMITS, lines(("0.001", "0.00"), ("10000", "0.01"))) == []
    assert check_bounds(LIMITS, lines(*[("1", "1.00")] * 1000)) == []


def test_each_breach_names_the_line_and_the_limit() -> None:
    (b,) = check_bounds(LIMITS, lines(("1", "1.00"), ("10000.001", "0.01")))
    assert (b.limit, b.line) == ("max_qty", 1)
    assert str(b) == "lines[1].qty 10000.001 is outside 0 < qty <= 10000 (program.limits.max_qty)"
    (b,) = check_bounds(LIMITS, lines(("1", "10000000.01")))
    assert (b.limit, b.line) == ("max_unit_price", 0)
    assert "lines[0].price 10000000.01" in b.message and "10000000.00" in b.message
    (b,) = check_bounds(LIMITS, lines(("10000", "10000.00"), ("1", "0.01")))
    assert (b.limit, b.line) == ("max_receipt_total", None)
    assert b.message == (
        "the receipt comes to 100000000.01 before discounts, over "
        "program.limits.max_receipt_total (100000000.00)"
    )
    (b,) = check_bounds(LIMITS, lines(*[("1", "1.00")] * 1001))
    assert (b.limit, b.line) == ("max_lines", None) and "1001 lines" in b.message


def test_bad_facts_are_out_of_range_too() -> None:
    # Head office checks what a till sent, which no POS API parser has seen.
    kinds = [(b.limit, b.line) for b in check_bounds(LIMITS, lines(("0", "1"), ("1", "-1")))]
    assert kinds == [("max_qty", 0), ("max_unit_price", 1)]


def test_every_breach_is_reported_and_the_message_stays_short() -> None:
    worst = lines(*[("100000", "99999999.99")] * 1001)
    breaches = check_bounds(LIMITS, worst)
    assert len(breaches) == 1 + 2 * 1001 + 1
    text = describe(breaches)
    assert text.startswith("the basket has 1001 lines") and text.endswith("(+1999 more)")


@settings(max_examples=300, deadline=None)
@given(basket=baskets())
def test_the_check_agrees_with_the_oracle(basket: Basket) -> None:
    found = check_bounds(
        LIMITS, [Line(index=i, sku="s", qty=q, price=p) for i, (q, p) in enumerate(basket)]
    )
    assert (found == []) == within(basket)


# ---------------------------------------------------------------- points one receipt earns


def stamp_and_multiplier(**program: Any) -> dict[str, Any]:
    items = {"items": {"categories": ["dairy"]}}
    return {
        "program": base_program(welcome_points=100, birthday_points=200, **program),
        "promotions": [
            {"id": "x5", "name": "x5", "when": items, "reward": {"kind": "multiplier", "value": 5}},
            {
                "id": "pp",
                "name": "pp",
                "when": items,
                "reward": {"kind": "points_percent", "value": 10},
            },
            {"id": "b", "name": "b", "reward": {"kind": "points", "value": 50}},
            {
                "id": "st",
                "name": "st",
                "reward": {"kind": "stamp", "every": 3, "reward": {"kind": "points", "value": 7}},
            },
        ],
    }


def test_the_points_bound_counts_every_reward() -> None:
    pf = parse_program(stamp_and_multiplier())
    # 100 000 000.00 paid at 1.00 a point: 7% top tier + 10% + 7% x (5 - 1) = 45%,
    # then 100 welcome + 200 birthday + 50 + 7 fixed.
    assert receipt_points_bound(pf) == 45_000_000 + 357
    example = load_program_file(ROOT / "program.example.toml")
    assert receipt_points_bound(example) < 10**8


def test_a_program_whose_receipt_could_wedge_the_push_is_refused() -> None:
    # A hundredth of a rouble a point and fifteen x100 multipliers on the 7% tier:
    # 10^10 points per 100% of a full receipt, times 7% + 10% + 15 x 7% x 99 = 10 412%.
    data = stamp_and_multiplier(point_value="0.01", max_redeem_percent=10)
    x100 = data["promotions"][0] | {"reward": {"kind": "multiplier", "value": 100}}
    data["promotions"][:1] = [x100 | {"id": f"x100-{k}", "name": "x100"} for k in range(15)]
    errs = errors_of(data)
    assert len(errs) == 1 and errs[0].startswith(
        "program.limits.max_receipt_total: one receipt could earn up to 1041200000357 points"
    )
    assert f"more than the {MAX_RECEIPT_POINTS} one receipt may earn" in errs[0]
    # A chain that wants that program lowers the limit instead (10 000.00 a receipt).
    data["program"]["limits"] = {"max_receipt_total": "10000.00"}
    assert receipt_points_bound(parse_program(data)) == 104_120_357
    # Fixed bonuses count too.
    (err,) = errors_of({"program": {"name": "x", "welcome_points": MAX_RECEIPT_POINTS + 1}})
    assert "one receipt could earn up to 1000000000001 points" in err


def test_what_one_receipt_could_spend() -> None:
    data = {"program": base_program(point_value="0.01", max_redeem_percent=100)}
    assert receipt_redeem_bound(parse_program(data)) == 10**10  # all of 10^10 kopecks
    data["program"]["limits"] = {"max_receipt_total": "1000000000.00"}  # the ceiling
    assert receipt_redeem_bound(parse_program(data)) == 10**11 < MAX_RECEIPT_POINTS
    assert receipt_redeem_bound(load_program_file(ROOT / "program.example.toml")) == 5 * 10**7


@settings(max_examples=200, deadline=None)
@given(basket=baskets())
def test_what_the_engine_prices_within_the_limits_stays_within_the_bound(basket: Basket) -> None:
    pf = parse_program(stamp_and_multiplier())
    bound = receipt_points_bound(pf)
    engine_lines = tuple(
        Line(index=i, sku=f"S{i}", qty=q, price=p, category="dairy")
        for i, (q, p) in enumerate(basket)
    )
    if check_bounds(pf.program.limits, engine_lines):
        return
    member = Customer(
        number="2900000000011", tier="platinum", stamps={"st": 2}, birthday=NOW.date()
    )
    result = evaluate(
        Catalog.build(pf),
        Request(lines=engine_lines, customer=member),
        Context(now=NOW, store="s", till="t"),
    )
    assert result.subtotal <= to_kop(MAX_TOTAL)
    assert 0 < result.accrued_points <= bound <= MAX_RECEIPT_POINTS


def test_the_example_programs_commented_limits_are_the_defaults(tmp_path: Path) -> None:
    text = (ROOT / "program.example.toml").read_text(encoding="utf-8")
    table = [ln for ln in text.splitlines() if ln.startswith("# [program.limits]")]
    assert table, "program.example.toml shows [program.limits]"
    start = text.index(table[0])
    block = text[start:].split("\n\n", 1)[0]
    uncommented = text.replace(block, "\n".join(ln[2:] for ln in block.splitlines()))
    assert "\n[program.limits]" in uncommented and "\nmax_clock_skew_seconds = 300" in uncommented
    (tmp_path / "p.toml").write_text(uncommented, encoding="utf-8")
    assert load_program_file(tmp_path / "p.toml").program.limits == ProgramLimits()
