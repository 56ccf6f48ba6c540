"""Retention: the till forgets receipts older than ``till.retention_days`` once synced.

A receipt goes with its refunds, its returned quantities and its facts when it was last
touched (confirmed, refunded, cancelled, or calculated and abandoned) before the cut-off
and, on a chain's till, when head office has every ledger entry and fact of it (a receipt
not yet synced stays, however old). A standalone till has no head office: its receipts
and their facts go at the cut-off alone.

What stays: every balance, every lot with points left (its expiry and accrual delay); the
ledger history of the forgotten receipts' cards is folded (:mod:`.ledgerfold`) into one
entry a card, which keeps every balance, hold, debt and lot as it was;
the promotion uses (limits per card count them), stamps and coupons (a code is used once
for ever). A refund of a receipt that is gone is refused with a clear error
(:func:`pruned_before` says since when receipts are gone).

Pruning runs in batches of :data:`BATCH` receipts, one write transaction each, so a POS
request waits for one batch at most.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from . import ledgerfold, meta
from .ledger import parse_ts, ts

BATCH = 500
_KEY = "retention.pruned_before"

# Receipts last touched before the cut-off (a calculated one only once its hold is gone);
# on a chain's till only those whose entries and facts head office has.
_OLD = (
    "SELECT receipt_id FROM receipts"
    " WHERE COALESCE(confirmed_at, updated_at) < :before"
    " AND (status != 'calculated' OR hold_entry IS NULL)"
)
_SYNCED = (
    " AND NOT EXISTS (SELECT 1 FROM ledger e WHERE e.receipt_id = receipts.receipt_id"
    " AND e.synced_at IS NULL)"
    " AND NOT EXISTS (SELECT 1 FROM facts f WHERE f.id = 'sale:' || receipts.receipt_id)"
    " AND NOT EXISTS (SELECT 1 FROM refunds r JOIN facts f ON f.id = 'refund:' || r.refund_id"
    " WHERE r.receipt_id = receipts.receipt_id)"
)


def prune_batch(conn: sqlite3.Connection, *, before: datetime, chain: bool, now: datetime) -> int:
    """Forget up to :data:`BATCH` old receipts (see the module's docstring); how many went."""
    rows = conn.execute(
        _OLD + (_SYNCED if chain else "") + " LIMIT :n", {"before": ts(before), "n": BATCH}
    ).fetchall()
    ids = [r[0] for r in rows]
    if ids:
        marks = ",".join("?" * len(ids))
        cards = [
            r[0]
            for r in conn.execute(
                f"SELECT DISTINCT card FROM receipts WHERE receipt_id IN ({marks})"
                " AND card IS NOT NULL ORDER BY card",
                ids,
            )
        ]
        conn.execute(
            f"DELETE FROM facts WHERE id IN (SELECT 'refund:' || refund_id FROM refunds"
            f" WHERE receipt_id IN ({marks}))",
            ids,
        )
        conn.executemany("DELETE FROM facts WHERE id = ?", [(f"sale:{i}",) for i in ids])
        conn.execute(f"DELETE FROM refunds WHERE receipt_id IN ({marks})", ids)
        conn.execute(f"DELETE FROM refund_lines WHERE receipt_id IN ({marks})", ids)
        conn.execute(f"DELETE FROM receipts WHERE receipt_id IN ({marks})", ids)
        # Their cards' settled ledger history folds now that no refund can reach it.
        ledgerfold.fold_cards(conn, cards, before=before, chain=chain, now=now)
    last = pruned_before(conn)
    if last is None or last < before:
        meta.put(conn, _KEY, ts(before))
    return len(ids)


def pruned_before(conn: sqlite3.Connection) -> datetime | None:
    """The latest cut-off retention has applied (None: it never ran)."""
    value = meta.get(conn, _KEY)
    return None if value is None else parse_ts(value)
