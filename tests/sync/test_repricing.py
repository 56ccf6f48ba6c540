"""Head office re-prices every receipt from its facts: honest receipts agree, an accrual the
facts contradict is quarantined until an admin decides."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import ANNA, BORIS, VERA, line, program
from tillgate.agent.usecases import sale_request
from tillgate.hq.corrections import decide
from tillgate.hq.repricing import reprice_pending

BONUS = {
    "id": "dairy-10",
    "name": "Молочное −10%",
    "when": {"items": {"categories": ["dairy"]}},
    "reward": {"kind": "percent", "value": 10, "on": "matching"},
}
POINTS = {
    "id": "bonus-50",
    "name": "50 баллов",
    "who": {"card": True},
    "reward": {"kind": "points", "value": 50},
}


def basket(n: int) -> list[dict[str, Any]]:
    return [
        line("milk", "89.90", 2 + n, "dairy"),
        line("bread", "45.00", 1),
        line("cig", "210.00", 1, "tobacco"),
    ]


def test_honest_receipts_agree_and_a_contradicted_accrual_is_quarantined(
    make_chain: Any,
) -> None:
    till = make_chain(data=program(BONUS, POINTS))
    hq = till.hq.api.hq
    for n, card in enumerate([ANNA, BORIS, VERA, None, ANNA, BORIS]):
        redeem: Any = "max" if n % 2 else 0
        kw: dict[str, Any] = {"card": card, "redeem": redeem} if card else {}
        till.service.calculate(sale_request(f"R-{n}", basket(n), **kw))
        till.service.confirm(f"R-{n}")
    till.service.refund("R-0", refund_id="F-0", lines=None)
    till.syncer.push()
    report = reprice_pending(hq.db, till.clock.now())
    assert (report.agrees, report.disagrees, report.quarantined) == (6, 0, [])

    # A till that claims an accrual its own facts do not give (forged before the push).
    till.service.calculate(sale_request("R-x", basket(0), card=VERA))
    till.service.confirm("R-x")
    with till.service.db.write() as conn:
        body = json.loads(
            conn.execute("SELECT body FROM facts WHERE id = 'sale:R-x'").fetchone()[0]
        )
        body["calculation"]["inputs"]["lines"][0]["price"] = "0.10"
        conn.execute(
            "UPDATE facts SET body = ? WHERE id = 'sale:R-x'",
            (json.dumps(body, ensure_ascii=False),),
        )
    before = till.hq.card(VERA)["balance"]
    pending_before = till.hq.card(VERA)["pending"]
    till.syncer.push()
    assert till.hq.card(VERA)["pending"] > pending_before  # counted until re-priced
    report = reprice_pending(hq.db, till.clock.now())
    assert report.disagrees == 1 and len(report.quarantined) == 1
    flags = till.hq.api.admin.get("/v1/admin/flags").json()["quarantined"]
    [flag] = [f for f in flags if f["code"] == "repricing"]
    assert "R-x" in flag["reason"] and "accrued_points" in flag["reason"]
    assert till.hq.card(VERA)["pending"] == pending_before  # spendable nowhere
    assert till.hq.card(VERA)["balance"] == before
    # The till hears head office's view on its next pull.
    till.syncer.pull()
    assert till.service.card_lookup(VERA)["pending"] == pending_before
    # An admin releases it: it counts again, everywhere.
    decide(hq.db, flag["id"], release=True, reason="checked", operator="t", now=till.clock.now())
    assert till.hq.card(VERA)["pending"] > pending_before
