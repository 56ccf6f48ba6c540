"""Head office's settings an admin changes at run time (``tillgate hq settings set KEY N``).

Each key has a type, a range and a default; the ``settings`` table holds what an admin set,
and every change is audited with its value before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tillgate.core.errors import InvalidRequest, NotFound

from . import audit
from .db import Database, Tx
from .wire import MAX_ADJUST, ts


@dataclass(frozen=True)
class Setting:
    """One setting: what it does, its default and its range (whole numbers)."""

    what: str
    default: int
    low: int
    high: int


SUPPORT_ADJUST_LIMIT = "support-adjust-limit"
SETTINGS: dict[str, Setting] = {
    SUPPORT_ADJUST_LIMIT: Setting(
        "the most points (credit or debit) one adjust by the support role may move",
        500,
        0,
        MAX_ADJUST,
    ),
}


def _setting(key: str) -> Setting:
    found = SETTINGS.get(key)
    if found is None:
        raise NotFound(f"no setting {key!r}; settings: {', '.join(SETTINGS)}")
    return found


def get(tx: Tx, key: str) -> int:
    """The value in force: what an admin set, else the default."""
    setting = _setting(key)
    value = tx.scalar("SELECT value FROM settings WHERE key = ?", (key,))
    return setting.default if value is None else int(value)


def listing(db: Database) -> list[dict[str, Any]]:
    with db.read() as tx:
        rows = {r["key"]: r for r in tx.all("SELECT * FROM settings")}
    return [
        {
            "key": key,
            "value": int(rows[key]["value"]) if key in rows else s.default,
            "default": s.default,
            "what": s.what,
            "updated_at": rows[key]["updated_at"] if key in rows else None,
            "updated_by": rows[key]["updated_by"] if key in rows else None,
        }
        for key, s in SETTINGS.items()
    ]


def put(
    db: Database, key: str, value: Any, *, operator: str | None, now: datetime
) -> dict[str, Any]:
    """Set ``key`` to ``value`` (a whole number in its range), with an audit row."""
    setting = _setting(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"value: {key} takes a whole number")
    if not setting.low <= value <= setting.high:
        raise InvalidRequest(f"value: {key} must be between {setting.low} and {setting.high}")
    by = audit.current().name
    with db.write() as tx:
        before = get(tx, key)
        tx.execute(
            "INSERT INTO settings (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (key, str(value), ts(now), by),
        )
        audit.write(
            tx,
            action="setting.set",
            subject=key,
            detail={"value": value},
            reason="",
            operator=operator,
            now=now,
            before={"value": before},
            after={"value": value},
        )
    return {"key": key, "value": value, "previous": before}
