"""The ``products`` tables: the till's copy of the product list (``core/products.py``).

Kept in SQLite with indexes, never whole in memory: a chain's list can hold hundreds of
thousands of goods. Three tables: the products by sku, their codes (sku and barcodes) and
their name keys (name and aliases, normalised), so each look-up is one index probe.
The list's version lives in ``meta`` under :data:`VERSION_KEY`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from tillgate.core.products import Product

from . import meta

VERSION_KEY = "products.version"
# Above every other code point: ``key < prefix + _TOP`` bounds a prefix scan on the index.
_TOP = "\U0010ffff"

_COLUMNS = (
    "p.sku, p.name, p.category, p.barcodes, p.aliases, p.tags, p.no_loyalty, p.age_restricted"
)


def _product(row: tuple[object, ...]) -> Product:
    sku, name, category, barcodes, aliases, tags, no_loyalty, age_restricted = row
    return Product(
        sku=str(sku),
        name=str(name),
        category=str(category),
        barcodes=tuple(json.loads(str(barcodes))),
        aliases=tuple(json.loads(str(aliases))),
        tags=tuple(json.loads(str(tags))),
        no_loyalty=bool(no_loyalty),
        age_restricted=bool(age_restricted),
    )


def upsert(conn: sqlite3.Connection, products: Iterable[Product]) -> int:
    """Add or replace products (by sku) with their codes and name keys; returns how many."""
    n = 0
    batch: list[Product] = []
    for p in products:
        batch.append(p)
        n += 1
        if len(batch) >= 5000:
            _write(conn, batch)
            batch = []
    if batch:
        _write(conn, batch)
    return n


def _row(p: Product) -> tuple[object, ...]:
    return (
        p.sku,
        p.name,
        p.category,
        json.dumps(list(p.barcodes), ensure_ascii=False),
        json.dumps(list(p.aliases), ensure_ascii=False),
        json.dumps(list(p.tags), ensure_ascii=False),
        int(p.no_loyalty),
        int(p.age_restricted),
    )


def _write(conn: sqlite3.Connection, batch: list[Product]) -> None:
    skus = [(p.sku,) for p in batch]
    conn.executemany("DELETE FROM product_codes WHERE sku = ?", skus)
    conn.executemany("DELETE FROM product_names WHERE sku = ?", skus)
    conn.executemany(
        "INSERT INTO products (sku, name, category, barcodes, aliases, tags, no_loyalty,"
        " age_restricted) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sku) DO UPDATE SET"
        " name = excluded.name, category = excluded.category, barcodes = excluded.barcodes,"
        " aliases = excluded.aliases, tags = excluded.tags, no_loyalty = excluded.no_loyalty,"
        " age_restricted = excluded.age_restricted",
        [_row(p) for p in batch],
    )
    codes: list[tuple[str, str]] = []
    names: list[tuple[str, str]] = []
    for p in batch:
        codes.extend((c, p.sku) for c in dict.fromkeys((p.sku, *p.barcodes)) if c)
        names.extend((k, p.sku) for k in p.name_keys())
    conn.executemany("INSERT OR IGNORE INTO product_codes (code, sku) VALUES (?, ?)", codes)
    conn.executemany("INSERT OR IGNORE INTO product_names (key, sku) VALUES (?, ?)", names)


def delete(conn: sqlite3.Connection, skus: Iterable[str]) -> None:
    """Forget products by sku (codes and name keys too)."""
    keys = [(s,) for s in skus]
    for table in ("product_codes", "product_names", "products"):
        conn.executemany(f"DELETE FROM {table} WHERE sku = ?", keys)


def replace_all(conn: sqlite3.Connection, products: Iterable[Product], *, version: str) -> int:
    """Make the list exactly ``products`` at ``version``, inside the caller's transaction."""
    for table in ("product_codes", "product_names", "products"):
        conn.execute(f"DELETE FROM {table}")
    n = upsert(conn, products)
    set_version(conn, version)
    return n


def set_version(conn: sqlite3.Connection, version: str | None) -> None:
    meta.put(conn, VERSION_KEY, version)


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM products").fetchone()[0])


def categories(conn: sqlite3.Connection) -> set[str]:
    """Every category some product of the list has."""
    return {str(r[0]) for r in conn.execute("SELECT DISTINCT category FROM products")}


class SqliteProducts:
    """:class:`tillgate.core.products.ProductLookup` over one open connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._version: str | None = meta.get(conn, VERSION_KEY)

    @property
    def version(self) -> str | None:
        return self._version

    def by_code(self, code: str) -> list[Product]:
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM product_codes c JOIN products p ON p.sku = c.sku"
            " WHERE c.code = ? ORDER BY p.sku",
            (code,),
        )
        return [_product(r) for r in rows]

    def by_name(self, key: str) -> list[Product]:
        if not key:
            return []
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM product_names n JOIN products p ON p.sku = n.sku"
            " WHERE n.key = ? ORDER BY p.sku",
            (key,),
        )
        return [_product(r) for r in rows]

    def by_name_prefix(self, key: str, *, limit: int = 2) -> list[Product]:
        if not key:
            return []
        rows = self._conn.execute(
            f"SELECT DISTINCT {_COLUMNS} FROM product_names n"
            " JOIN products p ON p.sku = n.sku"
            " WHERE n.key >= ? AND n.key < ? ORDER BY p.sku LIMIT ?",
            (key, key + _TOP, limit),
        )
        return [_product(r) for r in rows]
