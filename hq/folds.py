"""Each card's fold at head office: its counted entries, folded once and kept.

A card's points are the fold of its counted entries in HQ order (:mod:`tillgate.hq.fold`,
entries in quarantine left out). Head office keeps each card's fold state in
``card_folds``, with the ``pos`` of the last entry it covers, so a push folds only the
entries stored after it (:func:`card_folds`) instead of the card's whole history. Before a
kept state is used, the count and ``pos`` sum of the card's counted entries up to there
must be what they were when it was kept: an entry released from quarantine (or put in it)
by any writer changes them, and the card is then replayed whole, so a kept fold never
answers for entries it did not see. The result is the whole replay's, always.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .db import Row, Tx, chunks, marks
from .fold import CardState, FoldEntry, FoldState, replay, state_at
from .wire import parse_ts, ts

# ``cards.balance_until`` for a balance that holds until the next entry of the card.
FOREVER = "9999-12-31T23:59:59.999999+00:00"


def parts(tx: Tx, keys: Sequence[Any]) -> list[Sequence[Any]]:
    """``keys`` in the parts :func:`among` takes: all at once on PostgreSQL, :func:`chunks`
    on SQLite (whose ``IN`` lists take a parameter a key)."""
    if tx.dialect == "postgresql":
        return [keys] if keys else []
    return list(chunks(keys))


def among(tx: Tx, column: str, keys: Sequence[Any], *, of: str = "text") -> tuple[str, list[Any]]:
    """``column`` is one of ``keys`` (one of :func:`parts`), as SQL and its parameters.

    PostgreSQL gets one array (``= ANY``): one parameter and one statement text whatever
    the number of keys, so the server plans it once (a prepared statement), where an
    ``IN`` list of 500 placeholders was parsed and planned anew each time (≈ 10 ms of the
    server's CPU a statement). ``of``: the keys' PostgreSQL type.
    """
    if tx.dialect == "postgresql":
        return f"{column} = ANY(?::{of}[])", [list(keys)]
    return f"{column} IN ({marks(len(keys))})", list(keys)


def fold_entry(row: Row) -> FoldEntry:
    """A stored entry as the fold reads it (its till seq orders the lots it creates)."""
    return FoldEntry(
        id=row["id"],
        till=row["till"],
        kind=row["kind"],
        points=int(row["points"]),
        created_at=parse_ts(row["created_at"]),
        receipt_id=row["receipt_id"],
        ref=row["ref"],
        available_from=parse_ts(row["available_from"]) if row["available_from"] else None,
        expires_at=parse_ts(row["expires_at"]) if row["expires_at"] else None,
        seq=int(row["seq"]),
    )


def card_entries(
    tx: Tx, numbers: Sequence[str], *, quarantined: bool = False
) -> dict[str, list[Row]]:
    """Each card's entries in HQ order: those that count, or (``quarantined``) all of them.

    An entry in quarantine (``entries.quarantine`` not NULL: open or rejected) is left out
    of every fold, so its points are spendable nowhere (:mod:`tillgate.hq.quarantine`).
    """
    counted = "" if quarantined else " AND quarantine IS NULL"
    out: dict[str, list[Row]] = {n: [] for n in numbers}
    for part in parts(tx, sorted(set(numbers))):
        cards, args = among(tx, "card", part)
        for row in tx.all(f"SELECT * FROM entries WHERE {cards}{counted} ORDER BY card, pos", args):
            out[row["card"]].append(row)
    return out


@dataclass(kw_only=True)
class Folded:
    """A card's fold state and which of its counted entries it covers (``card_folds``)."""

    state: FoldState = field(default_factory=FoldState)
    through: int = 0  # the pos of the last counted entry folded (0: none)
    counted: int = 0  # how many counted entries up to ``through``
    pos_sum: int = 0  # the sum of their pos: with ``counted``, what must still hold

    def add(self, rows: Sequence[Row]) -> None:
        """Fold the card's counted entries after ``through`` (in pos order) onto the state."""
        replay([fold_entry(r) for r in rows], onto=self.state)
        for r in rows:
            self.through = max(self.through, int(r["pos"]))
            self.counted += 1
            self.pos_sum += int(r["pos"])


def _kept(tx: Tx, numbers: Sequence[str]) -> dict[str, Folded]:
    """The kept folds of these cards that still cover their counted entries up to
    ``through_pos``: the same count and pos sum (an entry released from quarantine or put
    back, by whichever writer, changes them, and the card is then replayed whole)."""
    cards, args = among(tx, "card", numbers)
    rows = tx.all(
        f"SELECT card, through_pos, counted, pos_sum, state FROM card_folds WHERE {cards}", args
    )
    if not rows:
        return {}
    now_counted = {
        r["card"]: (int(r["n"]), int(r["s"]))
        for r in tx.all(
            "SELECT e.card, COUNT(*) AS n, SUM(e.pos) AS s FROM entries AS e"
            " JOIN card_folds AS f ON f.card = e.card"
            f" WHERE e.{cards} AND e.quarantine IS NULL"
            " AND e.pos <= f.through_pos GROUP BY e.card",
            args,
        )
    }
    out: dict[str, Folded] = {}
    for r in rows:
        counted, pos_sum = int(r["counted"]), int(r["pos_sum"])
        if now_counted.get(r["card"], (0, 0)) != (counted, pos_sum):
            continue
        try:
            state = FoldState.load(r["state"])
        except (ValueError, KeyError, TypeError):  # another version's: replayed whole
            continue
        out[r["card"]] = Folded(
            state=state, through=int(r["through_pos"]), counted=counted, pos_sum=pos_sum
        )
    return out


def card_folds(tx: Tx, numbers: Sequence[str]) -> dict[str, Folded]:
    """Each card's fold over its counted entries: its kept fold with the entries stored
    since folded onto it, or (none kept, or no longer right) its whole history replayed."""
    out: dict[str, Folded] = {}
    for part in parts(tx, sorted(set(numbers))):
        kept = _kept(tx, part)
        if kept:
            since: dict[str, list[Row]] = {n: [] for n in kept}
            cards, args = among(tx, "e.card", sorted(kept))
            for row in tx.all(
                "SELECT e.* FROM entries AS e JOIN card_folds AS f ON f.card = e.card"
                f" WHERE {cards} AND e.quarantine IS NULL"
                " AND e.pos > f.through_pos ORDER BY e.card, e.pos",
                args,
            ):
                since[row["card"]].append(row)
            for number, rows in since.items():
                kept[number].add(rows)
        out |= kept
        whole = [n for n in part if n not in kept]
        for number, rows in card_entries(tx, whole).items() if whole else ():
            out[number] = Folded()
            out[number].add(rows)
    return {n: out[n] for n in dict.fromkeys(numbers)}


def card_states(tx: Tx, numbers: Sequence[str], now: datetime) -> dict[str, CardState]:
    """Each card's points at ``now`` (:func:`card_folds`; nothing is written)."""
    return {n: state_at(f.state, now) for n, f in card_folds(tx, numbers).items()}


# A card with fewer counted entries is replayed: reading, checking and writing back its
# state costs about what folding that many entries does (most cards of a new chain).
KEEP_FROM = 16


def keep(tx: Tx, folds: dict[str, Folded]) -> None:
    """Keep these (locked) cards' folds, so that the next folds only later entries; those
    of cards with fewer than :data:`KEEP_FROM` counted entries are not worth it (a fold
    kept before still serves: it covers what it covers)."""
    worth = sorted((n, f) for n, f in folds.items() if f.counted >= KEEP_FROM)
    tx.values(
        "INSERT INTO card_folds (card, through_pos, counted, pos_sum, state) VALUES ?"
        " ON CONFLICT (card) DO UPDATE SET through_pos = excluded.through_pos,"
        " counted = excluded.counted, pos_sum = excluded.pos_sum, state = excluded.state",
        [(n, f.through, f.counted, f.pos_sum, f.state.dump()) for n, f in worth],
        ("text", "bigint", "bigint", "bigint", "text"),
    )


# A card whose counted entries all credit (accrues and adjusts of points > 0: an opening
# balance, then sales; most cards of a push): each entry a lot of its own (pending until
# ``available_from``, else from ``created_at``), nothing consumed, no debt. Its fold is what
# the aggregates below say: the replay's (a hypothesis test over such histories,
# tests/hq/test_folds.py) at every instant, as instants are stored as UTC text of one width
# (``ts``), which sorts as the instants do. ``?``: FOREVER, then now five times, the cards.
_ACCRUED = """
UPDATE cards SET next_expiry = v.next_expiry, balance = v.balance, negative_since = NULL,
    balance_until = COALESCE(CASE WHEN v.soon IS NULL OR v.ends < v.soon THEN v.ends
                                  ELSE v.soon END, ?)
FROM (
    SELECT e.card AS card, MIN(e.expires_at) AS next_expiry,
        SUM(CASE WHEN e.expires_at IS NOT NULL AND e.expires_at <= ? THEN 0
                 WHEN COALESCE(e.available_from, e.created_at) > ? THEN 0
                 ELSE e.points END) AS balance,
        MIN(CASE WHEN (e.expires_at IS NULL OR e.expires_at > ?)
                  AND COALESCE(e.available_from, e.created_at) > ?
                 THEN COALESCE(e.available_from, e.created_at) END) AS soon,
        MIN(CASE WHEN e.expires_at > ? THEN e.expires_at END) AS ends
    FROM entries AS e
    WHERE {cards} AND e.quarantine IS NULL
        AND NOT EXISTS (SELECT 1 FROM card_folds AS f WHERE f.card = e.card)
    GROUP BY e.card
    HAVING COUNT(*) < {keep}
        AND MIN(CASE WHEN e.kind IN ('accrue', 'adjust') AND e.points > 0 THEN 1 ELSE 0 END) = 1
) AS v
WHERE cards.number = v.card
RETURNING cards.number
"""


def refresh_accrued(tx: Tx, numbers: Sequence[str], now: datetime) -> set[str]:
    """Fold in SQL the (locked) cards whose counted entries all credit (accrues and
    adjusts of points > 0), fewer than :data:`KEEP_FROM` and none kept: their expiry index,
    balance and how long it holds, as :func:`tillgate.hq.ledger.refresh_cards` writes them,
    in one statement with no row read into Python. Returns the cards it folded; the caller
    folds the others (and gives every card its change)."""
    done: set[str] = set()
    at = ts(now)
    for part in parts(tx, sorted(set(numbers))):
        cards, args = among(tx, "e.card", part)
        sql = _ACCRUED.format(cards=cards, keep=KEEP_FROM)
        done |= {r["number"] for r in tx.all(sql, [FOREVER, at, at, at, at, at, *args])}
    return done
