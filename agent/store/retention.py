"""Retention: the till forgets receipts older than ``till.retention_days`` once synced.

A receipt goes with its refunds, its returned quantities and its facts when it was last
touched (confirmed, refunded, cancelled, or calculated and abandoned) before the cut-off
and, on a chain's till, when head office has every ledger entry and fact of it (a receipt
not yet synced stays, however old). A standalone till has no head office: its receipts
and their facts go at the cut-off alone.

What stays: every balance, every lot with points left (its expiry and accrual delay); the
ledger history of the forgotten receipts' cards is folded (:mod:`.ledgerfold`) into one
entry a card, which keeps every balance, hold, debt and lot as it was; what the rules
count of a card: its visits and its paid kopecks by the till's local day (``card_days``:
a tier's rolling spend window outlasts retention), its uses of each promotion (limits per
card count them; the forgotten receipts' uses fold into one row a card and promotion,
points budgets unchanged); stamps and coupons (a code is used once for ever). A refund of
a receipt that is gone is refused with a clear error (:func:`pruned_before` says since
when receipts are gone).

Pruning runs in batches of :data:`BATCH` receipts, one write transaction each, so a POS
request waits for one batch at most.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, tzinfo

from tillgate.core.clock import local

from . import ledgerfold, meta
from .ledger import parse_ts, ts
from .points import VISIT

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


def prune_batch(
    conn: sqlite3.Connection,
    *,
    before: datetime,
    chain: bool,
    now: datetime,
    timezone: tzinfo | str,
) -> int:
    """Forget up to :data:`BATCH` old receipts (see the module's docstring); how many went.
    ``timezone`` is the till's: a forgotten sale's spend counts by its local day."""
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
        _keep_counts(conn, ids, marks, timezone)
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


def _keep_counts(
    conn: sqlite3.Connection, ids: list[str], marks: str, timezone: tzinfo | str
) -> None:
    """What the rules count of the receipts ``ids``, kept before they go: their cards'
    visits and spend by local day, and their promotion uses folded a card and promotion."""
    days: dict[tuple[str, str], list[int]] = {}
    for card, confirmed_at, kop in conn.execute(
        f"SELECT card, confirmed_at, paid_kop - returned_kop FROM receipts"
        f" WHERE receipt_id IN ({marks}) AND card IS NOT NULL AND {VISIT}",
        ids,
    ):
        day = local(parse_ts(confirmed_at), timezone).date().isoformat()
        counted = days.setdefault((card, day), [0, 0])
        counted[0] += 1
        counted[1] += kop
    conn.executemany(
        "INSERT INTO card_days (card, day, visits, spend_kop) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (card, day) DO UPDATE SET visits = visits + excluded.visits,"
        " spend_kop = spend_kop + excluded.spend_kop",
        [(card, day, n, kop) for (card, day), (n, kop) in days.items()],
    )
    # One row a card and promotion (``#`` + the card: no receipt id starts with ``#``); an
    # upsert's update, not an insert, when the row is there: the budget triggers (schema
    # V13) add its points as the delete takes the forgotten rows'.
    conn.execute(
        "INSERT INTO promotion_uses (receipt_id, promotion_id, card, day, points, uses)"
        " SELECT '#' || COALESCE(card, ''), promotion_id, card, MAX(day), SUM(points),"
        f" SUM(uses) FROM promotion_uses WHERE receipt_id IN ({marks})"
        " GROUP BY card, promotion_id"
        " ON CONFLICT (receipt_id, promotion_id) DO UPDATE SET day = MAX(day, excluded.day),"
        " points = points + excluded.points, uses = uses + excluded.uses",
        ids,
    )
    conn.execute(f"DELETE FROM promotion_uses WHERE receipt_id IN ({marks})", ids)


def pruned_before(conn: sqlite3.Connection) -> datetime | None:
    """The latest cut-off retention has applied (None: it never ran)."""
    value = meta.get(conn, _KEY)
    return None if value is None else parse_ts(value)
