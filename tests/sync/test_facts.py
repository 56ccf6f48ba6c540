"""Receipt facts reach head office through the outbox, exactly once, after their entries."""

from __future__ import annotations

from typing import Any

from tests.conftest import ANNA, line
from tillgate.agent.store import facts
from tillgate.agent.usecases import sale_request
from tillgate.hq import facts as hq_facts


def unsynced(chain: Any) -> int:
    with chain.service.db.read() as conn:
        return facts.backlog(conn)


def test_every_receipt_and_refund_reaches_head_office_once(make_chain: Any) -> None:
    till = make_chain()
    sale = till.service.calculate
    for n, card in enumerate([ANNA, None, ANNA]):
        sale(sale_request(f"R-{n}", [line("milk", "89.90", 2)], card=card))
        till.service.confirm(f"R-{n}")
    till.service.refund("R-0", refund_id="F-0", lines=None)
    assert unsynced(till) == 4
    till.syncer.push()
    assert unsynced(till) == 0
    with till.hq.api.hq.db.read() as tx:
        stored = hq_facts.of_till(tx, till.credential.till)
    assert [f["id"] for f in stored] == ["sale:R-0", "sale:R-1", "sale:R-2", "refund:F-0"]
    assert stored[0]["card"] == ANNA and stored[1]["card"] is None
    assert stored[0]["body"]["calculation"]["outcome"]["total"] == 17980

    # A lost reply: the till sends the same facts again; head office keeps one copy.
    with till.service.db.write() as conn:
        conn.execute("UPDATE facts SET synced_at = NULL")
    till.syncer.push()
    with till.hq.api.hq.db.read() as tx:
        assert len(hq_facts.of_till(tx, till.credential.till)) == 4
    assert unsynced(till) == 0
