"""The ``meta`` table: small named values of the till (sync state, the coupon key)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

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


def coupon_key(conn: sqlite3.Connection, *, make: Callable[[], bytes]) -> bytes:
    """This till's own coupon signing key, made with ``make`` the first time it is asked for."""
    value = get(conn, COUPON_KEY)
    if value:
        return bytes.fromhex(value)
    key = make()
    put(conn, COUPON_KEY, key.hex())
    return key
