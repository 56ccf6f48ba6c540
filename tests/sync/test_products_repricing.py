"""Till and head office agree on a receipt whose tobacco line the till's product list (not
the POS) resolved: the facts carry each line's resolved sku, category and match, and
head office re-prices them to the same points."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import ANNA, program
from tillgate.agent.store import products as store
from tillgate.agent.usecases import sale_request
from tillgate.core.products import Product
from tillgate.hq.repricing import reprice_pending

GOODS = [
    Product(sku="4600000000196", name="Сигареты Ява Золотая", category="tobacco"),
    Product(sku="4600000000127", name="Гречка 900 г", category="grocery"),
]
GROCERY_X2 = {
    "id": "grocery-x2",
    "name": "Крупы ×2",
    "who": {"card": True},
    "when": {"items": {"categories": ["grocery"]}},
    "reward": {"kind": "multiplier", "value": 2},
}


def test_till_and_head_office_agree_on_a_resolved_tobacco_line(make_chain: Any) -> None:
    till = make_chain(data=program(GROCERY_X2))  # tobacco is a no_discount category
    with till.service.db.write() as conn:
        store.replace_all(conn, GOODS, version="p-3")
    lines = [
        # as interception reads them off paper: no sku, the name alone
        {
            "sku": "СИГАРЕТЫ ЯВА ЗОЛОТАЯ",
            "name": "СИГАРЕТЫ ЯВА ЗОЛОТАЯ",
            "qty": "1",
            "price": "210.00",
            "sku_known": False,
        },
        {"sku": "x", "name": "Гречка 900 г", "qty": "2", "price": "99.90", "sku_known": False},
        # a POS line with its sku and no category
        {"sku": "4600000000196", "qty": 1, "price": "210.00"},
    ]
    calc = till.service.calculate(sale_request("R-1", lines, card=ANNA), money_off=False)
    # 3% of 199.80, doubled: 11.988 → 11; the two tobacco lines earn nothing (blind: 24)
    assert calc["accrued"]["points"] == 11
    till.service.confirm("R-1")
    till.syncer.push()
    hq = till.hq.api.hq
    report = reprice_pending(hq.db, till.clock.now())
    assert (report.agrees, report.disagrees, report.quarantined) == (1, 0, [])
    with hq.db.read() as tx:
        body = json.loads(tx.scalar("SELECT body FROM receipt_facts WHERE id = 'sale:R-1'"))
    inputs = body["calculation"]["inputs"]
    assert [ln["category"] for ln in inputs["lines"]] == ["tobacco", "grocery", "tobacco"]
    skus = ["4600000000196", "4600000000127", "4600000000196"]
    assert [ln["sku"] for ln in inputs["lines"]] == skus
    assert [ln["match"] for ln in inputs["lines"]] == ["name", "name", "sku"]
    assert inputs["products_version"] == "p-3"
