"""Ledger push: exactly once, in order, conflicts reported, bad batches refused whole."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx

from tests.conftest import ANNA, BORIS, VERA, program
from tests.hq.helpers import T0, HqTest, TillClient, entry


def _error(r: httpx.Response) -> dict[str, Any]:
    return dict(r.json()["error"])


def test_entries_in_order_are_stored_once_and_retries_are_duplicates(hq: HqTest) -> None:
    hq.cards(ANNA, BORIS)
    till = hq.enroll("till-1")
    batch = [till.next(ANNA, "accrue", 100, receipt_id="R-1"), till.next(BORIS, "accrue", 40)]
    first = till.ok_push(batch)
    assert first | {"conflicts": None} == {
        "through_seq": 2,
        "stored": 2,
        "duplicates": 0,
        "conflicts": None,
        "quarantined": [],
        "negative_cards": [],
        "coupon_double_uses": [],
        "facts": [],
        "holds": [],
    }
    # The reply was lost: the till sends the same batch again, and one more entry.
    batch.append(till.next(ANNA, "redeem", -30, receipt_id="R-2"))
    again = till.ok_push(batch)
    assert (again["through_seq"], again["stored"], again["duplicates"]) == (3, 1, 2)
    assert again["conflicts"] == []
    assert hq.count("entries") == 3
    assert hq.card(ANNA)["balance"] == 70
    assert [e["seq"] for e in hq.card(ANNA)["entries"]] == [1, 3]
    # The same batch once more changes nothing.
    before = hq.snapshot()
    third = till.ok_push(batch)
    assert (third["stored"], third["duplicates"]) == (0, 3)
    assert hq.snapshot()["entries"] == before["entries"]


def test_same_id_different_content_is_a_conflict_reported_and_kept(hq: HqTest) -> None:
    hq.cards(ANNA)
    till = hq.enroll("till-1")
    one, two = till.next(ANNA, "accrue", 100), till.next(ANNA, "accrue", 5)
    till.ok_push([one, two])
    changed = dict(one, points=999)
    reply = till.ok_push([changed, two, till.next(ANNA, "accrue", 7)])
    assert reply["stored"] == 0 and reply["through_seq"] == 2
    assert [(c["seq"], c["id"]) for c in reply["conflicts"]] == [(1, one["id"])]
    assert "different content" in reply["conflicts"][0]["reason"]
    assert hq.card(ANNA)["balance"] == 105  # the first copy stands
    flags = hq.admin.get("/v1/admin/flags").json()
    assert [(c["till"], c["seq"]) for c in flags["sync_conflicts"]] == [("till-1", 1)]


def test_a_new_entry_reusing_a_stored_id_is_a_conflict(hq: HqTest) -> None:
    hq.cards(ANNA)
    till = hq.enroll("till-1")
    one = till.next(ANNA, "accrue", 100)
    till.ok_push([one])
    fine = till.next(ANNA, "accrue", 1)
    clash = till.next(ANNA, "accrue", 2) | {"id": one["id"]}
    reply = till.ok_push([fine, clash])
    # Entries before the conflict are stored; it stops at the conflict.
    assert (reply["stored"], reply["through_seq"]) == (1, 2)
    assert reply["conflicts"][0]["seq"] == 3
    assert hq.count("sync_conflicts") == 1


def test_a_gap_in_the_sequence_is_409_with_the_expected_seq(hq: HqTest) -> None:
    till = hq.enroll("till-1")
    till.ok_push([till.next(ANNA, "accrue", 10)])
    before = hq.snapshot()
    r = till.push([entry("till-1", 5, ANNA, "accrue", 10), entry("till-1", 6, ANNA, "accrue", 1)])
    assert r.status_code == 409
    err = _error(r)
    assert err["code"] == "sequence_gap" and err["expected"] == 2
    assert hq.snapshot() == before


def test_holes_inside_a_batch_are_400(hq: HqTest) -> None:
    till = hq.enroll("till-1")
    r = till.push([entry("till-1", 1, ANNA, "accrue", 10), entry("till-1", 3, ANNA, "accrue", 1)])
    assert r.status_code == 400
    assert _error(r)["message"].startswith("entries[1].seq:")


def test_an_oversized_batch_is_413_and_writes_nothing(hq: HqTest) -> None:
    till = hq.enroll("till-1")
    before = hq.snapshot()
    batch = [entry("till-1", i, ANNA, "accrue", 1) for i in range(1, 1002)]
    r = till.push(batch)
    assert r.status_code == 413 and _error(r)["code"] == "batch_too_large"
    assert "1001 entries" in _error(r)["message"]
    r = till.http.post(
        "/v1/sync/push", content=b'{"till": "till-1", "entries": [], "x": "' + b"a" * (9 << 20)
    )
    assert r.status_code == 413 and _error(r)["code"] == "payload_too_large"

    def chunked():  # no Content-Length: counted as it arrives
        yield b'{"till": "till-1", "entries": [], "x": "'
        for _ in range(9):
            yield b"a" * (1 << 20)

    r = till.http.post("/v1/sync/push", content=chunked())
    assert r.status_code == 413 and _error(r)["code"] == "payload_too_large"
    assert "larger than 8388608 bytes" in _error(r)["message"]
    assert hq.snapshot() == before
    # 1000 is fine.
    assert till.ok_push(batch[:1000])["stored"] == 1000


def test_malformed_batches_are_400_with_the_path_and_write_nothing(hq: HqTest) -> None:
    till = hq.enroll("till-1")
    good = entry("till-1", 1, ANNA, "accrue", 10)
    cases: list[tuple[Any, str]] = [
        (b"{", "malformed JSON"),
        (b"[]", "the body must be a JSON object"),
        ({"entries": [good]}, "till: is required"),
        ({"till": "till-1", "entries": [good | {"points": "10"}]}, "entries[0].points:"),
        ({"till": "till-1", "entries": [good | {"points": 1.5}]}, "entries[0].points:"),
        # A kind no till makes is quarantined (test_authority.py); one that is no kind at
        # all, or points no database column holds, cannot even be stored.
        ({"till": "till-1", "entries": [good | {"kind": "Gift!"}]}, "entries[0].kind:"),
        ({"till": "till-1", "entries": [good | {"points": 2**63}]}, "entries[0].points:"),
        (
            {"till": "till-1", "entries": [good | {"created_at": "9999-12-31T23:00:00-05:00"}]},
            "entries[0].created_at: is out of range",
        ),
        (
            {"till": "till-1", "entries": [good | {"created_at": "2026-11-23T06:00:00"}]},
            "entries[0].created_at: must be a time with an offset",
        ),
        ({"till": "till-1", "entries": [good | {"card": "29 00"}]}, "entries[0].card:"),
        ({"till": "till-1", "entries": [{k: v for k, v in good.items() if k != "id"}]}, "id"),
        (
            {"till": "till-1", "coupons_used": [{"code": "X", "receipt_id": "R"}]},
            "coupons_used[0].used_at: is required",
        ),
    ]
    before = hq.snapshot()
    for body, message in cases:
        if isinstance(body, bytes):
            r = till.http.post("/v1/sync/push", content=body)
        else:
            r = till.http.post("/v1/sync/push", json=body)
        assert r.status_code == 400, (body, r.text)
        assert _error(r)["code"] == "invalid_request"
        assert message in _error(r)["message"], (message, r.text)
    assert hq.snapshot() == before


def test_offline_redemptions_are_facts_and_negative_cards_are_flagged(hq: HqTest) -> None:
    hq.cards(**{ANNA: 500})
    one, two = hq.enroll("till-1"), hq.enroll("till-2")
    hq.clock.advance(hours=3)  # the tills come back online
    # Both tills were offline and each let ANNA spend 400 of her 500 points.
    r1 = one.ok_push([one.next(ANNA, "redeem", -400, at=T0 + timedelta(hours=1))])
    assert r1["negative_cards"] == []
    r2 = two.ok_push([two.next(ANNA, "redeem", -400, at=T0 + timedelta(hours=2))])
    assert r2["stored"] == 1
    assert r2["negative_cards"] == ["2900•••••0011"]
    card = hq.card(ANNA)
    assert card["balance"] == -300 and card["negative_since"] is not None
    flags = hq.admin.get("/v1/admin/flags").json()["negative_cards"]
    assert [(f["card"], f["balance"]) for f in flags] == [(ANNA, -300)]
    # New points pay the debt first; the flag clears when the balance is back above zero.
    hq.adjust(ANNA, 350)
    assert hq.card(ANNA)["balance"] == 50
    assert hq.admin.get("/v1/admin/flags").json()["negative_cards"] == []


def test_coupon_used_at_two_tills_is_a_double_use_and_the_first_stands(hq: HqTest) -> None:
    one, two = hq.enroll("till-1"), hq.enroll("till-2")
    use = {"code": "TG0000000000000000000000A", "promotion_id": "p", "card": ANNA}
    r1 = one.ok_push(
        [], coupons_used=[use | {"receipt_id": "R-1", "used_at": "2026-11-23T07:00:00+00:00"}]
    )
    assert r1["coupon_double_uses"] == []
    # A retry of the same use is not a double use.
    r1 = one.ok_push(
        [], coupons_used=[use | {"receipt_id": "R-1", "used_at": "2026-11-23T07:00:00+00:00"}]
    )
    assert r1["coupon_double_uses"] == []
    r2 = two.ok_push(
        [], coupons_used=[use | {"receipt_id": "R-9", "used_at": "2026-11-23T06:30:00+00:00"}]
    )
    assert [(d["till"], d["first_till"]) for d in r2["coupon_double_uses"]] == [
        ("till-2", "till-1")
    ]
    flags = hq.admin.get("/v1/admin/flags").json()["coupon_double_uses"]
    assert [(f["code"], f["till"], f["first_till"]) for f in flags] == [
        ("TG0000000000000000000000A", "till-2", "till-1")
    ]
    # Other tills learn of the use; the till that used it is not told of its own use.
    assert [u["till"] for u in two.changes()["coupons_used"]] == ["till-1"]
    assert one.changes()["coupons_used"] == []


def test_cards_new_registers_unknown_cards(hq: HqTest) -> None:
    hq.publish(program(register_unknown_cards=True))
    till = hq.enroll("till-1")
    r = till.ok_push(
        [till.next("2900000099998", "accrue", 10)],
        cards_new=[{"number": "2900000099998", "status": "new", "created_at": T0.isoformat()}],
    )
    assert r["stored"] == 1
    card = hq.card("2900000099998")
    assert (card["status"], card["balance"]) == ("new", 10)


def test_concurrent_pushes_touching_the_same_cards(hq: HqTest) -> None:
    hq.cards(ANNA, BORIS, VERA)
    tills = [hq.enroll(f"till-{i}") for i in range(4)]
    errors: list[str] = []

    def run(till: TillClient) -> None:
        for _ in range(5):
            batch = [till.next(c, "accrue", 1) for c in (VERA, ANNA, BORIS)]
            r = till.push(batch)
            if r.status_code != 200:
                errors.append(r.text)

    threads = [threading.Thread(target=run, args=(t,)) for t in tills]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    for card in (ANNA, BORIS, VERA):
        assert hq.card(card)["balance"] == 20
    with hq.hq.db.read() as tx:
        positions = [r["pos"] for r in tx.all("SELECT pos FROM entries ORDER BY pos")]
    assert positions == list(range(1, 61))
