"""A product list kept aside and swapped in whole: the live tables are never half of one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tillgate.agent.store import products as store_products
from tillgate.agent.store.db import Database
from tillgate.core.products import Product

MILK = Product(sku="A-1", name="Молоко", category="dairy", barcodes=("4600000000011",))
BREAD = Product(sku="A-2", name="Хлеб бородинский", category="bakery", aliases=("Бородинский",))


def schema(db: Database) -> list[tuple[str, str, str]]:
    with db.read() as conn:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ).fetchall()
    # SQLite quotes a renamed table's name in its stored definition; nothing else differs.
    return sorted((r[0], r[1], re.sub('"', "", r[2] or "")) for r in rows)


def test_a_swapped_in_list_leaves_the_schema_as_a_fresh_file_has_it(tmp_path: Path) -> None:
    db, fresh = Database(tmp_path / "a.sqlite3"), Database(tmp_path / "b.sqlite3")
    try:
        for version, goods in (("1", [MILK]), ("2", [MILK, BREAD]), ("3", [BREAD])):
            with db.write() as conn:
                state = store_products.stage_begin(conn, version=version, count=len(goods))
                state = store_products.stage(conn, state, goods, after=len(goods))
                assert store_products.stage_commit(conn, state) == len(goods)
        assert schema(db) == schema(fresh)
        with db.read() as conn:
            lookup = store_products.SqliteProducts(conn)
            assert lookup.version == "3" and store_products.count(conn) == 1
            assert lookup.by_codes(["4600000000011"]) == {}
            found = lookup.by_names(["бородинский"], limit=10**6)
            assert [p.sku for p in found["бородинский"]] == ["A-2"]
            assert store_products.staged(conn) is None
    finally:
        db.close()
        fresh.close()


def test_pages_kept_aside_do_not_touch_the_list_in_force(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.sqlite3")
    try:
        with db.write() as conn:
            store_products.replace_all(conn, [MILK], version="1")
            state = store_products.stage_begin(conn, version="2", count=2)
            store_products.stage(conn, state, [BREAD], after=1)
        with db.read() as conn:
            assert store_products.SqliteProducts(conn).version == "1"
            assert store_products.categories(conn) == {"dairy"}
            kept = store_products.staged(conn)
        assert kept == store_products.Staged(version="2", after=1, count=2)
        # One page short of what head office named: refused, nothing changes.
        with db.write() as conn, pytest.raises(ValueError, match="1 products arrived"):
            store_products.stage_commit(conn, kept)
        with db.read() as conn:
            assert store_products.categories(conn) == {"dairy"}
        with db.write() as conn:
            store_products.stage_drop(conn)
        with db.read() as conn:
            assert store_products.staged(conn) is None
            assert store_products.SqliteProducts(conn).version == "1"
    finally:
        db.close()


def test_a_staging_record_without_its_tables_is_begun_again(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.sqlite3")
    try:
        with db.write() as conn:
            store_products.stage_begin(conn, version="2", count=2)
            conn.execute("DROP TABLE products_next")  # as a file restored from elsewhere
        with db.read() as conn:
            assert store_products.staged(conn) is None
        with db.write() as conn:
            store_products.clear(conn)
            assert store_products.SqliteProducts(conn).version is None
    finally:
        db.close()
