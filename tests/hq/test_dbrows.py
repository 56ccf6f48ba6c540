"""Tx.tuples (hq/dbrows.py): the rows :meth:`Tx.all` reads, as tuples in column order, on
SQLite and PostgreSQL (through psycopg's raw cursor there: ``$1``, ``$2``…)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tillgate.core.errors import StoreError
from tillgate.hq.db import marks, open_database
from tillgate.hq.dbrows import _numbered


def test_tuples_are_alls_rows_in_column_order(db_url: str, tmp_path: Path) -> None:
    db = open_database(db_url, data_dir=tmp_path)
    keys = [f"k{i:03d}" for i in range(120)]  # past psycopg's 50 parameters it caches
    try:
        with db.write() as tx:
            tx.many(
                "INSERT INTO meta (key, value) VALUES (?, ?)", [(k, f"{k}'s %s ?") for k in keys]
            )
        with db.read() as tx:
            sql = f"SELECT value, key FROM meta WHERE key IN ({marks(len(keys))}) ORDER BY key"
            got = tx.tuples(sql, keys)
            assert got == [(r["value"], r["key"]) for r in tx.all(sql, keys)]
            assert got[0] == ("k000's %s ?", "k000") and all(type(r) is tuple for r in got)
            # Queued first on PostgreSQL (the BEGIN, a statement read later): sent before it.
            later = tx.ahead("SELECT COUNT(*) AS n FROM meta WHERE key LIKE ?", ["k%"])
            assert tx.tuples("SELECT key FROM meta WHERE key = ?", ["k007"]) == [("k007",)]
            assert later.scalar() == len(keys)
            assert tx.tuples("SELECT key FROM meta WHERE key = ?", ["none"]) == []
    finally:
        db.close()


def test_a_failed_read_is_a_store_error(db_url: str, tmp_path: Path) -> None:
    db = open_database(db_url, data_dir=tmp_path)
    try:
        with pytest.raises(StoreError), db.read() as tx:
            tx.tuples("SELECT nothing FROM meta WHERE key = ?", ["k"])
    finally:
        db.close()


def test_placeholders_are_numbered_in_order() -> None:
    assert _numbered("SELECT ? , ? FROM t WHERE a IN (?, ?)") == (
        "SELECT $1 , $2 FROM t WHERE a IN ($3, $4)"
    )
    assert _numbered("SELECT 1") == "SELECT 1"
