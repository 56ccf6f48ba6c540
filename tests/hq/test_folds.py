"""Kept folds (hq/folds.py): a card's new entries folded onto its kept state give what a
replay of its whole history gives, push after push, whatever changed its counted entries."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from tests.conftest import ANNA, BORIS, VERA
from tests.hq.helpers import T0, HqTest, TillClient
from tillgate.hq.db import Tx
from tillgate.hq.fold import CardState, fold
from tillgate.hq.folds import KEEP_FROM, card_entries, card_folds, fold_entry
from tillgate.hq.ledger import card_states

CARDS = (ANNA, BORIS, VERA)


def _whole(tx: Tx, card: str, now: datetime) -> CardState:
    return fold([fold_entry(r) for r in card_entries(tx, [card])[card]], now)


def _assert_kept_equals_whole(hq: HqTest, now: datetime) -> None:
    with hq.hq.db.read() as tx:
        kept = {r["card"]: r for r in tx.all("SELECT card, through_pos FROM card_folds")}
        states = card_states(tx, list(CARDS), now)
        for card in CARDS:
            assert states[card] == _whole(tx, card, now), card
            row = tx.one("SELECT balance FROM cards WHERE number = ?", (card,))
            if row is not None and card in kept:
                assert int(row["balance"]) == states[card].balance


def _random_batch(rng: random.Random, till: TillClient, n: int) -> list[dict[str, Any]]:
    batch: list[dict[str, Any]] = []
    for _ in range(n):
        card = rng.choice(CARDS)
        kind = rng.choice(["accrue", "accrue", "redeem", "hold", "release", "return", "reverse"])
        points = rng.randint(1, 300)
        receipt = rng.choice(["R-1", "R-2", "R-3", None])
        at = T0 - timedelta(hours=rng.randint(0, 40))
        sign = 1 if kind in ("accrue", "release", "return") else -1
        extra = {"expiry_days": rng.choice([None, 1, 30])} if kind == "accrue" else {}
        batch.append(till.next(card, kind, sign * points, at=at, receipt_id=receipt, **extra))
    return batch


def test_kept_folds_equal_a_whole_replay_push_after_push(hq: HqTest) -> None:
    hq.publish()
    hq.cards(BORIS, **{ANNA: 500})
    till = hq.enroll("till-1")
    rng = random.Random(15)
    for round_ in range(12):
        till.ok_push(_random_batch(rng, till, rng.randint(4, 20)))
        _assert_kept_equals_whole(hq, hq.clock.now())
        if round_ == 7:
            # VERA was unknown: her entries sat in quarantine (left out of every fold) until
            # head office imports her card; they count now, before the entries folded since.
            assert hq.count("entries", "card = ? AND quarantine IS NOT NULL", (VERA,)) > 0
            hq.cards(VERA)
            assert hq.count("entries", "card = ? AND quarantine IS NOT NULL", (VERA,)) == 0
            _assert_kept_equals_whole(hq, hq.clock.now())
    with hq.hq.db.read() as tx:
        assert set(card_folds(tx, list(CARDS))) == set(CARDS)
    assert hq.count("card_folds") >= 1  # the cards with a long enough history


def test_a_counted_entry_changed_behind_the_kept_fold_replays_the_card(hq: HqTest) -> None:
    """A writer that puts an old entry in quarantine (or takes one out) and does not fold
    the card again: the kept fold no longer covers what counts, so it is not used."""
    hq.cards(ANNA)
    till = hq.enroll("till-1")
    first = till.next(ANNA, "accrue", 100)
    till.ok_push([first] + [till.next(ANNA, "accrue", 1) for _ in range(KEEP_FROM)])
    assert hq.count("card_folds") == 1
    now = hq.clock.now()
    with hq.hq.db.write() as tx:
        tx.execute("UPDATE entries SET quarantine = 'open' WHERE id = ?", (first["id"],))
        balance = card_states(tx, [ANNA], now)[ANNA].balance
        assert balance == KEEP_FROM == _whole(tx, ANNA, now).balance
        tx.execute("UPDATE entries SET quarantine = NULL WHERE id = ?", (first["id"],))
        assert card_states(tx, [ANNA], now)[ANNA].balance == 100 + KEEP_FROM
    # A kept state this version cannot read is replayed over too.
    with hq.hq.db.write() as tx:
        tx.execute("UPDATE card_folds SET state = '{\"v\": 99}'")
        assert card_states(tx, [ANNA], now)[ANNA] == _whole(tx, ANNA, now)
    till.ok_push([till.next(ANNA, "redeem", -30)])
    _assert_kept_equals_whole(hq, hq.clock.now())
