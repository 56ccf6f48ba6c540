"""Push: the outbox goes to HQ in seq order, in batches, marked synced only after HQ's 200."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ANNA, BORIS, VERA, program
from tests.sync.badhq import MisbehavingHq, error
from tillgate.core.errors import HqBadReply, HqRefused, HqUnreachable, SyncError

COUPON_PROMO = {
    "id": "c10",
    "name": "Coupon 10%",
    "when": {"coupon": True},
    "reward": {"kind": "percent", "value": 10, "on": "order"},
}


def test_outbox_goes_in_seq_order_in_batches(make_chain: Any, hq: Any) -> None:
    till = make_chain(batch_size=3)
    for i, card in enumerate([ANNA, BORIS, VERA, ANNA]):
        till.sale(f"R-{i}", "1000.00", card=card)
    seqs = till.seqs()
    assert len(seqs) >= 4 and till.unsynced() == seqs

    report = till.syncer.push()

    sent = [[e["seq"] for e in body["entries"]] for body in till.link.pushes()]
    assert all(0 < len(batch) <= 3 for batch in sent)
    assert [s for batch in sent for s in batch] == seqs  # in order, each once, no holes
    assert report.pushed == len(seqs) and report.batches == len(sent)
    assert till.unsynced() == []
    assert hq.seqs("till-1") == seqs and hq.through("till-1") == seqs[-1]
    wire = next(e for b in till.link.pushes() for e in b["entries"] if e["kind"] == "accrue")
    assert wire["created_at"].endswith("+00:00")
    accrue = next(e for e in hq.entries("till-1") if e["id"] == wire["id"])
    # The lot an accrual made travels with it: HQ folds lots like the till does.
    assert accrue["available_from"] and accrue["expires_at"]
    # Nothing left: the next push sends nothing at all.
    till.syncer.push()
    assert len(till.link.pushes()) == len(sent)


def test_nothing_is_marked_synced_without_hqs_200(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    till.link.statuses.clear()  # the first start's (its card snapshot: none, 404)
    till.sale("R-1", "500.00", card=ANNA)
    before = till.unsynced()
    till.link.fail_before = [500] * 3  # every retry fails before reaching HQ
    with pytest.raises(HqRefused, match="500"):
        till.syncer.push()
    assert till.unsynced() == before and hq.entries("till-1") == []
    till.link.bad_request = True  # HQ itself refuses the batch: not retried, nothing stored
    with pytest.raises(HqRefused, match=r"400 invalid_request: entries\[0\]\.points"):
        till.syncer.push()
    assert till.unsynced() == before and hq.entries("till-1") == []
    assert [s for s in till.link.statuses if s != 200] == [400]
    till.link.fail_after = [504] * 3  # HQ stores it, but the till never sees HQ's 200
    with pytest.raises(HqRefused, match="504"):
        till.syncer.push()
    assert till.unsynced() == before and hq.seqs("till-1") == before
    report = till.syncer.push()
    assert report.duplicates == report.pushed == len(before) and till.unsynced() == []


def test_a_lost_reply_is_retried_without_duplicates(make_chain: Any, hq: Any) -> None:
    till = make_chain(batch_size=2)
    for i in range(3):
        till.sale(f"R-{i}", "700.00", card=BORIS)
    till.link.drop_replies = 1  # HQ commits the first batch, the till never hears back

    report = till.syncer.push()

    assert report.duplicates == 2  # the first batch, sent again, counted as duplicates
    assert hq.seqs("till-1") == till.seqs()
    assert till.unsynced() == []
    entries = [e["id"] for e in hq.entries("till-1")]
    assert len(entries) == len(set(entries))


def test_a_lost_reply_every_time_leaves_the_outbox_intact(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    till.sale("R-1", "700.00", card=BORIS)
    till.link.drop_replies = 10
    with pytest.raises(HqUnreachable, match="no answer in time"):
        till.syncer.push()
    # HQ has them, the till does not know: it resends later.
    assert till.unsynced() != [] and hq.seqs("till-1") == till.unsynced()
    till.link.drop_replies = 0
    report = till.syncer.push()
    assert report.duplicates == report.pushed > 0
    assert till.unsynced() == [] and hq.seqs("till-1") == till.seqs()


def test_sequence_gap_resends_from_where_hq_says(make_chain: Any, hq: Any, tmp_path: Any) -> None:
    till = make_chain()
    till.sale("R-1", "700.00", card=ANNA)
    till.syncer.push()
    kept = hq.through("till-1")
    hq.backup(tmp_path / "hq-backup.sqlite3")
    till.sale("R-2", "700.00", card=ANNA)
    till.syncer.push()
    assert hq.through("till-1") > kept
    # HQ is restored from the backup taken after the first push: it lost the second batch.
    hq.stop()
    hq.restore(tmp_path / "hq-backup.sqlite3")
    hq.start()
    assert hq.through("till-1") == kept
    till.sale("R-3", "700.00", card=ANNA)

    till.syncer.push()

    assert hq.seqs("till-1") == till.seqs() and till.unsynced() == []
    assert 409 in till.link.statuses
    gap_answers = [b for b in till.link.pushes() if b["entries"][0]["seq"] == kept + 1]
    assert len(gap_answers) == 2, "the till resent from HQ's expected seq"
    assert hq.card(ANNA)["balance"] + hq.card(ANNA)["pending"] == sum(
        r[0] for r in till.rows("SELECT points FROM ledger WHERE card = ?", ANNA)
    )


def test_a_gap_hq_cannot_mean_is_a_bad_reply(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    till.sale("R-1", "700.00", card=ANNA)
    till.link.stub = MisbehavingHq(error(409, "sequence_gap", "gap", expected=10_000))
    with pytest.raises(HqBadReply, match="ledger ends at"):
        till.syncer.push()
    till.link.stub = MisbehavingHq(error(409, "sequence_gap", "gap"))
    with pytest.raises(HqBadReply, match="expected"):
        till.syncer.push()
    assert till.unsynced() != [] and hq.entries("till-1") == []


def test_new_cards_and_coupon_uses_are_sent_once(make_chain: Any, hq: Any) -> None:
    till = make_chain(data=program(COUPON_PROMO))
    (code,) = hq.issue_coupons("c10", 1)
    till.sale("R-1", "300.00", card="2900000009999")  # registered on first use
    calc, _ = till.sale("R-2", "300.00", card=ANNA, coupons=[code])
    assert calc["coupons"]["applied"] == [code]
    till.syncer.push()
    till.syncer.push()
    bodies = till.link.pushes()
    assert [c["number"] for b in bodies for c in b["cards_new"]] == ["2900000009999"]
    assert [c["code"] for b in bodies for c in b["coupons_used"]] == [code]
    new = hq.card("2900000009999")
    assert new["number"] == "2900000009999" and len(new["entries"]) >= 1
    assert hq.rows("SELECT code, till, receipt_id FROM coupons_used") == [
        {"code": code, "till": "till-1", "receipt_id": "R-2"}
    ]


@pytest.mark.parametrize(
    "how",
    [
        "same_id",
        "same_seq",
    ],
)
def test_push_refuses_conflicts_loudly(make_chain: Any, hq: Any, how: str) -> None:
    """HQ holds an entry that clashes with this till's: it keeps its own and says so.

    ``same_id``: another till already pushed an entry with this till's entry id.
    ``same_seq``: this till replaces a machine whose data file was lost and is enrolled
    under the same id (docs/operations: it must take a new one), so its seq 1 is taken.
    """
    if how == "same_seq":
        lost = hq.other_till("till-1")
        lost.ok_push([lost.next(BORIS, "accrue", 5)])
    till = make_chain()  # enrolling again replaces the lost machine's credential
    till.sale("R-1", "700.00", card=ANNA)
    (first,) = till.rows("SELECT id FROM ledger WHERE seq = 1")
    if how == "same_id":
        other = hq.other_till("till-2")
        other.ok_push([other.next(ANNA, "accrue", 5, id=first[0])])
    with pytest.raises(SyncError, match="conflicting entr"):
        till.syncer.push()
    assert till.unsynced() == till.seqs()  # the till keeps them and stays unsynced
    with pytest.raises(SyncError, match="conflicting entr"):
        till.syncer.push()  # and says so again until someone sorts it out
    conflicts = hq.flags()["sync_conflicts"]
    assert [(c["till"], c["seq"], c["entry_id"]) for c in conflicts] == [("till-1", 1, first[0])]
    assert first[0] not in {e["id"] for e in hq.entries("till-1")}
