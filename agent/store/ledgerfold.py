"""Folding a card's settled ledger history into one entry, so the data file stops growing.

Retention (:mod:`.retention`) forgets old receipts; their ledger entries, the lots they
made and the moves between them would stay for ever (≈ 0.7 KB a receipt) and every
balance would sum a longer history. A fold replaces a card's *settled* entries with one
``adjust`` entry carrying their sum (the *carry*), so that every figure the till derives
from the ledger is what it was:

- the balance (the sum of the card's entries) and the open holds (the sum of its holds and
  releases): the carry holds the sum of the folded entries, and holds fold only with their
  releases (the pair sums to nothing);
- the lots with points left, their dates and their order (a lot's order is its crediting
  entry's seq): an entry that credited a lot still holding points is not folded;
- the debt (:func:`tillgate.agent.store.ledger.debt`): a folded entry's lot goes only when
  it is empty and every move on it was by a folded entry; what folded entries moved on
  lots that stay moves under the carry instead, lot by lot.

Retention folds the cards of the receipts it forgets, in the same transaction
(:func:`tillgate.agent.store.retention.prune_batch`): the work follows what retention
forgets, never a scan of every card. *Settled* means: older than the cut-off, its receipt
(if any) forgotten by retention (so no refund can reach it), and on a chain's till at head
office already (synced, and on a card head office reports on at or below the
``through_seq`` head office has included).

The carry takes the id, seq and time of the newest entry it folds, so the sequence the
outbox sends by keeps no gap and no new number; it is marked synced (head office has the
entries it replaces). The ledger stays append-only for everything else: the triggers that
refuse deletes are dropped and made again inside the fold's own transaction, so no other
connection ever sees the table without them.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from .ledger import ts

_MIN_ENTRIES = 3  # fewer settled entries than this are not worth a carry

# Entries that may be settled (the lot and hold conditions are checked per card after).
_CANDIDATES = (
    "SELECT e.id, e.seq, e.till, e.card, e.kind, e.points, e.ref, e.created_at, e.synced_at"
    " FROM ledger e LEFT JOIN hq_cards h ON h.number = e.card"
    " WHERE e.card IN ({cards}) AND e.created_at < ?"
    " AND (e.receipt_id IS NULL OR NOT EXISTS"
    "   (SELECT 1 FROM receipts r WHERE r.receipt_id = e.receipt_id))"
    " AND (? = 0 OR (e.synced_at IS NOT NULL"
    "   AND (h.number IS NULL OR e.seq <= h.through_seq)))"
)


def fold_cards(
    conn: sqlite3.Connection, cards: list[str], *, before: datetime, chain: bool, now: datetime
) -> int:
    """Fold each card's settled entries (see the module's docstring), in the caller's write
    transaction; returns how many entries went."""
    if not cards:
        return 0
    marks = ",".join("?" * len(cards))
    rows = conn.execute(
        _CANDIDATES.format(cards=marks), [*cards, ts(before), int(chain)]
    ).fetchall()
    by_card: dict[str, list[sqlite3.Row]] = defaultdict(list)
    for r in rows:
        by_card[r["card"]].append(r)
    lots_of = defaultdict(list)  # card → its lots (id, crediting entry, remaining)
    for r in conn.execute(
        f"SELECT id, card, entry_id, remaining FROM lots WHERE card IN ({marks})", cards
    ):
        lots_of[r["card"]].append(r)
    moves_of = defaultdict(list)  # card → every move on its lots
    for r in conn.execute(
        "SELECT m.entry_id, m.lot_id, m.points, l.card FROM lot_moves m"
        f" JOIN lots l ON l.id = m.lot_id WHERE l.card IN ({marks})",
        cards,
    ):
        moves_of[r["card"]].append(r)
    folds = []
    for card in cards:
        settled = _settled(by_card.get(card, []), lots_of.get(card, []), moves_of.get(card, []))
        if len(settled) >= _MIN_ENTRIES:
            folds.append((card, settled))
    if not folds:
        return 0
    with _deletable_ledger(conn):
        for card, settled in folds:
            _fold(conn, card, settled, lots_of[card], moves_of[card], now=now)
    return sum(len(s) for _, s in folds)


def _settled(
    candidates: list[sqlite3.Row], lots: list[sqlite3.Row], moves: list[sqlite3.Row]
) -> dict[str, sqlite3.Row]:
    """The candidates that fold: a hold only with its release, an entry that credited a
    lot only when the lot is empty and every move on it is by an entry that folds."""
    settled = {r["id"]: r for r in candidates}
    released = {r["ref"]: r["id"] for r in candidates if r["kind"] == "release"}
    lot_by_entry = {lot["entry_id"]: lot for lot in lots}
    movers: dict[str, set[str]] = defaultdict(set)
    for m in moves:
        movers[m["lot_id"]].add(m["entry_id"])
    changed = True
    while changed:  # dropping one entry may unsettle the lots it moved points on
        changed = False
        for entry_id, r in list(settled.items()):
            keep = False
            if r["kind"] == "hold":
                keep = released.get(entry_id) not in settled
            elif r["kind"] == "release":
                keep = r["ref"] not in settled
            lot = lot_by_entry.get(entry_id)
            if lot is not None and (
                lot["remaining"] != 0 or not movers[lot["id"]].issubset(settled)
            ):
                keep = True
            if keep:
                del settled[entry_id]
                changed = True
    return settled


def _fold(
    conn: sqlite3.Connection,
    card: str,
    settled: dict[str, sqlite3.Row],
    lots: list[sqlite3.Row],
    moves: list[sqlite3.Row],
    *,
    now: datetime,
) -> None:
    newest = max(settled.values(), key=lambda r: r["seq"])
    ids = list(settled)
    gone_lots = [lot["id"] for lot in lots if lot["entry_id"] in settled]
    gone = set(gone_lots)
    # What the folded entries moved on lots that stay moves under the carry.
    carried: dict[str, int] = defaultdict(int)
    for m in moves:
        if m["entry_id"] in settled and m["lot_id"] not in gone:
            carried[m["lot_id"]] += m["points"]
    # Every move on a lot that goes is a settled entry's (_settled): these take them all.
    conn.executemany("DELETE FROM lot_moves WHERE entry_id = ?", [(i,) for i in ids])
    conn.executemany("DELETE FROM lots WHERE id = ?", [(i,) for i in gone_lots])
    conn.executemany("DELETE FROM ledger WHERE id = ?", [(i,) for i in ids])
    conn.execute(
        "INSERT INTO ledger (id, seq, till, card, kind, points, note, created_at, synced_at)"
        " VALUES (?,?,?,?,'adjust',?,?,?,?)",
        (
            newest["id"],
            newest["seq"],
            newest["till"],
            card,
            sum(r["points"] for r in settled.values()),
            f"{len(settled)} entries up to {newest['created_at']} folded",
            newest["created_at"],
            newest["synced_at"] or ts(now),
        ),
    )
    conn.executemany(
        "INSERT INTO lot_moves (entry_id, lot_id, points) VALUES (?,?,?)",
        [(newest["id"], lot_id, points) for lot_id, points in sorted(carried.items()) if points],
    )


@contextmanager
def _deletable_ledger(conn: sqlite3.Connection) -> Iterator[None]:
    """The ledger's append-only triggers away for the length of the caller's transaction:
    dropped and made again from their own stored text before it commits."""
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
        " AND tbl_name = 'ledger' AND name LIKE 'ledger_append_only%'"
    ).fetchall()
    for name, _ in rows:
        conn.execute(f"DROP TRIGGER {name}")
    try:
        yield
    finally:
        for _, sql in rows:
            conn.execute(sql)
