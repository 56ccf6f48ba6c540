"""The ``facts`` table: what the till saw and decided for each receipt, for head office.

One row per confirmed receipt (``sale:<receipt_id>``) and per refund
(``refund:<refund_id>``), written in the same transaction as the receipt's ledger entries,
so a receipt is in the ledger with its facts or not at all. ``after_seq`` is the ledger's
last seq at that moment: the outbox sends a fact only once every entry up to it has been
sent, so head office always has a receipt's entries when its facts arrive (the same
per-till order). A fact is marked synced once head office has stored it; it is sent once
more after a lost reply, and head office keeps the first copy (the id is its key). A
synced fact is head office's from then on and the till deletes it (its body is most of a
receipt's bytes); a confirm or a refund is made once (their own tables say so), so a
fact is never written twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tillgate.core.rules.facts import FACTS_VERSION

from . import outbox
from .ledger import parse_ts, ts


def add(
    conn: sqlite3.Connection,
    *,
    kind: str,
    key: str,
    receipt_id: str,
    body: Mapping[str, Any],
    now: datetime,
) -> str:
    """Record one receipt's (or refund's) facts; returns the fact's id. Idempotent."""
    fact_id = f"{kind}:{key}"
    conn.execute(
        "INSERT OR IGNORE INTO facts (id, kind, receipt_id, after_seq, body, created_at)"
        " VALUES (?,?,?,?,?,?)",
        (
            fact_id,
            kind,
            receipt_id,
            outbox.last_seq(conn),
            json.dumps({"v": FACTS_VERSION, **body}, ensure_ascii=False, sort_keys=True),
            ts(now),
        ),
    )
    return fact_id


def unsynced(conn: sqlite3.Connection, *, through_seq: int, limit: int) -> list[dict[str, Any]]:
    """Facts not yet at head office whose entries are (up to ``through_seq``), oldest first."""
    rows = conn.execute(
        "SELECT id, kind, receipt_id, after_seq, body, created_at FROM facts"
        " WHERE synced_at IS NULL AND after_seq <= ? ORDER BY after_seq, created_at, id LIMIT ?",
        (through_seq, limit),
    ).fetchall()
    return [
        {
            "id": r["id"],
            "kind": r["kind"],
            "receipt_id": r["receipt_id"],
            "after_seq": r["after_seq"],
            "created_at": parse_ts(r["created_at"]).isoformat(),
            "body": json.loads(r["body"]),
        }
        for r in rows
    ]


def backlog(conn: sqlite3.Connection) -> int:
    """Facts not yet at head office."""
    return int(conn.execute("SELECT COUNT(*) FROM facts WHERE synced_at IS NULL").fetchone()[0])


def mark_synced(conn: sqlite3.Connection, ids: Sequence[str], *, now: datetime) -> int:
    """Head office stored these facts: the till forgets them."""
    del now  # kept for the caller's sake: the facts go, and their dates with them
    return sum(
        conn.execute("DELETE FROM facts WHERE id = ? AND synced_at IS NULL", (i,)).rowcount
        for i in ids
    )
