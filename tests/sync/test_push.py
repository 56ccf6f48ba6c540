"""Push: the outbox goes to HQ in seq order, in batches, marked synced only after HQ's 200."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ANNA, BORIS, VERA
from tests.sync.fakehq import error
from tillgate.agent.errors import HqBadReply, HqRefused, HqUnreachable


def unsynced(chain: Any) -> list[int]:
    return [r[0] for r in chain.rows("SELECT seq FROM ledger WHERE synced_at IS NULL ORDER BY seq")]


def test_outbox_goes_in_seq_order_in_batches(make_chain: Any, hq: Any) -> None:
    till = make_chain(batch_size=3)
    for i, card in enumerate([ANNA, BORIS, VERA, ANNA]):
        till.sale(f"R-{i}", "1000.00", card=card)
    seqs = [r[0] for r in till.rows("SELECT seq FROM ledger ORDER BY seq")]
    assert len(seqs) >= 4 and unsynced(till) == seqs

    report = till.syncer.push()

    sent = [[e["seq"] for e in body["entries"]] for body in hq.bodies]
    assert all(0 < len(batch) <= 3 for batch in sent)
    assert [s for batch in sent for s in batch] == seqs  # in order, each once, no holes
    assert report.pushed == len(seqs) and report.batches == len(sent)
    assert unsynced(till) == []
    accrue = next(e for e in hq.entries["till-1"].values() if e["kind"] == "accrue")
    # The lot an accrual made travels with it: HQ folds lots like the till does.
    assert accrue["available_from"] and accrue["expires_at"]
    assert accrue["created_at"].endswith("+00:00")
    # Nothing left: the next push sends nothing at all.
    till.syncer.push()
    assert len(hq.bodies) == len(sent)


def test_nothing_is_marked_synced_without_hqs_200(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    till.sale("R-1", "500.00", card=ANNA)
    before = unsynced(till)
    hq.answers = [error(500, "internal", "db down")] * 3  # every retry fails
    with pytest.raises(HqRefused, match="500"):
        till.syncer.push()
    assert unsynced(till) == before
    hq.answers = [error(400, "invalid_request", "entries[0].points: bad")]
    with pytest.raises(HqRefused, match="invalid_request"):
        till.syncer.push()
    assert unsynced(till) == before
    assert hq.entries == {}


def test_a_lost_reply_is_retried_without_duplicates(make_chain: Any, hq: Any) -> None:
    till = make_chain(batch_size=2)
    for i in range(3):
        till.sale(f"R-{i}", "700.00", card=BORIS)
    hq.drop_replies = 1  # HQ commits the first batch, the till never hears back

    report = till.syncer.push()

    assert report.duplicates == 2  # the first batch, sent again, counted as duplicates
    assert sorted(hq.entries["till-1"]) == [r[0] for r in till.rows("SELECT seq FROM ledger")]
    assert unsynced(till) == []


def test_a_lost_reply_every_time_leaves_the_outbox_intact(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    till.sale("R-1", "700.00", card=BORIS)
    hq.drop_replies = 10
    with pytest.raises(HqUnreachable, match="no answer in time"):
        till.syncer.push()
    assert unsynced(till) != []  # HQ has them, the till does not know: it resends later
    hq.drop_replies = 0
    report = till.syncer.push()
    assert report.duplicates == report.pushed > 0
    assert unsynced(till) == []


def test_sequence_gap_resends_from_where_hq_says(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    till.sale("R-1", "700.00", card=ANNA)
    till.syncer.push()
    kept = hq.through("till-1")
    till.sale("R-2", "700.00", card=ANNA)
    till.syncer.push()
    # HQ was restored from a backup taken after the first push: it lost the second batch.
    for seq in [s for s in hq.entries["till-1"] if s > kept]:
        del hq.entries["till-1"][seq]
    till.sale("R-3", "700.00", card=ANNA)

    till.syncer.push()

    seqs = [r[0] for r in till.rows("SELECT seq FROM ledger ORDER BY seq")]
    assert sorted(hq.entries["till-1"]) == seqs
    assert 409 in hq.statuses
    gap_answers = [b for b in hq.bodies if b["entries"] and b["entries"][0]["seq"] == kept + 1]
    assert gap_answers, "the till resent from HQ's expected seq"


def test_a_gap_hq_cannot_mean_is_a_bad_reply(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    till.sale("R-1", "700.00", card=ANNA)
    hq.answers = [error(409, "sequence_gap", "gap", expected=10_000)]
    with pytest.raises(HqBadReply, match="ledger ends at"):
        till.syncer.push()
    hq.answers = [error(409, "sequence_gap", "gap")]
    with pytest.raises(HqBadReply, match="expected"):
        till.syncer.push()
    assert unsynced(till) != []


def test_new_cards_and_coupon_uses_are_sent_once(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    till.sale("R-1", "300.00", card="2900000009999")  # registered on first use
    with till.service.db.write() as conn:
        conn.execute(
            "INSERT INTO coupons_used (code, promotion_id, receipt_id, card, used_at)"
            " VALUES ('TGX', 'p', 'R-1', ?, '2026-11-23T06:00:00.000000+00:00')",
            (ANNA,),
        )
    till.syncer.push()
    till.syncer.push()
    assert [c["number"] for c in hq.cards_new] == ["2900000009999"]
    assert list(hq.coupons) == ["TGX"]
    assert sum(len(b["coupons_used"]) for b in hq.bodies) == 1


def test_push_refuses_conflicts_loudly(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    till.sale("R-1", "700.00", card=ANNA)
    hq.answers = [
        httpx.Response(
            200,
            json={"through_seq": 0, "stored": 0, "duplicates": 0, "conflicts": [{"seq": 1}]},
        )
    ]
    with pytest.raises(Exception, match="conflicting entr"):
        till.syncer.push()
    assert unsynced(till) != []
