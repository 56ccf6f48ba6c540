"""The catalog's indexes, and that evaluation is deterministic and pure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from tillgate.core.rules.basket import Basket
from tillgate.core.rules.engine import Catalog, evaluate
from tillgate.core.rules.program import parse_program


def many(make, n: int) -> Catalog:
    promos = [
        make.promo(
            f"p{k:04d}",
            {"kind": "percent", "value": 1 + k % 20, "on": "matching"},
            priority=k % 7,
            when={"items": {"skus": [f"sku{k}"], "tags": [f"t{k % 50}"]}},
        )
        for k in range(n)
    ]
    promos.append(make.promo("everyone", {"kind": "points", "value": 1}))
    promos.append(make.promo("off", {"kind": "points", "value": 1}, enabled=False))
    return make.catalog(*promos)


def test_promotion_lookup_includes_disabled(make):
    cat = many(make, 3)
    assert cat.promotion("p0001").id == "p0001"
    assert cat.promotion("off").enabled is False
    assert cat.promotion("nope") is None
    assert cat.program.name == "Ромашка Бонус"
    assert [p.id for p in cat.ordered] == ["p0002", "p0001", "everyone", "p0000"]
    assert "off" not in [p.id for p in cat.ordered]


def test_index_finds_candidates_per_line_not_per_promotion(make):
    cat = many(make, 1000)
    assert len(cat.unscoped) == 1  # "everyone"; the disabled one is in no index
    lines = [make.line("sku5", "1.00", tags=("t7",)), make.line("zzz", "1.00")]
    basket = Basket.of(make.request(*lines).lines, cat.program)
    found = cat.matching(basket)
    ids = sorted(cat.ordered[r].id for r in found)
    expected = sorted(["p0005"] + [f"p{k:04d}" for k in range(1000) if k % 50 == 7])
    assert ids == expected
    assert all(lines == (0,) for lines in found.values())


def test_big_program_and_basket_evaluate(make):
    cat = many(make, 1000)
    lines = [make.line(f"sku{k * 5}", "10.00", tags=(f"t{k}",)) for k in range(200)]
    r = make.run(cat, *lines, customer=make.customer())
    assert len(r.lines) == 200 and r.discount > 0
    assert r.discount == sum(e.discount for e in r.effects)


def test_same_inputs_same_result(make):
    cat = many(make, 200)
    lines = [make.line(f"sku{k}", "3.33", k % 3 + 1, tags=(f"t{k % 9}",)) for k in range(40)]
    customer = make.customer(redeemable=10_000)
    one = make.run(cat, *lines, customer=customer, redeem="max")
    two = make.run(many(make, 200), *lines, customer=customer, redeem="max")
    assert one == two


def test_evaluate_does_not_change_its_inputs(make):
    cat = many(make, 10)
    request = make.request(make.line("sku1", "10.00"), customer=make.customer(), redeem="max")
    context = make.context()
    before = (repr(request), repr(context), repr(cat.ordered))
    evaluate(cat, request, context)
    assert (repr(request), repr(context), repr(cat.ordered)) == before


SCRIPT = """
import json, sys
from datetime import datetime
from decimal import Decimal
from tillgate.core.rules.engine import Catalog, evaluate
from tillgate.core.rules.model import Context, Customer, Line, Request
from tillgate.core.rules.program import parse_program
data = json.loads(sys.stdin.read())
cat = Catalog.build(parse_program(data))
lines = tuple(
    Line(index=k, sku=f"s{k}", qty=Decimal(k % 3 + 1), price=Decimal("7.77"),
         category=("dairy", "bread", "coffee")[k % 3], tags=(f"t{k % 4}", f"u{k % 5}"))
    for k in range(30)
)
customer = Customer(number="2900000012345", holder="A", tier="silver", redeemable=900,
                    segments=frozenset({"a", "b", "c"}))
ctx = Context(now=datetime(2026, 11, 4, 10, 30), store="s", till="t")
print(repr(evaluate(cat, Request(lines=lines, customer=customer, redeem="max"), ctx)))
"""


def test_result_does_not_depend_on_hash_randomisation(make):
    # Sets of strings iterate in a per-process order; nothing in the result may follow it.
    promos = []
    for k in range(40):
        reward = [
            {"kind": "percent", "value": 5 + k % 10, "on": "matching"},
            {"kind": "amount", "value": "3.00", "on": "matching"},
            {"kind": "free_item", "buy": 2, "get": 1},
            {"kind": "points_percent", "value": 2},
        ][k % 4]
        promos.append(
            make.promo(
                f"p{k}",
                reward,
                stacking=["stackable", "exclusive", "best"][k % 3],
                when={
                    "items": {
                        "categories": ["dairy", "bread", "coffee"][k % 3 : k % 3 + 1],
                        "tags": [f"t{k % 4}", f"u{k % 5}"],
                    }
                },
                who={"segments": ["a", "b", "c"][: k % 3]},
                hint={"near": "100.00"},
            )
        )
    data = make.file(*promos)
    parse_program(data)  # valid before it is shipped to the subprocesses
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            input=json.dumps(data),
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=Path(__file__).parent,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_program_without_promotions(make):
    cat = Catalog.build(parse_program({"program": {"name": "x"}}))
    r = make.run(cat, make.line("a", "1.00"), customer=make.customer(tier=None, redeemable=10))
    assert (r.discount, r.accrued_points, r.tier) == (0, 0, None)
    assert r.lines[0].total == Decimal("100")
