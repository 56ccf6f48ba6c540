"""The ``product_misses`` table: line names no product (or rule) gave a category.

A name is *unmatched* when nothing told its category, *ambiguous* when it named two
products (core/productmatch.py). Each is kept once per normalised name with how many
receipts showed it and the product list's version it was last seen with, so
``/v1/status`` counts the names the list in force still misses; head office learns the same
from each receipt's facts (the ``match`` of every input line).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime

from tillgate.core.products import Match, normalise_name

from .ledger import ts

MISSES: tuple[Match, ...] = ("unmatched", "ambiguous")


def record(
    conn: sqlite3.Connection,
    misses: Iterable[tuple[str, Match]],
    *,
    receipt_id: str,
    products_version: str | None,
    now: datetime,
) -> None:
    """Count the (name, match) misses of one receipt, inside the caller's transaction.

    A receipt calculated again (the POS re-prices as items are scanned) counts once.
    """
    at = ts(now)
    seen: set[tuple[str, str]] = set()
    for name, match in misses:
        if match not in MISSES:
            continue  # (most lines: no name to normalise)
        key = normalise_name(name) or name.strip()
        if not key or (key, match) in seen:
            continue
        seen.add((key, match))
        conn.execute(
            "INSERT INTO product_misses (key, match, name, receipts, products_version,"
            " last_receipt, first_seen, last_seen) VALUES (?, ?, ?, 1, ?, ?, ?, ?)"
            " ON CONFLICT (key, match) DO UPDATE SET name = excluded.name,"
            " receipts = receipts + (last_receipt IS NOT excluded.last_receipt),"
            " products_version = excluded.products_version,"
            " last_receipt = excluded.last_receipt, last_seen = excluded.last_seen",
            (key, match, name[:256], products_version, receipt_id, at, at),
        )


def counts(conn: sqlite3.Connection, products_version: str | None) -> dict[str, int]:
    """How many names each kind of miss has under the product list in force."""
    rows = conn.execute(
        "SELECT match, COUNT(*) FROM product_misses WHERE products_version IS ? GROUP BY match",
        (products_version,),
    )
    got = {str(r[0]): int(r[1]) for r in rows}
    return {m: got.get(m, 0) for m in MISSES}
