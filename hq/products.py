"""The product list at head office: imported whole, versioned apart from the program, paged
to tills, and the names tills could not match.

* **Import** (``POST /v1/admin/products``, ``tillgate hq products import``): the CSV is
  validated whole by the tills' own reader (:mod:`tillgate.core.productfile`); a good one
  replaces the list in one transaction with its audit row and a new version, and moves the
  ``products`` change so that every till hears of it on its next pull. The same goods
  imported again (same content digest) make no new version: no till downloads anything.
* **Feed**: a change page names the version (:func:`announce`); a till whose list is not that
  version downloads it in pages by position (:func:`page`, ``GET /v1/sync/products``), keeps
  them aside and puts the whole list in force at once (docs/sync-protocol.md, "Product list").
  Only the list in force is kept here: a till asking for an older version is told the
  current one (404 with ``version``) and starts again.
* **Unmatched** (``GET /v1/admin/products/unmatched``): the names of sold lines that no
  product, name or rule matched, counted from the receipt facts head office already stores
  (each input line's ``match``; facts from before it are counted as ``unknown``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from tillgate.core.errors import InvalidProducts, InvalidRequest, NotFound, ProductsError
from tillgate.core.productfile import COLUMNS, ProductFile, parse_products_csv
from tillgate.core.products import Product

from . import audit
from .db import Database, Row, Tx
from .ledger import add_changes
from .wire import ts

logger = logging.getLogger(__name__)

CHANGE_KIND = "products"
DEFAULT_PAGE, MAX_PAGE = 5000, 20_000
MAX_SOURCE = 200  # characters of the file name kept with a version
_BATCH = 5000  # rows per INSERT batch
_FACTS_BATCH = 1000


def parse_upload(body: bytes, *, source: str) -> ProductFile:
    """The body of ``POST /v1/admin/products`` (the CSV's bytes), or 422 with every problem."""
    try:
        return parse_products_csv(body, source=source)
    except ProductsError as exc:
        raise InvalidProducts(
            f"the product list is invalid ({len(exc.errors)} problems); nothing was imported",
            details={"errors": exc.errors},
        ) from exc


def _latest(tx: Tx) -> Row | None:
    return tx.one("SELECT * FROM product_lists ORDER BY version DESC LIMIT 1")


def import_list(
    db: Database,
    parsed: ProductFile,
    now: datetime,
    *,
    source: str = "",
    operator: str | None = None,
) -> dict[str, Any]:
    """Put ``parsed`` in force as a new version (or, if it is the list in force, nothing)."""
    products = parsed.products
    digest = parsed.digest
    categories = sorted({p.category for p in products})
    with db.write() as tx:
        tx.lock_rows("counters", "name", ["products"])  # one import at a time
        latest = _latest(tx)
        if latest is not None and latest["digest"] == digest:
            out = _summary(latest) | {"unchanged": True, "warnings": parsed.warnings}
            logger.info(
                "product list unchanged (version %s): nothing new for tills", out["version"]
            )
            return out
        version = tx.next_ids("products")
        tx.execute("DELETE FROM products")
        for start in range(0, len(products), _BATCH):
            tx.many(
                "INSERT INTO products (pos, sku, name, category, barcodes, aliases, tags,"
                " no_loyalty, age_restricted, wire) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_stored(start + i + 1, p) for i, p in enumerate(products[start : start + _BATCH])),
            )
        tx.execute(
            "INSERT INTO product_lists (version, count, categories, digest, source, imported_at,"
            " columns) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                version,
                len(products),
                json.dumps(categories, ensure_ascii=False),
                digest,
                source[:MAX_SOURCE],
                ts(now),
                json.dumps(list(COLUMNS)),
            ),
        )
        add_changes(tx, CHANGE_KIND, ["current"], now)
        after = {"version": str(version), "count": len(products)}
        audit.write(
            tx,
            action="products.import",
            subject=f"version {version}",
            detail=after | {"categories": len(categories), "source": source[:MAX_SOURCE]},
            reason="",
            operator=operator,
            now=now,
            before=_summary(latest, categories=False) if latest else None,
            after=after,
        )
    logger.info(
        "product list version %d imported: %d products in %d categories",
        version,
        len(products),
        len(categories),
    )
    return {
        "version": str(version),
        "count": len(products),
        "categories": categories,
        "digest": digest,
        "imported_at": ts(now),
        "source": source[:MAX_SOURCE],
        "unchanged": False,
        "warnings": parsed.warnings,
    }


_text = json.encoder.encode_basestring  # a str as a JSON string, not ASCII-escaped (C)


def _texts(items: tuple[str, ...]) -> str:
    return "[" + ",".join(map(_text, items)) + "]"


def _stored(pos: int, p: Product) -> tuple[object, ...]:
    """A product's row: its columns, and its ``wire`` row in the order of COLUMNS."""
    barcodes, aliases, tags = _texts(p.barcodes), _texts(p.aliases), _texts(p.tags)
    flags = f"{'true' if p.no_loyalty else 'false'},{'true' if p.age_restricted else 'false'}"
    wire = (
        f"[{_text(p.sku)},{_text(p.name)},{_text(p.category)},{barcodes},{aliases},{tags},{flags}]"
    )
    return (
        pos,
        p.sku,
        p.name,
        p.category,
        barcodes,
        aliases,
        tags,
        int(p.no_loyalty),
        int(p.age_restricted),
        wire,
    )


def _summary(row: Row, *, categories: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"version": str(row["version"]), "count": int(row["count"])}
    if categories:
        out |= {
            "categories": json.loads(row["categories"]),
            "digest": row["digest"],
            "imported_at": row["imported_at"],
            "source": row["source"],
        }
    return out


def show(db: Database) -> dict[str, Any]:
    """The list in force (``hq products show``): version, count, categories; or none."""
    with db.read() as tx:
        latest = _latest(tx)
    if latest is None:
        return {"version": None, "count": 0, "categories": []}
    return _summary(latest)


def announce(tx: Tx) -> dict[str, Any] | None:
    """What a change page says of the list in force: its version and size (None: no list)."""
    latest = _latest(tx)
    return _summary(latest, categories=False) if latest else None


def _whole(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"{name}: must be an integer between {low} and {high}")
    return value


def page(db: Database, *, version: str, after: int, limit: int) -> bytes:
    """The JSON of one page of the list in force: the products after position ``after``.

    Joined from each product's ``wire`` row, made once at import: a page of thousands of
    products is one read, not thousands of encodings.
    ``version`` must be the list in force, else 404 with the current one (``version``).
    """
    after = _whole("after", after, 0, 2**63 - 1)
    limit = _whole("limit", limit, 1, MAX_PAGE)
    with db.read() as tx:
        latest = _latest(tx)
        if latest is None:
            raise NotFound("head office has no product list", details={"version": None})
        current = str(latest["version"])
        if version != current:
            raise NotFound(
                f"product list version {version!r} is not head office's; the list in force is "
                f"version {current}: download that one from the start",
                details={"version": current},
            )
        # Joined by the database: no row of the page becomes a Python value. Positions run
        # 1 … count, so the page's last one says whether there is more.
        concat = "group_concat(wire, ',')" if tx.dialect == "sqlite" else "string_agg(wire, ',')"
        found = tx.one(
            f"SELECT {concat} AS items, max(pos) AS last FROM"
            " (SELECT pos, wire FROM products WHERE pos > ? ORDER BY pos LIMIT ?) AS page",
            (after, limit),
        )
    items = (found or {}).get("items") or ""
    last = int((found or {}).get("last") or after)
    more = last < int(latest["count"])
    head = (
        f'{{"version":{json.dumps(current)},"count":{int(latest["count"])},"after":{last},'
        f'"more":{"true" if more else "false"},"columns":{latest["columns"]},"products":['
    )
    return (head + items + "]}").encode("utf-8")


# ---------------------------------------------------------------- unmatched names

UNMATCHED = ("unmatched", "ambiguous")
UNMATCHED_DAYS = timedelta(days=30)  # what ``hq products unmatched`` reads without --since


def unmatched(db: Database, *, since: datetime, limit: int = 100) -> dict[str, Any]:
    """The names tills could not match (or matched twice over) since ``since``, counted.

    Read from the receipt facts' input lines (``match``: pos, sku, name, rule, unmatched,
    ambiguous); a line without it (facts from tills before the product list) counts under
    ``unknown`` in ``lines`` and is never listed. Refunds are left out: they repeat a sale.
    """
    by_name: dict[tuple[str, str], dict[str, Any]] = {}
    lines: Counter[str] = Counter()
    receipts = 0
    key: tuple[str, str, str] = (ts(since), "", "")
    with db.read() as tx:
        while True:
            rows = tx.all(
                "SELECT till, id, created_at, body FROM receipt_facts WHERE kind = 'sale'"
                " AND (created_at > ? OR (created_at = ? AND (till > ? OR (till = ? AND id > ?))))"
                " ORDER BY created_at, till, id LIMIT ?",
                (key[0], key[0], key[1], key[1], key[2], _FACTS_BATCH),
            )
            for row in rows:
                receipts += 1
                _count_lines(row, by_name, lines)
            if len(rows) < _FACTS_BATCH:
                break
            last = rows[-1]
            key = (last["created_at"], last["till"], last["id"])
    names = sorted(by_name.values(), key=lambda n: (-n["count"], n["name"]))
    for n in names:
        n["tills"] = sorted(n["tills"])
        n["skus"] = sorted(n["skus"])
        n["products_versions"] = sorted(n["products_versions"])
    return {
        "since": ts(since),
        "receipts": receipts,
        "lines": dict(sorted(lines.items())),
        "names": names[:limit],
        "more": max(0, len(names) - limit),
    }


def _count_lines(
    row: Row, by_name: dict[tuple[str, str], dict[str, Any]], lines: Counter[str]
) -> None:
    try:
        body = json.loads(row["body"])
        inputs = body["calculation"]["inputs"]
        found = inputs["lines"]
    except (ValueError, KeyError, TypeError):
        return  # facts kept as a marker, or from before calculations were recorded
    if not isinstance(inputs, dict) or not isinstance(found, list):
        return
    version = inputs.get("products_version")
    for line in found:
        if not isinstance(line, dict):
            continue
        match = line.get("match")
        match = match if isinstance(match, str) and match else "unknown"
        lines[match] += 1
        if match not in UNMATCHED:
            continue
        name = str(line.get("name") or line.get("sku") or "")
        entry = by_name.setdefault(
            (name, match),
            {
                "name": name,
                "match": match,
                "count": 0,
                "skus": set(),
                "tills": set(),
                "products_versions": set(),
                "last_seen": "",
            },
        )
        entry["count"] += 1
        entry["tills"].add(row["till"])
        if isinstance(version, str | int) and not isinstance(version, bool):
            entry["products_versions"].add(str(version))
        entry["last_seen"] = max(entry["last_seen"], str(row["created_at"]))
        sku = line.get("sku")
        if isinstance(sku, str) and sku and len(entry["skus"]) < 5:
            entry["skus"].add(sku)
