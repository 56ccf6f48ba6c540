"""The ``program`` table: the loyalty program in force on this till (one row).

A standalone till writes it from its program file, a chain's till from head office's
change feed; the use cases read it back (and rebuild their catalog) when its version
changes.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from .ledger import ts


def version(conn: sqlite3.Connection) -> str | None:
    """The version in force (None: no program yet)."""
    row = conn.execute("SELECT version FROM program WHERE id = 1").fetchone()
    return None if row is None else str(row[0])


def body(conn: sqlite3.Connection) -> str | None:
    """The program in force as validated JSON (None: no program yet)."""
    row = conn.execute("SELECT body FROM program WHERE id = 1").fetchone()
    return None if row is None else str(row[0])


def install(conn: sqlite3.Connection, *, version: str, body: str, now: datetime) -> None:
    """Put a validated program (its JSON) in force, replacing the one before."""
    conn.execute(
        "INSERT INTO program (id, version, body, loaded_at) VALUES (1, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET version = excluded.version,"
        " body = excluded.body, loaded_at = excluded.loaded_at",
        (version, body, ts(now)),
    )
