"""The product list file: a back-office CSV export read into :class:`~.products.Product` values.

One reader for head office (``tillgate hq products import``) and the standalone till
(``[standalone] products_file``), so both accept and refuse exactly the same files.

What it takes, as back-office exports come:

* UTF-8, with or without a byte-order mark; ``,`` or ``;`` between fields (whichever the
  header row uses more of); a header row naming the columns, in any order and any case;
* required ``sku``, ``name``, ``category``; optional ``barcodes``, ``aliases``, ``tags``
  (each a ``;``-separated list: quote the field when ``;`` also separates the fields) and
  ``no_loyalty``, ``age_restricted`` (``1``/``true``/``yes``, ``0``/``false``/``no``, empty
  is false); any other column is ignored, and said so in :attr:`ProductFile.warnings`.

The file is validated whole: every problem is listed with its row (the header is row 1, as
a spreadsheet numbers them) and column, and :class:`~.errors.ProductsError` is raised when
there is any, so nothing of a bad file is ever used.

Pure apart from :func:`load_products_file` reading the one file it is given.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import ProductsError
from .products import Product

REQUIRED = ("sku", "name", "category")
LISTS = ("barcodes", "aliases", "tags")
FLAGS = ("no_loyalty", "age_restricted")
COLUMNS = (*REQUIRED, *LISTS, *FLAGS)

# Longest values kept, in characters: far beyond real goods, short enough that a wrong
# delimiter (a whole row in one field) is caught. The till's wire check uses the same.
MAX_LEN = {"sku": 64, "name": 256, "category": 64, "barcodes": 64, "aliases": 256, "tags": 64}
MAX_ITEMS = 100  # barcodes, aliases or tags of one product
MAX_ERRORS = 1000  # listed; a file with more is described by its first ones and a count

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # NUL, line breaks, tabs: never in a product's text
_TRUE = frozenset({"1", "true", "yes", "y"})
_FALSE = frozenset({"", "0", "false", "no", "n"})


@dataclass(frozen=True, kw_only=True)
class ProductFile:
    """A product list file that validated: its products, what was ignored, its digest."""

    products: list[Product]
    warnings: list[str]

    @property
    def digest(self) -> str:
        return digest(self.products)


def digest(products: Iterable[Product]) -> str:
    """SHA-256 of the list's content (not its bytes): the same goods give the same digest,
    whatever the delimiter, column order or quoting of the file they came in."""
    h = hashlib.sha256()
    for p in sorted(products, key=lambda p: p.sku):
        row = [p.sku, p.name, p.category, p.barcodes, p.aliases, p.tags]
        h.update(json.dumps([*row, p.no_loyalty, p.age_restricted], ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


def _delimiter(header: str) -> str:
    return ";" if header.count(";") > header.count(",") else ","


def _split(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.strip() for s in value.split(";") if s.strip()))


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.count = 0

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.items) < MAX_ERRORS:
            self.items.append(text)

    def listed(self) -> list[str]:
        more = self.count - len(self.items)
        return self.items + ([f"... and {more} more problems"] if more else [])


def parse_products_csv(data: bytes, *, source: str) -> ProductFile:
    """Validate a product list CSV whole; ProductsError lists every problem in it."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        raise ProductsError(
            [f"row {row}: byte {exc.start} is not UTF-8; export the file as UTF-8"],
            source=source,
        ) from exc
    first = text.split("\n", 1)[0]
    if not text.strip():
        raise ProductsError(
            ["the file is empty: a header row (sku, name, category, ...) is required"],
            source=source,
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first), strict=True)
    problems = _Problems()
    try:
        header = [h.strip().casefold() for h in next(reader)]
    except csv.Error as exc:
        raise ProductsError([f"row 1: not a CSV header ({exc})"], source=source) from exc
    index = _header(header, problems)
    if index is None:
        raise ProductsError(problems.listed(), source=source)
    warnings = [f"header: unknown column {h!r} ignored" for h in header if h and h not in COLUMNS]
    products: list[Product] = []
    first_row: dict[str, int] = {}
    row_no = 1
    while True:
        row_no += 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.add(f"row {row_no}: not valid CSV ({exc})")
            break
        if not any(f.strip() for f in fields):
            continue  # a blank line, as exports end with
        product = _product(fields, index, len(header), row_no, problems)
        if product is None:
            continue
        if product.sku in first_row:
            problems.add(
                f"row {row_no}, sku: {product.sku!r} appears twice (first on row "
                f"{first_row[product.sku]})"
            )
            continue
        first_row[product.sku] = row_no
        products.append(product)
    if not products and not problems.count:
        problems.add("the file has a header but no products")
    if problems.count:
        raise ProductsError(problems.listed(), source=source)
    return ProductFile(products=products, warnings=warnings)


def _header(header: list[str], problems: _Problems) -> dict[str, int] | None:
    """Column name → position, or None (problems say why) when the header is unusable."""
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in COLUMNS and name in seen:
            problems.add(f"row 1: column {name!r} appears twice")
        seen.setdefault(name, i)
    missing = [c for c in REQUIRED if c not in seen]
    if missing:
        problems.add(
            f"row 1: missing required column(s) {', '.join(missing)}; the first row must be "
            f"the header (sku, name, category, and optionally {', '.join((*LISTS, *FLAGS))})"
        )
    return None if problems.count else {c: seen[c] for c in COLUMNS if c in seen}


def _product(
    fields: list[str], index: dict[str, int], width: int, row: int, problems: _Problems
) -> Product | None:
    if len(fields) > width:
        problems.add(
            f"row {row}: {len(fields)} fields, the header has {width} (a {','!r} or {';'!r} "
            "inside a field must be quoted)"
        )
        return None
    before = problems.count
    values = {c: (fields[i].strip() if i < len(fields) else "") for c, i in index.items()}
    for column in REQUIRED:
        if not values[column]:
            problems.add(f"row {row}, {column}: empty (required)")
    lists: dict[str, tuple[str, ...]] = {}
    for column in LISTS:
        items = _split(values.get(column, ""))
        if len(items) > MAX_ITEMS:
            problems.add(f"row {row}, {column}: {len(items)} items, at most {MAX_ITEMS}")
        lists[column] = items
    for column in (*REQUIRED, *LISTS):
        limit = MAX_LEN[column]
        pieces = lists[column] if column in lists else (values[column],)
        for piece in pieces:
            bad = _CONTROL.search(piece)
            if bad:
                problems.add(
                    f"row {row}, {column}: a control character (U+{ord(bad.group()):04X}) in "
                    f"{piece[:20]!r}"
                )
                break
            if len(piece) > limit:
                problems.add(
                    f"row {row}, {column}: {len(piece)} characters, at most {limit} "
                    f"({piece[:20]!r}...)"
                )
                break
    flags: dict[str, bool] = {}
    for column in FLAGS:
        raw = values.get(column, "")
        word = raw.casefold()
        if word not in _TRUE and word not in _FALSE:
            problems.add(f"row {row}, {column}: {raw[:20]!r} is not 1/true or 0/false/empty")
        flags[column] = word in _TRUE
    if problems.count > before:
        return None
    return Product(
        sku=values["sku"],
        name=values["name"],
        category=values["category"],
        barcodes=lists["barcodes"],
        aliases=lists["aliases"],
        tags=lists["tags"],
        no_loyalty=flags["no_loyalty"],
        age_restricted=flags["age_restricted"],
    )


def read_products_csv(data: bytes, *, source: str) -> list[Product]:
    """The products of a product list CSV (``source`` names it in errors); ProductsError
    lists every problem if it does not validate."""
    return parse_products_csv(data, source=source).products


def load_products(path: str | Path) -> ProductFile:
    """Read and validate a product list file: its products and warnings."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError as exc:
        raise ProductsError([f"file not found: {p}"], source=str(p)) from exc
    except OSError as exc:
        raise ProductsError([f"cannot read {p}: {exc.strerror or exc}"], source=str(p)) from exc
    return parse_products_csv(data, source=str(p))


def load_products_file(path: str | Path) -> list[Product]:
    """The products of a product list file; ProductsError lists every problem."""
    return load_products(path).products
