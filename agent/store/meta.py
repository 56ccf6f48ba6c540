"""The ``meta`` table: small named values of the till (sync state, the program's state).

No secret lives here. A standalone till kept its coupon key under ``coupon_key`` before
keys moved to their own files; :func:`take_coupon_key` takes it out, once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

COUPON_KEY = "coupon_key"


def get(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def put(conn: sqlite3.Connection, key: str, value: str | int | None) -> None:
    """Set (or, with None, forget) one meta value inside the caller's write transaction."""
    if value is None:
        conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        return
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, str(value)),
    )


def take_coupon_key(conn: sqlite3.Connection, keep: Callable[[bytes], object]) -> bool:
    """Move an old install's coupon key out of the data file: ``keep`` stores it elsewhere
    (a key file), then the row is deleted and its bytes overwritten on disk; the caller's
    write transaction commits both or neither. True if there was one."""
    value = get(conn, COUPON_KEY)
    if value is None:
        return False
    if value:
        keep(bytes.fromhex(value))
    # secure_delete: the freed cell is zeroed, so the key is not left in the file's pages.
    conn.execute("PRAGMA secure_delete = ON")
    try:
        put(conn, COUPON_KEY, None)
    finally:
        conn.execute("PRAGMA secure_delete = OFF")
    return True


KEYS_FOLDER = "keys"


def keys_folder(conn: sqlite3.Connection) -> Path | None:
    """The till's coupon key folder: ``keys`` beside its data file (None in memory)."""
    for row in conn.execute("PRAGMA database_list").fetchall():
        if row[1] == "main" and row[2]:
            return Path(row[2]).parent / KEYS_FOLDER
    return None
