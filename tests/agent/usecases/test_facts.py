"""Every confirmed receipt and every refund leaves its facts, once, and re-pricing the
facts of an honest receipt with the same engine agrees with it."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from typing import Any

from tests.conftest import ROOT
from tests.golden.adapter import card_records
from tillgate.agent.store import facts
from tillgate.core.rules.facts import reprice

ANNA, BORIS, VERA = "2900000012345", "2900000023456", "2900000034567"


def example(make_till: Any) -> Any:
    data = tomllib.loads((ROOT / "program.example.toml").read_text(encoding="utf-8"))
    return make_till(data, cards=card_records(ROOT / "cards.example.csv"))


def basket(n: int) -> list[dict[str, Any]]:
    return [
        {"sku": "milk", "name": "Молоко", "qty": 2 + n, "price": "89.90", "category": "dairy"},
        {"sku": "croissant", "qty": 9, "price": "59.00", "category": "bakery"},
        {"sku": "coffee", "qty": 1, "price": "1299.00", "category": "coffee"},
        {"sku": "cig", "qty": 1, "price": "210.00", "category": "tobacco"},
        {"sku": "banana", "qty": "1.250", "price": "129.90", "category": "produce"},
    ]


def all_facts(till: Any) -> list[dict[str, Any]]:
    with till.service.db.read() as conn:
        return facts.unsynced(conn, through_seq=10**9, limit=1000)


def test_honest_receipts_reprice_clean_and_refunds_are_facts_too(make_till: Any) -> None:
    till = example(make_till)
    cards = [ANNA, BORIS, VERA, None, "2900000099990"]  # the last registers on first use
    for n, card in enumerate(cards * 2):
        redeem: Any = ["max", 0, 50][n % 3] if card else 0
        kw = {"card": card, "redeem": redeem} if card else {}
        till.sale(f"R-{n}", basket(n), **kw)
        till.clock.advance(timedelta(minutes=7))
    till.confirm("R-0")  # a retry adds nothing
    till.http.post(
        "/v1/receipts/R-1/refund", json={"refund_id": "F-1", "lines": [{"index": 0, "qty": 1}]}
    )
    till.http.post("/v1/receipts/R-1/refund", json={"refund_id": "F-2"})
    got = all_facts(till)
    sales = [f for f in got if f["kind"] == "sale"]
    refunds = [f for f in got if f["kind"] == "refund"]
    assert len(sales) == len(cards) * 2 and len(refunds) == 2
    assert [f["id"] for f in refunds] == ["refund:F-1", "refund:F-2"]
    assert refunds[1]["body"]["points_reversed"] >= 0
    catalog = till.service.catalog()
    for fact in sales:
        calc = fact["body"]["calculation"]
        assert calc["program_version"] == "v1"
        assert reprice(catalog, calc["inputs"], calc["outcome"]) == [], fact["id"]
        assert (
            calc["outcome"]["accrued_points"] == fact["body"]["accrued"] or not fact["body"]["card"]
        )
    # Each fact follows the ledger entries of its receipt.
    with till.service.db.read() as conn:
        for fact in got:
            if fact["kind"] == "sale":
                sql, key = "receipt_id = ? AND refund_id IS NULL", fact["receipt_id"]
            else:
                sql, key = "refund_id = ?", fact["body"]["refund_id"]
            last = conn.execute(f"SELECT MAX(seq) FROM ledger WHERE {sql}", (key,)).fetchone()[0]
            assert last is None or last <= fact["after_seq"]


def test_a_forged_outcome_does_not_reprice_clean(make_till: Any) -> None:
    till = example(make_till)
    till.sale("R-1", basket(0), card=ANNA)
    [fact] = all_facts(till)
    calc = fact["body"]["calculation"]
    forged = calc["outcome"] | {"accrued_points": calc["outcome"]["accrued_points"] * 10}
    assert reprice(till.service.catalog(), calc["inputs"], forged)
