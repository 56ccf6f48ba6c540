"""The audit log: every change made at head office — who, in which role, when, what, why.

One row per change: ``at, actor, role, action, target, before, after`` (``before`` and
``after``: what the change changed, JSON; ``None`` where there was nothing), with the
request's ``detail`` and ``reason``. Rows are written in the transaction that makes the
change, so a change and its audit row are committed together or not at all.

``actor`` is what authenticated the request: a user's name (a signed-in person), ``token:ID``
(a script's token) or ``admin-token`` (the token ``hq serve`` made); ``role`` its role.
``operator`` is the person the admin verb names (``X-Tillgate-Operator``: ``user@host`` of
whoever ran ``tillgate hq …``), recorded as given.

Who acts is set once per request by the guard (:func:`acting`) and read here, so the use
cases that write audit rows (:mod:`tillgate.hq.corrections`, :mod:`tillgate.hq.admin`) need
no parameter for it. A context variable, not a global: each request runs in its own task,
whose context the worker thread it hands work to inherits.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .db import Database, Tx
from .wire import ts

ADMIN = "admin-token"


@dataclass(frozen=True)
class Actor:
    """Who makes the changes of the current request."""

    name: str
    role: str


_BOOTSTRAP = Actor(ADMIN, "admin")
_acting: ContextVar[Actor] = ContextVar("tillgate_hq_actor", default=_BOOTSTRAP)


def acting(name: str, role: str) -> None:
    """Say who makes the changes of the current request (the guard calls this)."""
    _acting.set(Actor(name, role))


def current() -> Actor:
    return _acting.get()


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _derived(action: str, detail: dict[str, Any]) -> tuple[Any, Any]:
    """Before and after of the changes whose writers only give a detail."""
    if action == "card.adjust" and {"balance", "points"} <= detail.keys():
        return {"balance": detail["balance"] - detail["points"]}, {"balance": detail["balance"]}
    if action in ("flag.release", "flag.reject"):
        after = "released" if action == "flag.release" else "rejected"
        return {"status": "open"}, {"status": after}
    return None, None


def write(
    tx: Tx,
    *,
    action: str,
    subject: str,
    detail: dict[str, Any],
    reason: str,
    operator: str | None,
    now: datetime,
    actor: str | None = None,
    role: str | None = None,
    before: Any = None,
    after: Any = None,
) -> int:
    """Append one audit row; returns its id. ``actor``/``role``: the request's by default."""
    who = current()
    if before is None and after is None:
        before, after = _derived(action, detail)
    row_id = tx.next_ids("audit")
    tx.execute(
        "INSERT INTO audit (id, at, actor, role, operator, action, subject, detail, reason,"
        " state_before, state_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row_id,
            ts(now),
            actor or who.name,
            role or who.role,
            operator,
            action,
            subject,
            _dump(detail),
            reason,
            _dump(before),
            _dump(after),
        ),
    )
    return row_id


def rows(db: Database, *, since: datetime | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """The audit log in order, from ``since`` on (all of it: None), at most ``limit`` rows.

    ``target`` is what the change was made to; ``subject``, the same, is kept for scripts
    written before it had that name.
    """
    with db.read() as tx:
        found = tx.all(
            "SELECT id, at, actor, role, operator, action, subject, detail, reason,"
            " state_before, state_after FROM audit WHERE at >= ? ORDER BY id LIMIT ?",
            (ts(since) if since else "", limit),
        )
    return [
        {
            "id": int(r["id"]),
            "at": r["at"],
            "actor": r["actor"],
            # Rows from before roles were all the admin token's.
            "role": r["role"] or "admin",
            "action": r["action"],
            "target": r["subject"],
            "before": _load(r["state_before"]),
            "after": _load(r["state_after"]),
            "operator": r["operator"],
            "reason": r["reason"],
            "subject": r["subject"],
            "detail": json.loads(r["detail"]),
        }
        for r in found
    ]


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
