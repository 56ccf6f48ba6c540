"""Every till's ledger at head office: push (exactly once, in order), card state, expiry.

A push stores every new entry; the ones head office will not take
(:mod:`tillgate.hq.authority`) are stored in quarantine (:mod:`tillgate.hq.quarantine`)
and left out of every fold (:func:`card_entries`), so they are spendable nowhere and never
block the entries after them.

Lock order, the same in every write so that two PostgreSQL transactions never wait on
each other in a cycle: the pushing till's row → card rows (sorted by number) → quarantine
and coupon rows → counter rows (``change`` always last). SQLite serializes whole writes
anyway.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from tillgate.core.cards import mask
from tillgate.core.errors import CouponInvalid, SequenceGap, WrongTill
from tillgate.core.rules.bounds import receipt_points_bound, receipt_redeem_bound
from tillgate.core.rules.coupons import canonical
from tillgate.core.rules.program import ProgramFile

from . import facts, quarantine
from .authority import Admission, Policy, PolicyCache, Receipts, Refusal
from .db import Database, Row, Tx, chunks
from .fold import CardState, state_at
from .folds import (
    FOREVER,
    among,
    card_entries,
    card_folds,
    card_states,
    fold_entry,
    keep,
    parts,
    refresh_accrued,
)
from .tills import HQ_TILL, TillId
from .wire import EntryIn, PushIn, ts

# Re-exported: the modules that read a card's entries find them here, as before.
__all__ = ["FOREVER", "card_entries", "card_states", "chunks", "fold_entry"]

logger = logging.getLogger(__name__)

ENTRY_COLUMNS = (
    "id",
    "till",
    "seq",
    "card",
    "kind",
    "points",
    "receipt_id",
    "refund_id",
    "ref",
    "note",
    "created_at",
    "available_from",
    "expires_at",
)
# Their PostgreSQL types, then pos, received_at and quarantine's (for :meth:`Tx.values`).
ENTRY_TYPES = ("text", "text", "bigint", "text", "text", "bigint", *("text",) * 7)
ENTRY_TYPES_STORED = (*ENTRY_TYPES, "bigint", "text", "text")


# ---------------------------------------------------------------- change log


def add_changes(
    tx: Tx,
    kind: str,
    keys: Iterable[str],
    now: datetime,
    *,
    along: tuple[str, Sequence[Any]] | None = None,
) -> None:
    """Move each key to the head of the change feed (one row per key: the log compacts).

    ``along``: an INSERT or UPDATE (and its parameters) of the same transaction to run
    first; on PostgreSQL, with one key, both go as one statement, sent with whatever the
    transaction sends next (:meth:`Tx.later`: for a hold, its COMMIT).
    """
    todo = sorted(set(keys))
    if tx.dialect == "postgresql" and len(todo) == 1:
        # A hold moves one card: one statement takes the id and writes the row (the counter
        # row stays locked until commit, as with next_ids), after ``along`` if given.
        head, args = ("", ()) if along is None else (f"a AS ({along[0]} RETURNING 1), ", along[1])
        tx.later(
            f"WITH {head}c AS (UPDATE counters SET value = value + 1 WHERE name = 'change'"
            " RETURNING value) INSERT INTO changes (kind, key, id, at) SELECT ?, ?, value, ?"
            " FROM c ON CONFLICT (kind, key) DO UPDATE SET id = excluded.id, at = excluded.at",
            (*args, kind, todo[0], ts(now)),
        )
        return
    if along is not None:
        tx.later(*along)
    if not todo:
        return
    first, at = tx.next_ids("change", len(todo)), ts(now)
    tx.values(
        "INSERT INTO changes (kind, key, id, at) VALUES ?"
        " ON CONFLICT (kind, key) DO UPDATE SET id = excluded.id, at = excluded.at",
        [(kind, key, first + i, at) for i, key in enumerate(todo)],
        ("text", "text", "bigint", "text"),
    )


# ---------------------------------------------------------------- cards


def lock_cards(tx: Tx, numbers: Iterable[str], *, origin: str, now: datetime) -> list[str]:
    """Make sure each card has a row (status ``new`` if HQ did not know it) and lock them.

    One sorted upsert does both: on PostgreSQL ``ON CONFLICT DO UPDATE`` locks the row it
    finds, and sorting keeps every transaction locking cards in the same order.
    """
    todo, at = sorted(set(numbers)), ts(now)
    tx.values(
        "INSERT INTO cards (number, status, origin, created_at, updated_at) VALUES ?"
        " ON CONFLICT (number) DO UPDATE SET updated_at = cards.updated_at",
        [(n, "new", origin, at, at) for n in todo],
        ("text",) * 5,
    )
    return todo


def _existing(tx: Tx, numbers: Sequence[str], *, lock: bool = False) -> list[str]:
    """Which of these cards head office knows; ``lock``: locked too, in sorted order (on
    PostgreSQL ``FOR UPDATE``, which writes no new row version, where an upsert of each
    card did; SQLite's writers are serialized whole anyway)."""
    out: list[str] = []
    locking = " ORDER BY number FOR UPDATE" if lock and tx.dialect == "postgresql" else ""
    for part in parts(tx, sorted(numbers) if lock else numbers):
        numbered, args = among(tx, "number", part)
        sql = f"SELECT number FROM cards WHERE {numbered}{locking}"
        out += [r["number"] for r in tx.all(sql, args)]
    return out


def refresh_cards(
    tx: Tx, numbers: Sequence[str], now: datetime, *, also: Iterable[str] = ()
) -> dict[str, CardState]:
    """Fold the (locked) cards again: expiry index, negative flag, and a change each.

    Each card's fold is kept (``card_folds``), so the next refresh folds only the entries
    stored after this one. ``also``: other cards (known to head office) that moved in this
    transaction, given a change with these in one statement.
    """
    folds = card_folds(tx, numbers)
    keep(tx, folds)
    states = {n: state_at(f.state, now) for n, f in folds.items()}
    rows, at = [], ts(now)
    for number, st in states.items():
        expiries = [
            lot.expires_at for lot in (*st.lots, *st.expired_due) if lot.expires_at is not None
        ]
        until = st.balance_until(now)
        rows.append(
            (
                number,
                ts(min(expiries)) if expiries else None,
                st.balance,
                ts(until) if until else FOREVER,
                1 if st.balance < 0 else 0,
                at,
            )
        )
    # One statement for the lot (VALUES columns are column1… on both dialects).
    tx.values(
        "UPDATE cards SET next_expiry = v.column2, balance = v.column3,"
        " balance_until = v.column4, negative_since = CASE WHEN v.column5 = 1"
        " THEN COALESCE(cards.negative_since, v.column6) ELSE NULL END"
        " FROM (VALUES ?) AS v WHERE cards.number = v.column1",
        rows,
        ("text", "text", "bigint", "text", "bigint", "text"),
    )
    add_changes(tx, "card", [*states, *also], now)
    return states


def spendable(tx: Tx, number: str, now: datetime, *, row: Row | None = None) -> int:
    """The card's balance at ``now``: the one ``refresh_cards`` kept, while it holds
    (no lot became spendable or expired since), else folded again from the entries.

    Every change of a card's counted entries goes through :func:`refresh_cards` in the
    same transaction, so a kept balance is never stale for want of an entry. ``row``: the
    card's ``balance`` and ``balance_until`` as the caller read them in this transaction.
    """
    if row is None:
        row = tx.one("SELECT balance, balance_until FROM cards WHERE number = ?", (number,))
    if row is None:
        return 0
    if row["balance_until"] is not None and ts(now) < row["balance_until"]:
        return int(row["balance"])
    st = card_states(tx, [number], now)[number]
    until = st.balance_until(now)
    tx.execute(
        "UPDATE cards SET balance = ?, balance_until = ? WHERE number = ?",
        (st.balance, ts(until) if until else FOREVER, number),
    )
    return st.balance


def insert_entries(tx: Tx, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """Store entries in HQ order (their ``pos``), after every entry stored before them."""
    if not rows:
        return
    first, at = tx.next_ids("entry", len(rows)), ts(now)
    tx.values(
        f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}, pos, received_at, quarantine) VALUES ?",
        [
            [r[c] for c in ENTRY_COLUMNS] + [first + i, at, r.get("quarantine")]
            for i, r in enumerate(rows)
        ],
        ENTRY_TYPES_STORED,
    )


def hq_entries(tx: Tx, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries head office writes itself (till ``hq``), numbered in its own sequence."""
    if not rows:
        return []
    first = tx.next_ids("hq_seq", len(rows))
    out = []
    for i, r in enumerate(rows):
        full = dict.fromkeys(ENTRY_COLUMNS) | r
        out.append(full | {"id": uuid.uuid4().hex, "till": HQ_TILL, "seq": first + i})
    return out


# ---------------------------------------------------------------- push


def _stored(row: Row) -> dict[str, Any]:
    out = {c: row[c] for c in ENTRY_COLUMNS}
    out["seq"], out["points"] = int(out["seq"]), int(out["points"])
    return out


def push(
    tx: Tx, till: TillId, batch: PushIn, now: datetime, *, policies: PolicyCache | None = None
) -> dict[str, Any]:
    """Store a till's batch once, in order; report duplicates, conflicts, negative cards.

    Every new entry is stored; one head office will not take (:mod:`tillgate.hq.authority`)
    is stored in quarantine, reported in ``quarantined``, and counts as stored for
    ``through_seq``, so it never blocks the entries after it.
    """
    if batch.till != till.id:
        raise WrongTill(
            f"this credential belongs to till {till.id}; it cannot push for till {batch.till}"
        )
    for i, e in enumerate(batch.entries):
        if e.till != till.id:
            raise WrongTill(
                f"entries[{i}].till: {e.till!r} is not this till ({till.id}); a till pushes "
                "only its own entries"
            )
    tx.lock_rows("tills", "id", [till.id])
    through = int(tx.scalar("SELECT through_seq FROM tills WHERE id = ?", (till.id,)))
    old = [e for e in batch.entries if e.seq <= through]
    new = [e for e in batch.entries if e.seq > through]
    if new and new[0].seq != through + 1:
        raise SequenceGap(
            f"entries start at seq {new[0].seq} but head office has this till's entries up "
            f"to {through}; send again from seq {through + 1}",
            details={"expected": through + 1},
        )
    duplicates, conflicts = _check_known(tx, till, old, new, now)
    to_store: list[EntryIn] = []
    if not conflicts:
        to_store = new
    elif conflicts[0]["seq"] > through:
        to_store = [e for e in new if e.seq < conflicts[0]["seq"]]

    policy = policy_of(tx, policies, till=till)
    if tx.dialect == "postgresql":
        # What head office knows of the cards is read under the lock every writer of cards
        # takes: a card import (which holds them all, hq/cardimport.py) either commits
        # first and its cards are known here, or waits for this push and counts what it
        # quarantined. Read before the lock, a card the import was adding was quarantined
        # as unknown after the import had looked, and stayed so. Pushes do not wait for
        # each other on it.
        tx.execute("LOCK TABLE cards IN ROW EXCLUSIVE MODE")
    cards = {e.card for e in to_store} | {c.number for c in batch.cards_new}
    cards |= {u.card for u in batch.coupons_used if u.card}
    if batch.cards_new:
        known = set(_existing(tx, sorted(cards)))
        registered = _registrations(till, batch, known, policy)
        lock_cards(tx, known | registered, origin=f"till:{till.id}", now=now)
    else:  # no card to register (most pushes): the known ones, locked in one statement
        known, registered = set(_existing(tx, sorted(cards), lock=True)), set()
    admission = Admission(
        policy=policy,
        now=now,
        known_cards=known | registered,
        receipts=_receipts(tx, till, to_store),
    )
    rows: list[dict[str, Any]] = []
    flagged: list[tuple[EntryIn, Refusal]] = []
    for e in to_store:
        refusal = admission.check(e)
        rows.append(e.stored() | {"quarantine": None if refusal is None else quarantine.OPEN})
        if refusal is not None:
            flagged.append((e, refusal))
    # A receipt's facts are taken once head office holds the entries they follow; the
    # others are sent again with a later push. Stored and counted before the entries: the
    # `entry` counter row, which every push takes, is then held for less until commit
    # (the facts touch only this till's rows, and no counter row).
    taken = [f for f in batch.facts if f.after_seq <= (rows[-1]["seq"] if rows else through)]
    new_facts, counted = facts.store(tx, till=till.id, facts=taken, now=now)
    insert_entries(tx, rows, now)
    quarantined = quarantine.record(tx, till.id, flagged, now)
    released = quarantine.release_known(
        tx, sorted(registered), now, till=till.id, why="the till registered the card"
    )
    if rows:
        tx.execute(
            "UPDATE tills SET through_seq = ?, last_push = ? WHERE id = ?",
            (rows[-1]["seq"], ts(now), till.id),
        )
        through = rows[-1]["seq"]
    double = _coupons(tx, till, batch, now)
    # Only cards whose entries changed need folding again, quarantined entries' too: the
    # till that pushed them learns its new through_seq with head office's balance. A card
    # HQ just learnt of still gets a change so that every till hears of it, and so does
    # one whose counts changed; one head office does not know reaches no till (it moves
    # when it becomes known, its counts with it). One change a card, in one statement.
    held = known | registered
    touched = sorted(({r["card"] for r in rows} | set(released)) & held)
    moved = registered | (counted.cards & held)
    moved |= set(_existing(tx, sorted(counted.cards - held)))
    # Cards with only accrues are folded in SQL, the others in Python (negative: those).
    accrued = refresh_accrued(tx, touched, now)
    rest = [n for n in touched if n not in accrued]
    states = refresh_cards(tx, rest, now, also=sorted((moved - set(touched)) | accrued))
    add_changes(tx, "budget", counted.budgets, now)
    tx.execute("UPDATE tills SET last_seen = ? WHERE id = ?", (ts(now), till.id))
    negative = [n for n, st in states.items() if st.balance < 0]
    for n in negative:
        logger.warning(
            "card %s is negative (%d) after a push from %s", mask(n), states[n].balance, till.id
        )
    if rows or conflicts or double or new_facts:
        logger.info(
            "push from %s: %d stored (%d quarantined), %d duplicates, %d conflicts, "
            "%d coupon double uses, %d receipt facts",
            till.id,
            len(rows),
            len(quarantined),
            duplicates,
            len(conflicts),
            len(double),
            new_facts,
        )
    return {
        "through_seq": through,
        "stored": len(rows),
        "duplicates": duplicates,
        "conflicts": conflicts,
        "quarantined": quarantined,
        "negative_cards": [mask(n) for n in negative],
        "coupon_double_uses": double,
        "facts": [f.id for f in taken],
    }


def policy_of(tx: Tx, cache: PolicyCache | None = None, *, till: TillId | None = None) -> Policy:
    """What the program in force lets a till push (the defaults before any program);
    ``till``: authenticated in this transaction, so it knows which program that is."""
    if till is not None and till.program is not None:
        version = till.program
    else:
        version = tx.scalar("SELECT MAX(version) FROM programs")
    if version is None:
        return Policy()
    if cache is not None and (hit := cache.get(int(version))) is not None:
        return hit
    body = tx.scalar("SELECT body FROM programs WHERE version = ?", (version,))
    file = ProgramFile.model_validate_json(body)
    # One entry moves at most what one receipt of this program can earn or spend.
    most = max(receipt_points_bound(file), receipt_redeem_bound(file))
    policy = Policy.of(file.program, max_points=most)
    if cache is not None:
        cache.put(int(version), policy)
    return policy


def _registrations(till: TillId, batch: PushIn, known: set[str], policy: Policy) -> set[str]:
    """The first-use cards of this push that the program registers (the others are ignored)."""
    out: set[str] = set()
    for card in batch.cards_new:
        if card.number in known:
            continue
        if policy.registers(card.number):
            out.add(card.number)
        else:
            logger.warning(
                "card %s from %s not registered: the program does not register unknown cards"
                " (or the number does not match card_number_pattern)",
                mask(card.number),
                till.id,
            )
    return out


def _receipts(tx: Tx, till: TillId, entries: Sequence[EntryIn]) -> Receipts:
    """The counted redemptions and returns of the receipts this batch returns points on."""
    book = Receipts()
    ids = sorted({e.receipt_id for e in entries if e.kind == "return" and e.receipt_id})
    for part in parts(tx, ids):
        where, args = among(tx, "receipt_id", part)
        for r in tx.all(
            "SELECT receipt_id, kind, SUM(points) AS points FROM entries WHERE till = ?"
            f" AND {where} AND kind IN ('redeem', 'return')"
            " AND quarantine IS NULL GROUP BY receipt_id, kind",
            [till.id, *args],
        ):
            totals = book.redeemed if r["kind"] == "redeem" else book.returned
            totals[r["receipt_id"]] = abs(int(r["points"]))
    return book


def _check_known(
    tx: Tx, till: TillId, old: list[EntryIn], new: list[EntryIn], now: datetime
) -> tuple[int, list[dict[str, Any]]]:
    """Count retried entries HQ holds identically; find the first that differs (a conflict)."""
    by_seq: dict[int, Row] = {}
    for seqs in parts(tx, [e.seq for e in old]):
        numbered, args = among(tx, "seq", seqs, of="bigint")
        for row in tx.all(f"SELECT * FROM entries WHERE till = ? AND {numbered}", [till.id, *args]):
            by_seq[int(row["seq"])] = row
    by_id: dict[str, Row] = {}
    for part in parts(tx, [e.id for e in new]):
        ids, args = among(tx, "id", part)
        for row in tx.all(f"SELECT * FROM entries WHERE {ids}", args):
            by_id[row["id"]] = row
    duplicates = 0
    old_seqs = {e.seq for e in old}
    for e in [*old, *new]:
        is_old = e.seq in old_seqs
        stored = by_seq.get(e.seq) if is_old else by_id.get(e.id)
        if stored is None and not is_old:
            continue  # a new entry (most): nothing to compare
        mine = e.stored()
        if stored is None:
            reason = f"seq {e.seq} is not stored although it is below through_seq"
        elif _stored(stored) == mine:
            duplicates += 1
            continue
        elif is_old:
            reason = f"seq {e.seq} is stored with different content (entry {stored['id']})"
        else:
            reason = f"entry id {e.id} is stored as {stored['till']} seq {stored['seq']}"
        tx.execute(
            "INSERT INTO sync_conflicts (till, seq, entry_id, reason, stored, received,"
            " detected_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                till.id,
                e.seq,
                e.id,
                reason,
                json.dumps(_stored(stored)) if stored else None,
                json.dumps(mine),
                ts(now),
            ),
        )
        logger.error("sync conflict from %s: %s", till.id, reason)
        return duplicates, [{"seq": e.seq, "id": e.id, "reason": reason}]
    return duplicates, []


def _coupons(tx: Tx, till: TillId, batch: PushIn, now: datetime) -> list[dict[str, Any]]:
    """Record coupon uses; a code already used elsewhere is a double use (the first stands)."""
    double: list[dict[str, Any]] = []
    uses = sorted(batch.coupons_used, key=lambda u: canonical_or(u.code))
    for use in uses:
        code = canonical_or(use.code)
        tx.execute(
            "INSERT INTO coupons_used (code, promotion_id, till, receipt_id, card, used_at,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO NOTHING",
            (code, use.promotion_id, till.id, use.receipt_id, use.card, ts(use.used_at), ts(now)),
        )
        first = tx.one("SELECT till, receipt_id FROM coupons_used WHERE code = ?", (code,))
        assert first is not None
        if (first["till"], first["receipt_id"]) == (till.id, use.receipt_id):
            continue
        tx.execute(
            "INSERT INTO coupon_conflicts (code, till, receipt_id, card, used_at, first_till,"
            " first_receipt_id, detected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (
                code,
                till.id,
                use.receipt_id,
                use.card,
                ts(use.used_at),
                first["till"],
                first["receipt_id"],
                ts(now),
            ),
        )
        logger.warning(
            "coupon double use: %s used at %s (receipt %s), first used at %s (receipt %s)",
            code,
            till.id,
            use.receipt_id,
            first["till"],
            first["receipt_id"],
        )
        double.append(
            {
                "code": code,
                "till": till.id,
                "receipt_id": use.receipt_id,
                "first_till": first["till"],
                "first_receipt_id": first["receipt_id"],
            }
        )
    add_changes(tx, "coupon_used", {canonical_or(u.code) for u in uses}, now)
    return double


def canonical_or(code: str) -> str:
    """A coupon code in its one spelling; a code that is not a signed one is kept as sent."""
    try:
        return canonical(code)
    except CouponInvalid:
        return code


# ---------------------------------------------------------------- expiry


def expire_due(db: Database, now: datetime, *, card: str | None = None, batch: int = 200) -> int:
    """Write HQ's ``expire`` entries for every lot past its expiry; returns how many.

    Runs periodically in ``hq serve`` and for one card before it is shown. Tills with a head
    office never write ``expire`` entries themselves.
    """
    written = 0
    while True:
        with db.write() as tx:
            if card is not None:
                due = [card]
            else:
                due = [
                    r["number"]
                    for r in tx.all(
                        "SELECT number FROM cards WHERE next_expiry <= ? ORDER BY number LIMIT ?",
                        (ts(now), batch),
                    )
                ]
            if not due:
                return written
            due = lock_cards(tx, due, origin="hq", now=now)
            states = card_states(tx, due, now)
            rows: list[dict[str, Any]] = []
            for number, st in states.items():
                for lot in st.expired_due:
                    rows.append(
                        {
                            "card": number,
                            "kind": "expire",
                            "points": -lot.points,
                            "ref": lot.source,
                            "note": f"lot expired at {ts(lot.expires_at)}"
                            if lot.expires_at
                            else None,
                            "created_at": ts(now),
                        }
                    )
            insert_entries(tx, hq_entries(tx, rows), now)
            refresh_cards(tx, due, now)
            written += len(rows)
        if card is not None or len(due) < batch:
            return written
