"""A chain till's balance: HQ's view re-read at the till's now, plus its own unseen entries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from tests.conftest import ANNA, BORIS, program
from tests.sync.realhq import card
from tillgate.agent.store import ledger


def test_hq_lots_are_reread_at_the_tills_now(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    # Another till's accruals: 200 spendable for 10 more days, 100 pending for 5 days.
    other = hq.other_till("till-2")
    month_ago = till.clock.now() - timedelta(days=30)
    other.ok_push(
        [
            other.next(ANNA, "accrue", 200, at=month_ago, expiry_days=40),
            other.next(ANNA, "accrue", 100, at=till.clock.now(), delay_days=5, expiry_days=395),
        ]
    )
    at_hq = hq.card(ANNA)
    assert (at_hq["balance"], at_hq["pending"], len(at_hq["lots"])) == (200, 100, 2)

    till.syncer.pull()
    card_ = till.service.card_lookup(ANNA)
    assert (card_["balance"], card_["pending"]) == (200, 100)
    till.clock.advance(days=6)  # the pending lot became spendable
    card_ = till.service.card_lookup(ANNA)
    assert (card_["balance"], card_["pending"]) == (300, 0)
    till.clock.advance(days=5)  # the first lot expired: gone without an expire entry
    assert till.balance(ANNA) == 100
    till.service.sweep()
    assert till.rows("SELECT COUNT(*) FROM ledger WHERE kind = 'expire'") == [(0,)]


def test_own_unseen_entries_add_to_hqs_view(make_chain: Any, hq: Any) -> None:
    till = make_chain(data=program(accrual_delay_days=0))
    hq.import_cards(card(BORIS, opening_balance=1000))
    till.syncer.pull()
    assert till.balance(BORIS) == 1000
    _, done = till.sale("R-1", "2000.00", card=BORIS, redeem=400)
    assert done["redeemed"]["points"] == 400
    # gold 5% of 1600 paid = 80 accrued; 1000 - 400 + 80.
    assert till.balance(BORIS) == 680
    # HQ folds the pushed entries into its view; the till must not count them twice.
    till.syncer.push()
    top = till.seqs()[-1]
    assert hq.through("till-1") == top and hq.card(BORIS)["balance"] == 680
    till.syncer.pull()
    assert till.rows("SELECT through_seq FROM hq_cards WHERE number = ?", BORIS) == [(top,)]
    assert till.balance(BORIS) == 680
    # Another till spent 100 meanwhile: HQ's view says so, the till follows.
    other = hq.other_till("till-2")
    other.ok_push([other.next(BORIS, "redeem", -100, receipt_id="T2-1")])
    till.syncer.pull()
    assert till.balance(BORIS) == hq.card(BORIS)["balance"] == 580


def test_a_debt_at_hq_is_not_spendable(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    other = hq.other_till("till-2")  # redeemed offline what it did not have
    other.ok_push([other.next(ANNA, "redeem", -50, receipt_id="T2-1")])
    assert hq.card(ANNA)["balance"] == -50
    till.syncer.pull()
    card_ = till.service.card_lookup(ANNA)
    assert card_["balance"] == -50 and card_["redeemable"] == 0
    calc = till.calc("R-1", "100.00", card=ANNA, redeem="max")
    assert calc["redeemed"]["points"] == 0


def test_spending_points_this_till_holds_no_lot_for_loses_nothing(make_chain: Any, hq: Any) -> None:
    """Redeemed points earned at other tills: consume() finds no lot here; nothing is lost."""
    till = make_chain()
    other = hq.other_till("till-2")
    other.ok_push([other.next(ANNA, "accrue", 500, receipt_id="T2-1")])
    till.syncer.pull()
    calc = till.calc("R-1", "1000.00", card=ANNA, redeem=300)
    assert calc["card"]["held"] == 300 and calc["card"]["redeemable"] == 200
    till.service.confirm("R-1")
    # silver 3% of 700 paid = 21 points, pending for 14 days.
    card_ = till.service.card_lookup(ANNA)
    assert (card_["balance"], card_["pending"], card_["held"]) == (200, 21, 0)
    entries = till.rows("SELECT kind, points FROM ledger WHERE card = ? ORDER BY seq", ANNA)
    assert ("redeem", -300) in entries
    refund = till.service.refund("R-1", refund_id="F-1", lines=None)
    assert (refund["points_returned"], refund["points_reversed"]) == (300, 21)
    card_ = till.service.card_lookup(ANNA)
    assert (card_["balance"], card_["pending"]) == (500, 0)
    with till.service.db.read() as conn:  # the invariant still holds in chain mode
        bal = ledger.balance(conn, ANNA, till.clock.now())
        assert bal.total == bal.balance + bal.pending - bal.held
    # HQ folds the sale and its refund to the same 500: the lot at till-2 is whole again.
    till.syncer.push()
    at_hq = hq.card(ANNA)
    assert (at_hq["balance"], at_hq["pending"]) == (500, 0)
    till.syncer.pull()
    assert till.balance(ANNA) == 500


def test_a_hold_placed_online_checks_hqs_view(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    hq.import_cards(card(ANNA, opening_balance=100))
    till.syncer.pull()
    first = till.calc("R-1", "1000.00", card=ANNA, redeem=80)
    assert first["redeemed"]["points"] == 80
    second = till.calc("R-2", "1000.00", card=ANNA, redeem="max")
    assert second["redeemed"]["points"] == 20  # what the first hold left
    assert Decimal(second["redeemed"]["amount"]) == Decimal("20.00")


def test_a_card_hq_never_sent_keeps_its_local_balance(make_chain: Any, hq: Any) -> None:
    till = make_chain(data=program(accrual_delay_days=0))
    till.sale("R-1", "1000.00", card="2900000004444")  # registered here on first use
    till.syncer.pull()  # HQ has never heard of it: nothing it sends touches the card
    till.sale("R-2", "1000.00", card="2900000004444", redeem=10)
    assert till.balance("2900000004444") == 30 - 10 + 29  # silver 3% of 1000, then of 990
    assert till.rows("SELECT COUNT(*) FROM hq_cards WHERE number = '2900000004444'") == [(0,)]
