"""Rows as tuples, for the few reads where a dict a row is a cost (:meth:`.db.Tx.tuples`).

:meth:`.db.Tx.all` gives each row as a dict by column name: clear, and right for nearly
every statement. A change page of a thousand cards read them at two dicts a row (the
connection's row factory, then a copy), a tenth of head office's CPU for a first start.
Here the same statement gives plain tuples in its column order: on SQLite from a cursor of
its own without the connection's row factory, on PostgreSQL from psycopg's ``tuple_row``.

On PostgreSQL the statement's ``?`` become ``$1``, ``$2``… for psycopg's raw cursor: its
usual ``%s`` are parsed in Python, a regular expression match each, and a statement of
more than 50 parameters is parsed again at every call (not cached): an ``IN`` list of 500
card numbers cost more than the rows it read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import suppress
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .dberrors import translate

if TYPE_CHECKING:
    from .db import Tx


def tuples(tx: Tx, conn: Any, sql: str, params: Sequence[Any] | None) -> list[tuple[Any, ...]]:
    """``sql``'s rows in ``tx`` (on ``conn``, its connection) as tuples; errors as
    :meth:`.db.Tx.all` gives them."""
    args = tuple(params or ())
    try:
        if tx.dialect == "sqlite":
            cursor = conn.cursor()
            cursor.row_factory = None  # the connection's makes dicts
            return list(cursor.execute(sql, args).fetchall())
        from psycopg import RawCursor
        from psycopg.rows import tuple_row

        tx.wrote = tx.sent = True
        tx.flush()  # what waits (the BEGIN) goes first
        with RawCursor(conn, row_factory=tuple_row) as cur:
            return list(cur.execute(_numbered(sql), args).fetchall())
    except Exception as exc:
        raise translate(exc, "database statement failed") from exc


def _numbered(sql: str) -> str:
    """``sql``'s ``?`` as PostgreSQL's own ``$1``, ``$2``… (no statement of ours holds a
    literal ``?``, as :func:`.db._pg_sql` relies on too)."""
    pieces = sql.split("?")
    return "".join(f"{p}${n}" for n, p in enumerate(pieces[:-1], 1)) + pieces[-1]


_ARRAY_PARAM = re.compile(r"\?(::\w+\[\])")


@lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """``sql`` with psycopg's placeholders for its usual cursor: ``?`` as ``%s``, and an
    array parameter (``?::text[]``) as ``%b``, in binary: as text psycopg would quote each
    element in Python (0.38 ms a statement for 500 card numbers, 0.18 in binary). No
    statement of ours holds a literal ``?`` or ``%``, so a plain substitution is exact."""
    return _ARRAY_PARAM.sub(r"%b\1", sql.replace("%", "%%")).replace("?", "%s")


def column_types(tx: Tx, table: str, columns: Sequence[str]) -> list[int | str]:
    """PostgreSQL: the type (oid) of each of a table's ``columns``, for a ``COPY`` in
    binary: no value escaped or parsed as text (1M cards' 15 columns: 1.15 → 0.8 s of head
    office's CPU). A column the table does not have: ``text`` (the ``COPY`` then names it)."""
    types = {
        r["attname"]: r["atttypid"]
        for r in tx.all(
            "SELECT attname, CAST(atttypid AS BIGINT) AS atttypid FROM pg_attribute"
            " WHERE attrelid = CAST(? AS regclass) AND attname = ANY(?) AND attnum > 0",
            (table, list(columns)),
        )
    }
    return [types.get(c, "text") for c in columns]


def prefer_lz4(conn: Any) -> None:
    """Have a new PostgreSQL connection compress values too long for a row (a receipt's
    facts, ≈ 2.5 KB each) with lz4 rather than the server's default pglz: a push's facts
    are written with ≈ 0.6× the server's CPU and read back faster, about as small
    (docs/performance.md, "scale: where the time goes", ingest). Only over pglz (never over
    a DBA's other choice) and only where the server has lz4 (PostgreSQL 14 on, built with
    it); elsewhere nothing changes."""
    import psycopg

    with suppress(psycopg.Error):
        conn.execute(
            "SELECT set_config('default_toast_compression', 'lz4', false)"
            " WHERE current_setting('default_toast_compression', true) = 'pglz'"
        )
