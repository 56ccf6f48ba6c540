"""Entries head office would not take: kept, flagged, left out of every balance until decided.

The design (docs/sync-protocol.md, "Quarantine"):

* A quarantined entry is stored in ``entries`` like any other, with
  ``entries.quarantine = 'open'``, and a row here says why (the
  :class:`~tillgate.hq.authority.Refusal`). Its till's ``through_seq`` moves past it, so
  it never blocks the entries after it.
* Every fold — balances, lots, expiry, the change feed — reads only the entries whose
  ``quarantine`` is NULL, so its points are spendable nowhere. The till that pushed it sees
  that too: its ``through_seq`` covers the entry, so its balance of the card is head
  office's (the feed's ``balance`` plus only its own entries after ``through_seq``).
* **release**: the entry counts from then on, in its place in head office's order (its
  ``pos``); the card is folded again and every till gets it through the change feed.
* **reject**: the entry stays left out for good. It never counted, so nothing needs
  compensating; the card gets a change all the same, so every till re-reads head office's
  view. A card head office did not know becomes known — ``new`` on release, ``blocked``
  on reject — so that the till that pushed the entry hears head office's balance for it.

Lock order, as in :mod:`tillgate.hq.ledger`: card rows, then quarantine rows, then
counters; a decision locks the card before it touches the flag.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tillgate.core.cards import mask

from .authority import Refusal
from .db import Database, Tx, marks
from .wire import EntryIn, ts

logger = logging.getLogger(__name__)

OPEN, RELEASED, REJECTED = "open", "released", "rejected"
HQ_DECIDED = "head office"  # decided_by of what head office decides by itself


def record(
    tx: Tx, till: str, flagged: Sequence[tuple[EntryIn, Refusal]], now: datetime
) -> list[dict[str, Any]]:
    """Flag entries just stored as quarantined; returns them as the push reply lists them."""
    if not flagged:
        return []
    first = tx.next_ids("flag", len(flagged))
    tx.many(
        "INSERT INTO quarantine (id, entry_id, till, seq, card, kind, points, code, reason,"
        " created_at, detected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                first + i,
                e.id,
                till,
                e.seq,
                e.card,
                e.kind,
                e.points,
                r.code,
                r.reason,
                ts(e.created_at),
                ts(now),
            )
            for i, (e, r) in enumerate(flagged)
        ],
    )
    for e, r in flagged:
        logger.warning(
            "quarantined %s seq %d: %s %+d on card %s (%s: %s)",
            till,
            e.seq,
            e.kind,
            e.points,
            mask(e.card),
            r.code,
            r.reason,
        )
    return [
        {"seq": e.seq, "id": e.id, "flag": first + i, "code": r.code, "reason": r.reason}
        for i, (e, r) in enumerate(flagged)
    ]


def release_known(
    tx: Tx, numbers: Sequence[str], now: datetime, *, till: str | None, why: str
) -> list[str]:
    """Count the ``unknown_card`` entries of cards head office now knows.

    ``till``: only that till's entries (it registered the card on first use — a till sends
    a batch of first-use cards per push, so a registration can come a push after its
    entries); None: every till's (head office imported the card). ``unknown_card`` is the
    last check, so such an entry passed every other one. Returns the cards whose entries
    now count; the caller folds them again.
    """
    found: list[dict[str, Any]] = []
    for part in _chunks(sorted(set(numbers))):
        mine = " AND till = ?" if till is not None else ""
        found += tx.all(
            "SELECT id, entry_id, card FROM quarantine WHERE code = 'unknown_card'"
            f" AND status = '{OPEN}' AND card IN ({marks(len(part))}){mine} ORDER BY id",
            [*part, *([till] if till is not None else [])],
        )
    if not found:
        return []
    tx.many(
        "UPDATE quarantine SET status = ?, decided_at = ?, decided_by = ?, decision = ?"
        " WHERE id = ?",
        [(RELEASED, ts(now), HQ_DECIDED, why, r["id"]) for r in found],
    )
    tx.many("UPDATE entries SET quarantine = NULL WHERE id = ?", [(r["entry_id"],) for r in found])
    logger.info("%d quarantined entries count now: %s", len(found), why)
    return sorted({r["card"] for r in found})


def _chunks(items: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def listing(db: Database, *, decided: bool = False) -> list[dict[str, Any]]:
    """Quarantined entries, oldest first: the open ones, or (``decided``) every one."""
    where = "" if decided else f" WHERE status = '{OPEN}'"
    with db.read() as tx:
        found = tx.all(f"SELECT * FROM quarantine{where} ORDER BY id")
    return [_out(r) for r in found]


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return dict(row, id=int(row["id"]), seq=int(row["seq"]), points=int(row["points"]))


def mark_decided(
    tx: Tx, flag: int, *, status: str, by: str, reason: str | None, now: datetime
) -> bool:
    """Record a decision on an open flag; False if it was decided already (decisions are final)."""
    done = tx.execute(
        "UPDATE quarantine SET status = ?, decided_at = ?, decided_by = ?, decision = ?"
        f" WHERE id = ? AND status = '{OPEN}'",
        (status, ts(now), by, reason, flag),
    )
    return done > 0


def get(tx: Tx, flag: int) -> dict[str, Any] | None:
    row = tx.one("SELECT * FROM quarantine WHERE id = ?", (flag,))
    return _out(row) if row else None


def flag_stored(
    tx: Tx,
    till: str,
    entries: Sequence[dict[str, Any]],
    *,
    code: str,
    reason: str,
    now: datetime,
) -> list[int]:
    """Quarantine entries already stored and counted (re-pricing found them wrong).

    The caller has locked their card and folds it again afterwards. Returns the flag ids.
    """
    if not entries:
        return []
    first = tx.next_ids("flag", len(entries))
    tx.many(
        "INSERT INTO quarantine (id, entry_id, till, seq, card, kind, points, code, reason,"
        " created_at, detected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                first + i,
                e["id"],
                till,
                e["seq"],
                e["card"],
                e["kind"],
                e["points"],
                code,
                reason,
                e["created_at"],
                ts(now),
            )
            for i, e in enumerate(entries)
        ],
    )
    tx.many(f"UPDATE entries SET quarantine = '{OPEN}' WHERE id = ?", [(e["id"],) for e in entries])
    return [first + i for i in range(len(entries))]
