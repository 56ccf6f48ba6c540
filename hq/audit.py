"""The audit log: every change an admin makes to points — who, when, what and why.

Rows are written in the transaction that makes the change, so a change and its audit row
are committed together or not at all. ``actor`` is what authenticated the request (the
admin token); ``operator`` is the person the admin verb names (``X-Tillgate-Operator``:
the user running ``tillgate hq …``), recorded as given.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .db import Database, Tx
from .wire import ts

ADMIN = "admin-token"


def write(
    tx: Tx,
    *,
    action: str,
    subject: str,
    detail: dict[str, Any],
    reason: str,
    operator: str | None,
    now: datetime,
    actor: str = ADMIN,
) -> int:
    """Append one audit row; returns its id."""
    row_id = tx.next_ids("audit")
    tx.execute(
        "INSERT INTO audit (id, at, actor, operator, action, subject, detail, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row_id,
            ts(now),
            actor,
            operator,
            action,
            subject,
            json.dumps(detail, ensure_ascii=False, sort_keys=True),
            reason,
        ),
    )
    return row_id


def rows(db: Database, *, since: datetime | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """The audit log in order, from ``since`` on (all of it: None), at most ``limit`` rows."""
    with db.read() as tx:
        found = tx.all(
            "SELECT id, at, actor, operator, action, subject, detail, reason FROM audit"
            " WHERE at >= ? ORDER BY id LIMIT ?",
            (ts(since) if since else "", limit),
        )
    return [dict(r, id=int(r["id"]), detail=json.loads(r["detail"])) for r in found]
