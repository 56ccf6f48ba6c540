"""Kept folds (hq/folds.py): a card's new entries folded onto its kept state give what a
replay of its whole history gives, push after push, whatever changed its counted entries."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ANNA, BORIS, VERA
from tests.hq.helpers import T0, HqTest, TillClient
from tillgate.hq.db import Tx
from tillgate.hq.fold import CardState, fold
from tillgate.hq.folds import KEEP_FROM, card_entries, card_folds, fold_entry, refresh_accrued
from tillgate.hq.ledger import card_states, insert_entries, lock_cards, refresh_cards
from tillgate.hq.wire import ts

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


# ---------------------------------------------------------------- accrues folded in SQL

_HOURS = st.integers(min_value=-12, max_value=12)  # a small grid: instants often equal
_ACCRUE = st.tuples(
    st.integers(min_value=-3, max_value=500),  # points: 0 or less is no lot (Python's)
    _HOURS,  # created_at
    st.none() | st.integers(min_value=-2, max_value=6),  # available_from after it
    st.none() | st.integers(min_value=-2, max_value=12),  # expires_at after it
    st.booleans() | st.just(False),  # in quarantine
    st.sampled_from(["accrue"] * 6 + ["adjust"] * 2 + ["redeem", "expire"]),
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(_ACCRUE, min_size=1, max_size=KEEP_FROM + 2), _HOURS)
def test_accrues_folded_in_sql_are_the_replay(
    hq: HqTest, entries: list[tuple[int, int, int | None, int | None, bool, str]], at: int
) -> None:
    """Two cards with the same entries: one folded by ``refresh_accrued`` (when all its
    counted entries are accrues or adjusts of points > 0, fewer than KEEP_FROM), the other by the
    replay; their card rows are the same, at instants on, before and after every date."""
    now = T0 + timedelta(hours=at)
    sql, replayed = (f"29{uuid.uuid4().int % 10**11:011d}" for _ in range(2))
    rows = []
    for n, (points, created, available, expires, held, kind) in enumerate(entries):
        when = T0 + timedelta(hours=created)
        for card in (sql, replayed):
            rows.append(
                {
                    "id": uuid.uuid4().hex,
                    "till": f"t-{card}",
                    "seq": n + 1,
                    "card": card,
                    "kind": kind,
                    "points": points,
                    "receipt_id": None,
                    "refund_id": None,
                    "ref": None,
                    "note": None,
                    "created_at": ts(when),
                    "available_from": None
                    if available is None
                    else ts(when + timedelta(hours=available)),
                    "expires_at": None if expires is None else ts(when + timedelta(hours=expires)),
                    "quarantine": "open" if held else None,
                }
            )
    counted = [e for e in entries if not e[4]]
    credits = all(e[5] in ("accrue", "adjust") and e[0] > 0 for e in counted)
    simple = 0 < len(counted) < KEEP_FROM and credits
    read = "SELECT next_expiry, balance, balance_until, negative_since FROM cards WHERE number = ?"
    with hq.hq.db.write() as tx:
        lock_cards(tx, [sql, replayed], origin="test", now=now)
        insert_entries(tx, rows, now)
        assert refresh_accrued(tx, [sql, replayed][: 1 if simple else 2], now) == (
            {sql} if simple else set()
        )
        if simple:
            refresh_cards(tx, [replayed], now)
            assert tx.one(read, (sql,)) == tx.one(read, (replayed,))
