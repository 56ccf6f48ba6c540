"""Points life cycle over the POS API: redemption caps, delay, expiry, FIFO, holds, refunds."""

from __future__ import annotations

import threading
from typing import Any

from tests.conftest import ANNA, BORIS, line, program
from tillgate.agent.store import ledger


def earn(till, points: int, rid: str, card: str = ANNA) -> None:
    """Give a card spendable points by an adjustment (as an opening balance is credited)."""
    from tillgate.agent.store import points as store_points

    with till.service.db.write() as conn:
        store_points.credit(
            conn,
            till="till",
            card=card,
            kind="adjust",
            points=points,
            now=till.clock.now(),
            delay_days=0,
            expiry_days=365,
            note=f"test {rid}",
        )


def invariant(till, card: str) -> dict[str, Any]:
    till.service.sweep()
    c = till.card(card)
    assert till.ledger_sum(card) == c["balance"] + c["pending"] - c["held"]
    return c


def test_max_redeem_percent_caps_redemption(make_till):
    till = make_till(program())
    earn(till, 1000, "a")
    r = till.ok_calc(
        "R1", [line("a", "300.00"), line("cig", "200.00", 1, "tobacco")], card=ANNA, redeem="max"
    )
    # 50% of the discountable 300.00 only
    assert r["redeemed"] == {"points": 150, "amount": "150.00"}
    assert r["total"] == "350.00"
    assert r["lines"][0]["paid"] == "150.00" and r["lines"][1]["redeemed"] == "0.00"
    assert r["card"]["redeemable"] == 1000 - 150  # this receipt's hold is counted
    # accrual on what is actually paid: 3% of 150.00
    assert r["accrued"]["points"] == 4


def test_asking_for_more_than_allowed_is_insufficient_points(make_till):
    till = make_till(program())
    earn(till, 100, "a")
    r = till.calc("R1", [line("a", "1000.00")], card=ANNA, redeem=101)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "insufficient_points"
    assert (
        till.ok_calc("R1", [line("a", "1000.00")], card=ANNA, redeem=100)["redeemed"]["points"]
        == 100
    )


def test_accrual_delay_then_spend_then_expiry(make_till):
    till = make_till(program())
    till.sale("R1", [line("a", "1000.00")], card=ANNA)  # 30 points, pending 14 days
    c = invariant(till, ANNA)
    assert (c["balance"], c["pending"]) == (0, 30)
    r = till.ok_calc("R2", [line("a", "100.00")], card=ANNA, redeem="max")
    assert r["redeemed"]["points"] == 0
    till.service.cancel("R2")
    till.clock.advance(days=14, seconds=1)
    c = invariant(till, ANNA)
    assert (c["balance"], c["pending"]) == (30, 0)
    till.clock.advance(days=365)
    c = invariant(till, ANNA)
    assert (c["balance"], c["pending"]) == (0, 0)
    kinds = [h["kind"] for h in c["history"]]
    assert "expire" in kinds


def test_fifo_spends_the_lot_that_expires_first(make_till):
    till = make_till(program())
    earn(till, 100, "old")
    till.clock.advance(days=100)
    earn(till, 100, "new")
    till.sale("R1", [line("a", "300.00")], card=ANNA, redeem=120)
    with till.service.db.read() as conn:
        lots = conn.execute(
            "SELECT points, remaining FROM lots WHERE card = ? ORDER BY available_from", (ANNA,)
        ).fetchall()
    assert [tuple(x) for x in lots][:2] == [(100, 0), (100, 80)]
    # The older lot expires first; nothing of it is left to expire.
    till.clock.advance(days=270)
    c = invariant(till, ANNA)
    assert c["balance"] == 80 + 5  # 80 left of the newer lot + the receipt's accrual (3% of 180)


def test_two_concurrent_calculates_cannot_spend_the_same_points(make_till):
    till = make_till(program())
    earn(till, 100, "a")
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(2)

    def calc(rid: str) -> None:
        barrier.wait()
        results.append(till.ok_calc(rid, [line("a", "1000.00")], card=ANNA, redeem="max"))

    threads = [threading.Thread(target=calc, args=(f"C{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spent = sorted(r["redeemed"]["points"] for r in results)
    assert spent == [0, 100]
    assert till.card(ANNA)["redeemable"] == 0


def test_hold_times_out_and_is_released(make_till):
    till = make_till(program(), hold_seconds=60)
    earn(till, 100, "a")
    till.ok_calc("R1", [line("a", "1000.00")], card=ANNA, redeem="max")
    assert till.card(ANNA)["redeemable"] == 0
    till.clock.advance(seconds=61)
    till.service.sweep()
    assert till.card(ANNA)["redeemable"] == 100
    # Confirming after the timeout still works while the points are there...
    assert till.confirm("R1").status_code == 200
    assert till.card(ANNA)["balance"] == 0
    invariant(till, ANNA)


def test_hold_timed_out_and_points_gone_refuses_confirm(make_till):
    till = make_till(program(), hold_seconds=60)
    earn(till, 100, "a")
    till.ok_calc("R1", [line("a", "1000.00")], card=ANNA, redeem="max")
    till.clock.advance(seconds=61)
    till.sale("R2", [line("a", "1000.00")], card=ANNA, redeem="max")
    r = till.confirm("R1")
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_points"
    invariant(till, ANNA)


def test_confirm_cancel_refund_are_idempotent(make_till):
    till = make_till(program())
    earn(till, 200, "a")
    till.ok_calc("R1", [line("a", "1000.00")], card=ANNA, redeem=100)
    first = till.confirm("R1").json()
    entries = till.ledger_sum(ANNA)
    assert till.confirm("R1").json() == first
    assert till.ledger_sum(ANNA) == entries
    assert (
        till.http.post("/v1/receipts/R1/cancel").json()["error"]["code"]
        == "receipt_already_confirmed"
    )

    till.ok_calc("R2", [line("a", "10.00")], card=ANNA)
    assert till.http.post("/v1/receipts/R2/cancel").json()["status"] == "cancelled"
    assert till.http.post("/v1/receipts/R2/cancel").json()["status"] == "cancelled"
    r = till.confirm("R2")
    assert r.status_code == 409 and r.json()["error"]["code"] == "receipt_cancelled"

    body = {"refund_id": "RF-1", "lines": [{"index": 0, "qty": 1}]}
    a = till.http.post("/v1/receipts/R1/refund", json=body).json()
    before = till.ledger_sum(ANNA)
    b = till.http.post("/v1/receipts/R1/refund", json=body).json()
    assert a == b and till.ledger_sum(ANNA) == before
    invariant(till, ANNA)


def test_unknown_receipt_is_404(make_till):
    till = make_till(program())
    for path in ("confirm", "cancel"):
        r = till.http.post(f"/v1/receipts/NOPE/{path}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "receipt_not_found"
    r = till.http.post("/v1/receipts/NOPE/refund", json={"refund_id": "X"})
    assert r.status_code == 404


def test_partial_refunds_sum_to_the_whole_and_never_over_return(make_till):
    till = make_till(program())
    earn(till, 1000, "a")
    lines = [line("a", "99.90", 3), line("b", "45.50", 2), line("c", "210.00", 1, "tobacco")]
    sale = till.sale("R1", lines, card=ANNA, redeem=77)
    accrued, redeemed = sale["confirmed"]["accrued"]["points"], sale["redeemed"]["points"]
    assert redeemed == 77 and accrued > 0
    paid_total = sum(int(ln["paid"].replace(".", "")) for ln in sale["lines"])
    parts = [
        [{"index": 0, "qty": 1}],
        [{"index": 1, "qty": 1}],
        [{"index": 0, "qty": 1}],
        [{"index": 2, "qty": 1}],
        [{"index": 1, "qty": 1}],
        [{"index": 0, "qty": 1}],
    ]
    rev = ret = money = 0
    for i, part in enumerate(parts):
        r = till.http.post("/v1/receipts/R1/refund", json={"refund_id": f"RF{i}", "lines": part})
        assert r.status_code == 200, r.text
        body = r.json()
        rev += body["points_reversed"]
        ret += body["points_returned"]
        money += int(body["amount_returned"].replace(".", ""))
        assert rev <= accrued and ret <= redeemed
    assert (rev, ret, money) == (accrued, redeemed, paid_total)
    over = till.http.post(
        "/v1/receipts/R1/refund", json={"refund_id": "RF-X", "lines": [{"index": 0, "qty": 1}]}
    )
    assert over.status_code == 409 and over.json()["error"]["code"] == "refund_exceeds_receipt"
    whole = till.http.post("/v1/receipts/R1/refund", json={"refund_id": "RF-Y"})
    assert whole.status_code == 409
    invariant(till, ANNA)


def test_refund_of_spent_points_may_drive_the_balance_negative(make_till):
    till = make_till(program(accrual_delay_days=0))
    till.sale("R1", [line("a", "1000.00")], card=ANNA)  # +30 spendable at once
    till.sale("R2", [line("a", "100.00")], card=ANNA, redeem=30)
    r = till.http.post("/v1/receipts/R1/refund", json={"refund_id": "RF1"}).json()
    assert r["points_reversed"] == 30
    c = invariant(till, ANNA)
    assert c["balance"] < 0


def test_returned_points_keep_their_original_expiry(make_till):
    till = make_till(program())
    earn(till, 100, "a")
    with till.service.db.read() as conn:
        expires = conn.execute("SELECT expires_at FROM lots WHERE card=?", (ANNA,)).fetchone()[0]
    till.sale("R1", [line("a", "1000.00")], card=ANNA, redeem=100)
    till.http.post("/v1/receipts/R1/refund", json={"refund_id": "RF1"})
    with till.service.db.read() as conn:
        row = conn.execute(
            "SELECT remaining, expires_at FROM lots WHERE card=? AND expires_at = ?",
            (ANNA, expires),
        ).fetchone()
    assert row["remaining"] == 100


def test_welcome_points_once_and_birthday_once_a_year(make_till):
    from datetime import date

    from tillgate.agent.store.cards import CardRecord

    bday = CardRecord(
        number="2900000000059", holder="Дина", tier="silver", birthday=date(1990, 11, 25)
    )
    till = make_till(program(welcome_points=100, birthday_points=200), cards=[bday])
    first = till.sale("R1", [line("a", "100.00")], card=bday.number)
    assert first["accrued"]["points"] == 3 + 100 + 200
    kinds = [h["kind"] for h in first["hints"]]
    assert "birthday" in kinds
    second = till.sale("R2", [line("a", "100.00")], card=bday.number)
    assert second["accrued"]["points"] == 3
    till.clock.advance(days=365)
    next_year = till.ok_calc("R3", [line("a", "100.00")], card=bday.number)
    assert next_year["accrued"]["points"] == 3 + 200


def test_balances_equal_the_sum_of_entries_after_mixed_activity(make_till):
    till = make_till(program(accrual_delay_days=0))
    earn(till, 500, "a")
    for i in range(5):
        till.sale(f"S{i}", [line("a", "321.10", 2)], card=BORIS if i % 2 else ANNA, redeem="max")
        till.clock.advance(hours=1)
    till.ok_calc("OPEN", [line("a", "100.00")], card=ANNA, redeem="max")
    till.http.post(
        "/v1/receipts/S0/refund", json={"refund_id": "X", "lines": [{"index": 0, "qty": 1}]}
    )
    for card in (ANNA, BORIS):
        invariant(till, card)
    with till.service.db.read() as conn:
        b = ledger.balance(conn, ANNA, till.clock.now())
    assert b.total == b.balance + b.pending - b.held


def test_status_reports_unsynced_entries(make_till):
    till = make_till(program())
    till.sale("R1", [line("a", "100.00")], card=ANNA)
    st = till.http.get("/v1/status").json()
    assert st["till"] == "till" and st["offline"] is False
    assert st["unsynced_entries"] == 1 and st["promotions_version"] == "v1"


def test_a_receipt_returned_in_full_is_refunded_and_stays_idempotent(make_till):
    till = make_till(program())
    first = till.sale(
        "R1", [line("a", "100.00", 2), line("cig", "200.00", 1, "tobacco")], card=ANNA
    )
    part = till.http.post(
        "/v1/receipts/R1/refund", json={"refund_id": "F1", "lines": [{"index": 0, "qty": 2}]}
    )
    assert part.status_code == 200

    def status() -> str:
        with till.service.db.read() as conn:
            return str(
                conn.execute("SELECT status FROM receipts WHERE receipt_id = 'R1'").fetchone()[0]
            )

    assert status() == "confirmed"  # the cigarettes are still sold
    rest = till.http.post("/v1/receipts/R1/refund", json={"refund_id": "F2"})
    assert rest.status_code == 200 and status() == "refunded"
    assert till.confirm("R1").json() == first["confirmed"]  # confirm stays idempotent
    assert (
        till.http.post("/v1/receipts/R1/cancel").json()["error"]["code"]
        == "receipt_already_confirmed"
    )
    again = till.http.post("/v1/receipts/R1/refund", json={"refund_id": "F3"})
    assert again.json()["error"]["code"] == "refund_exceeds_receipt"
    assert till.card(ANNA)["history"][0]["kind"] in ("reverse", "return")
