"""What the till remembers of its head-office sync, and the offline redemption limits.

Sync state lives in the ``meta`` table (:mod:`.meta`) so that the daemon, ``tillgate
sync`` and the POS API (each with its own connection) read one truth:

* ``sync.cursor``        — the change-feed cursor of the last page applied;
* ``sync.last_sync_at``  — when the last *completed* sync (push and pull) ended;
* ``sync.mark_seq``      — the highest ledger seq that sync had pushed: every entry up to it
  is in HQ's view, so "redeemed since the last completed sync" is ``seq > mark_seq``;
* ``sync.last_attempt_at``, ``sync.last_error`` — for ``/v1/status`` and the logs;
* ``sync.snapshot``      — set while a pull of every card (from cursor 0) is under way,
  across restarts: its pages go without the late indexes (``schema.LATE_INDEXES``);
* ``sync.cards_through`` — the change id a card snapshot from head office holds every
  card as of, until the pull after it ends (``sync/snapshot.py``).

The offline limits (``domain.md``, Offline) bound how much one card can overspend across
the chain while tills cannot see each other: each offline till lets a card spend at most
``redeem_per_card`` and all cards ``redeem_per_till`` since its last completed sync, and
nothing at all once ``max_hours`` have passed without one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from tillgate.core.rules.program import OfflinePolicy

from .ledger import parse_ts
from .meta import get

CURSOR = "sync.cursor"
LAST_SYNC = "sync.last_sync_at"
MARK_SEQ = "sync.mark_seq"
LAST_ATTEMPT = "sync.last_attempt_at"
LAST_ERROR = "sync.last_error"
SNAPSHOT = "sync.snapshot"
CARDS_THROUGH = "sync.cards_through"


def last_sync(conn: sqlite3.Connection) -> datetime | None:
    """When the last completed sync ended (None: never)."""
    value = get(conn, LAST_SYNC)
    return parse_ts(value) if value else None


def mark_seq(conn: sqlite3.Connection) -> int:
    value = get(conn, MARK_SEQ)
    return int(value) if value else 0


def is_offline(last: datetime | None, now: datetime, offline_after_seconds: float) -> bool:
    """Offline: no sync completed for ``offline_after_seconds`` (or none ever)."""
    return last is None or now - last >= timedelta(seconds=offline_after_seconds)


@dataclass(frozen=True, kw_only=True)
class OfflineCap:
    """The most points a receipt may redeem offline now, and which limit decides it."""

    points: int
    reason: Literal["max_hours", "per_card", "per_till"]
    policy: OfflinePolicy


def _spent(conn: sqlite3.Connection, *, mark: int, card: str | None, receipt_id: str) -> int:
    """Points redeemed since the mark plus open holds of other receipts (one card or all)."""
    card_sql = "" if card is None else " AND card = :card"
    args = {"mark": mark, "card": card, "receipt": receipt_id}
    redeemed = conn.execute(
        "SELECT COALESCE(-SUM(points), 0) FROM ledger WHERE kind = 'redeem' AND seq > :mark"
        + card_sql,
        args,
    ).fetchone()[0]
    # A hold is a redemption in waiting: two receipts held at once must not each get the cap.
    held = conn.execute(
        "SELECT COALESCE(-SUM(h.points), 0) FROM ledger h WHERE h.kind = 'hold'"
        " AND h.receipt_id IS NOT :receipt"
        " AND NOT EXISTS (SELECT 1 FROM ledger r WHERE r.kind = 'release' AND r.ref = h.id)"
        + card_sql.replace("card", "h.card", 1),
        args,
    ).fetchone()[0]
    return int(redeemed) + int(held)


def offline_cap(
    conn: sqlite3.Connection,
    *,
    policy: OfflinePolicy,
    card: str,
    receipt_id: str,
    now: datetime,
) -> OfflineCap:
    """The offline limit for ``card`` on ``receipt_id`` (its own hold does not count)."""
    last = last_sync(conn)
    if last is None or now - last >= timedelta(hours=policy.max_hours):
        return OfflineCap(points=0, reason="max_hours", policy=policy)
    mark = mark_seq(conn)
    per_card = policy.redeem_per_card - _spent(conn, mark=mark, card=card, receipt_id=receipt_id)
    per_till = policy.redeem_per_till - _spent(conn, mark=mark, card=None, receipt_id=receipt_id)
    if per_till < per_card:
        return OfflineCap(points=max(per_till, 0), reason="per_till", policy=policy)
    return OfflineCap(points=max(per_card, 0), reason="per_card", policy=policy)


def status(conn: sqlite3.Connection) -> dict[str, object]:
    """The sync part of ``/v1/status``: last completed sync, last attempt and its error."""
    last = last_sync(conn)
    attempt = get(conn, LAST_ATTEMPT)
    return {
        "last_sync": last.isoformat() if last else None,
        "last_sync_attempt": parse_ts(attempt).isoformat() if attempt else None,
        "last_sync_error": get(conn, LAST_ERROR) or None,
    }
