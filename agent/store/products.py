"""The ``products`` tables: the till's copy of the product list (``core/products.py``).

Kept in SQLite with indexes, never whole in memory: a chain's list can hold hundreds of
thousands of goods. Three tables: the products by sku, their codes (sku and barcodes) and
their name keys (name and aliases, normalised), so each look-up is one index probe.
The list's version lives in ``meta`` under :data:`VERSION_KEY`.

A list from head office arrives in pages over several transactions (sync/engine.py), yet
the till must never price with half a list. So the pages are kept aside in *staging*
tables (``products_next`` …, made when a download starts and dropped when it ends: they
are scratch space, not part of the schema) and :func:`stage_commit` swaps the whole list
in at once, in one transaction. A download cut off half-way leaves the list in force as it
was, and the next sync goes on from the last page kept (:func:`staged`).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

from tillgate.core.products import Product, normalise_name

from . import meta

_text = json.encoder.encode_basestring  # a str as a JSON string, not ASCII-escaped (C)

VERSION_KEY = "products.version"
WANTED_KEY = "products.wanted"  # the version head office's change feed named
STAGING_KEY = "products.staging"  # JSON {"version", "after", "count"}: a download under way
# Above every other code point: ``key < prefix + _TOP`` bounds a prefix scan on the index.
_TOP = "\U0010ffff"
_CHUNK = 500  # codes or names per query of a batch look-up

_COLUMNS = (
    "p.sku, p.name, p.category, p.barcodes, p.aliases, p.tags, p.no_loyalty, p.age_restricted"
)


def _product(row: tuple[object, ...]) -> Product:
    sku, name, category, barcodes, aliases, tags, no_loyalty, age_restricted = row
    return Product(
        sku=str(sku),
        name=str(name),
        category=str(category),
        barcodes=_list(barcodes),
        aliases=_list(aliases),
        tags=_list(tags),
        no_loyalty=bool(no_loyalty),
        age_restricted=bool(age_restricted),
    )


def _own_first(code: str) -> Callable[[str], tuple[bool, str]]:
    """Sort skus by sku, the one that is ``code`` itself first (a code's own product)."""
    return lambda sku: (sku != code, sku)


def _list(text: object) -> tuple[str, ...]:
    """A stored JSON list of strings; the common forms without the JSON parser (a
    200-line receipt reads 200 products, each with three lists)."""
    raw = str(text)
    if raw == "[]":  # most goods have no aliases or tags
        return ()
    inner = raw[2:-2]
    # What _json writes for strings with nothing to escape: ["a", "b"]. Anything else
    # (an escape, another separator) goes to the parser.
    if raw[:2] == '["' and raw[-2:] == '"]' and "\\" not in inner:
        items = inner.split('", "')
        if not any('"' in item for item in items):
            return tuple(items)
    return tuple(json.loads(raw))


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


def _json(items: tuple[str, ...]) -> str:
    """A list of texts as JSON, as ``json.dumps(list(items), ensure_ascii=False)`` writes it.

    Without json.dumps's set-up for each call: a list of 100,000 goods has as many lists
    of barcodes, and most have no aliases or tags at all.
    """
    if not items:
        return "[]"
    return "[" + ", ".join(map(_text, items)) + "]"


def _row(p: Product) -> tuple[object, ...]:
    return (
        p.sku,
        p.name,
        p.category,
        _json(p.barcodes),
        _json(p.aliases),
        _json(p.tags),
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


def clear(conn: sqlite3.Connection) -> None:
    """No product list at all (a standalone shop that stopped naming a file)."""
    for table in ("product_codes", "product_names", "products"):
        conn.execute(f"DELETE FROM {table}")
    set_version(conn, None)


# ---------------------------------------------------------------- staging a download

_LIVE = ("products", "product_codes", "product_names")
_STAGING = tuple(f"{t}_next" for t in _LIVE)
_PRODUCT_COLUMNS = "sku, name, category, barcodes, aliases, tags, no_loyalty, age_restricted"
_CREATE = re.compile(r'^\s*CREATE\s+TABLE\s+"?(\w+)"?', re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class Staged:
    """A download under way: the version, the position of its last page kept, its size."""

    version: str
    after: int
    count: int


def wanted(conn: sqlite3.Connection) -> str | None:
    """The version head office last named (None: it never named one)."""
    return meta.get(conn, WANTED_KEY)


def set_wanted(conn: sqlite3.Connection, version: str | None) -> None:
    meta.put(conn, WANTED_KEY, version)


def staged(conn: sqlite3.Connection) -> Staged | None:
    raw = meta.get(conn, STAGING_KEY)
    if raw is None:
        return None
    kept = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'products_next'"
    if conn.execute(kept).fetchone() is None:
        return None  # the tables went (a restored file): begun again from the start
    try:
        data = json.loads(raw)
        return Staged(
            version=str(data["version"]), after=int(data["after"]), count=int(data["count"])
        )
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: begun again from the start


def stage_begin(conn: sqlite3.Connection, *, version: str, count: int) -> Staged:
    """Start keeping the pages of ``version`` aside (anything kept before is dropped).

    The staging tables are made from the live tables' own definitions (whatever columns a
    later schema gives them), without their secondary indexes: those are built once, at
    :func:`stage_commit`, not kept up to date row by row.
    """
    stage_drop(conn)
    for table in _LIVE:
        row = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        conn.execute(_CREATE.sub(f"CREATE TABLE {table}_next", str(row[0]), count=1))
    return _put_staged(conn, Staged(version=version, after=0, count=count))


def _put_staged(conn: sqlite3.Connection, state: Staged) -> Staged:
    meta.put(
        conn,
        STAGING_KEY,
        json.dumps({"version": state.version, "after": state.after, "count": state.count}),
    )
    return state


def stage(
    conn: sqlite3.Connection, state: Staged, products: Iterable[Product], *, after: int
) -> Staged:
    """Keep one page aside (codes and name keys made here, a page at a time).

    Each table's rows go in in key order: the B-tree is then filled page by page rather
    than all over, which is most of what writing a big list costs.
    """
    batch = list(products)
    conn.executemany(
        f"INSERT OR REPLACE INTO products_next ({_PRODUCT_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        sorted(map(_row, batch)),
    )
    # The keys of Product.name_keys, made here without its per-product list and dict.
    codes = sorted({(c, p.sku) for p in batch for c in (p.sku, *p.barcodes) if c})
    names = sorted(
        {(k, p.sku) for p in batch for k in map(normalise_name, (p.name, *p.aliases)) if k}
    )
    conn.executemany("INSERT OR IGNORE INTO product_codes_next (code, sku) VALUES (?, ?)", codes)
    conn.executemany("INSERT OR IGNORE INTO product_names_next (key, sku) VALUES (?, ?)", names)
    return _put_staged(conn, Staged(version=state.version, after=after, count=state.count))


def stage_commit(conn: sqlite3.Connection, state: Staged) -> int:
    """Put the staged list in force whole, as ``state.version``; returns its size.

    StoreError-free by design: a staged list whose size is not the one head office named
    (a page lost, or one too many) is refused with ValueError and nothing changes.
    """
    n = int(conn.execute("SELECT count(*) FROM products_next").fetchone()[0])
    if n != state.count:
        raise ValueError(
            f"product list version {state.version}: {n} products arrived, head office "
            f"said {state.count}"
        )
    # The staged tables become the live ones by name: nothing is copied. The live tables'
    # indexes are made again, by their own definitions, on the new ones.
    indexes = [
        str(r[0])
        for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({', '.join('?' * len(_LIVE))})",
            _LIVE,
        )
    ]
    for table in _LIVE:
        conn.execute(f"DROP TABLE {table}")
    for table in _LIVE:
        conn.execute(f"ALTER TABLE {table}_next RENAME TO {table}")
    for sql in indexes:
        conn.execute(sql)
    meta.put(conn, STAGING_KEY, None)
    set_version(conn, state.version)
    return n


def stage_drop(conn: sqlite3.Connection) -> None:
    """Forget a download under way (its tables go with it)."""
    for table in _STAGING:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    meta.put(conn, STAGING_KEY, None)


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

    def by_name_prefix(self, key: str, *, limit: int = 2) -> list[Product]:
        if not key:
            return []
        # The first ``limit`` skus in key order, then their rows: a short prefix that
        # thousands of names share stops after two of them (sorting them all by sku, as a
        # join with ORDER BY p.sku would, took a fifth of a second on 100,000 goods).
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM products p WHERE p.sku IN (SELECT DISTINCT sku"
            " FROM product_names WHERE key >= ? AND key < ? LIMIT ?) ORDER BY p.sku",
            (key, key + _TOP, limit),
        )
        return [_product(r) for r in rows]

    def by_codes(self, codes: Collection[str], *, limit: int = 2) -> dict[str, list[Product]]:
        # One query for all the receipt's codes, one for the rows of the first ``limit``
        # products of each (the code's own product first). One query per line took twice
        # as long on 200 lines; joining the rows in, or passing the codes as a JSON list
        # (json_each), took longer still when a name 200 goods share was among them; a
        # window function picking the first two in SQL, longer than the whole look-up.
        return self._many("SELECT code, sku FROM product_codes WHERE code IN ({})", codes, limit)

    def by_names(self, keys: Collection[str], *, limit: int = 2) -> dict[str, list[Product]]:
        return self._many(
            "SELECT key, sku FROM product_names WHERE key IN ({})", [k for k in keys if k], limit
        )

    def _many(self, sql: str, wanted: Collection[str], limit: int) -> dict[str, list[Product]]:
        skus: dict[str, list[str]] = {}
        for got, sku in self._in(sql, list(wanted)):
            skus.setdefault(str(got), []).append(str(sku))
        for got, found in skus.items():
            found.sort(key=_own_first(got))
            del found[limit:]
        keep = list(dict.fromkeys(s for found in skus.values() for s in found))
        rows = {
            str(r[0]): _product(r)
            for r in self._in(f"SELECT {_COLUMNS} FROM products p WHERE p.sku IN ({{}})", keep)
        }
        return {got: [rows[s] for s in found] for got, found in skus.items()}

    def _in(self, sql: str, values: list[str]) -> Iterator[tuple[object, ...]]:
        """Rows of ``sql`` (its ``IN ({})`` filled with ``values``) as plain tuples, in
        chunks below SQLite's oldest limit on variables (999): a basket has up to 1,000."""
        cursor = self._conn.cursor()
        cursor.row_factory = None  # plain tuples: a receipt reads hundreds of rows
        for k in range(0, len(values), _CHUNK):
            chunk = values[k : k + _CHUNK]
            yield from cursor.execute(sql.format(",".join("?" * len(chunk))), chunk)
