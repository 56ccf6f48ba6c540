"""The program/promotions file: refused whole with every error by path, or accepted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tillgate.core.errors import ProgramError
from tillgate.core.rules.coupons import promotion_tag
from tillgate.core.rules.program import (
    decode_program,
    json_schema,
    load_program_file,
    parse_program,
)


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(data)
    return info.value.errors


def promo(pid: str, **kw: Any) -> dict[str, Any]:
    return {"id": pid, "name": pid, "reward": {"kind": "points", "value": 5}} | kw


def test_every_error_is_listed_by_path() -> None:
    errs = errors_of(
        {
            "program": {"name": "x", "max_redeem_percent": 150, "point_value": 1.5},
            "promotions": [
                promo("a", reward={"kind": "percent", "value": 0, "on": "order"}),
                promo("b", reward={"kind": "bogus"}),
                promo("c", colour="red"),
            ],
        }
    )
    assert "program.max_redeem_percent: must be <= 100" in errs
    assert 'program.point_value: write money as a string, e.g. "89.00"' in errs
    # by path, and by the id a person knows the promotion by
    assert "promotions[0].reward.value: must be > 0 (promotion 'a')" in errs
    assert any(e.startswith("promotions[1].reward: unknown kind 'bogus'") for e in errs)
    assert any(e.endswith("(promotion 'b')") for e in errs if e.startswith("promotions[1]"))
    assert "promotions[2].colour: unknown key (promotion 'c')" in errs


def test_duplicate_ids_and_unknown_tiers() -> None:
    errs = errors_of(
        {
            "program": {"name": "x", "tiers": [{"name": "silver", "min_spend": "0"}]},
            "promotions": [promo("a"), promo("a"), promo("g", who={"tiers": ["gold"]})],
        }
    )
    assert "promotions[1].id: duplicate id 'a'" in errs
    assert "promotions[2].who.tiers: unknown tier 'gold' (promotion 'g')" in errs


def test_tiers_must_climb_from_zero() -> None:
    errs = errors_of(
        {
            "program": {
                "name": "x",
                "tiers": [
                    {"name": "gold", "min_spend": "20000"},
                    {"name": "silver", "min_spend": "0"},
                ],
            }
        }
    )
    assert any("increasing min_spend" in e for e in errs)


def test_matching_rewards_need_items() -> None:
    errs = errors_of(
        {
            "program": {"name": "x"},
            "promotions": [
                promo("p", reward={"kind": "percent", "value": 10, "on": "matching"}),
                promo(
                    "c",
                    reward={
                        "kind": "coupon",
                        "title": "t",
                        "discount": {"kind": "percent", "value": 10, "on": "matching"},
                    },
                ),
            ],
        }
    )
    assert any(e.startswith("promotions[0]:") and "when.items" in e for e in errs)
    assert any(e.startswith("promotions[1]:") and "reward.items" in e for e in errs)


def test_coupon_promotions_whose_code_tags_collide_are_refused() -> None:
    seen: dict[int, str] = {}
    pair = None
    for n in range(200_000):
        pid = f"c{n}"
        tag = promotion_tag(pid)
        if tag in seen:
            pair = (seen[tag], pid)
            break
        seen[tag] = pid
    assert pair is not None
    coupon = {
        "kind": "coupon",
        "title": "t",
        "discount": {"kind": "amount", "value": "10.00", "on": "order"},
    }
    errs = errors_of(
        {
            "program": {"name": "x"},
            "promotions": [promo(pair[0], reward=coupon), promo(pair[1], reward=coupon)],
        }
    )
    assert any("collides" in e and e.startswith("promotions[1].id") for e in errs)
    # the same ids are fine when they are not coupon promotions: no code names them
    parse_program({"program": {"name": "x"}, "promotions": [promo(pair[0]), promo(pair[1])]})


def test_json_and_toml_files(tmp_path: Path) -> None:
    data = {
        "program": {"name": "x", "point_value": "0.50"},
        "promotions": [promo("a", when={"min_total": "10.00"})],
    }
    (tmp_path / "p.json").write_text(json.dumps(data), encoding="utf-8")
    assert load_program_file(tmp_path / "p.json").program.point_value == 0.5
    # a number with a fraction is read as an exact decimal in both formats, never a float
    (tmp_path / "n.json").write_text('{"program": {"name": "x", "point_value": 0.1}}')
    assert str(load_program_file(tmp_path / "n.json").program.point_value) == "0.1"
    (tmp_path / "n.toml").write_text('[program]\nname = "x"\npoint_value = 0.1\n')
    assert str(load_program_file(tmp_path / "n.toml").program.point_value) == "0.1"
    (tmp_path / "bad.toml").write_text('[program]\nname = "x"\npoint_value = 0.123\n')
    with pytest.raises(ProgramError, match=r"program\.point_value"):
        load_program_file(tmp_path / "bad.toml")
    with pytest.raises(ProgramError, match="not valid TOML"):
        decode_program("[program\nname = 1", fmt="toml", source="t")
    with pytest.raises(ProgramError, match="file not found"):
        load_program_file(tmp_path / "missing.toml")
    with pytest.raises(ProgramError, match="table/object"):
        parse_program([1, 2])


def test_the_schema_describes_the_file() -> None:
    schema = json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"program", "promotions"} <= set(schema["properties"])
    text = json.dumps(schema)
    for kind in (
        "percent",
        "amount",
        "price",
        "free_item",
        "points",
        "points_percent",
        "multiplier",
        "coupon",
        "stamp",
        "message",
    ):
        assert f'"{kind}"' in text
