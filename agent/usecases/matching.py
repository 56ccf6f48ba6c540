"""A basket's lines as the rules engine prices them: each with the category, sku, tags and
loyalty flag the product list and the program's rules give it (core/productmatch.py).

One place for POS-API lines and lines read off a printed receipt: calculate prices with
it, ``tillgate intercept test`` shows it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from tillgate.core.productmatch import LineIn, Policy, Resolution, resolve_all
from tillgate.core.products import ProductLookup
from tillgate.core.rules import model as m
from tillgate.core.rules.engine import Catalog

from ..store.products import SqliteProducts
from .request import SaleLine, SaleRequest


@dataclass(frozen=True, kw_only=True)
class Matched:
    """Each line's category as the product list and the program's rules tell it."""

    lines: tuple[Resolution, ...]  # by position in the request
    products_version: str | None


def match(conn: sqlite3.Connection, catalog: Catalog, req: SaleRequest) -> Matched:
    """Give each line its category: POS, product list by sku then name, rules, else none."""
    lookup = SqliteProducts(conn)
    return Matched(lines=resolve_lines(lookup, catalog, req.lines), products_version=lookup.version)


def resolve_lines(
    lookup: ProductLookup, catalog: Catalog, lines: Sequence[SaleLine]
) -> tuple[Resolution, ...]:
    """Each line's category, sku, tags and loyalty flag under the program of ``catalog``."""
    program = catalog.program
    policy = Policy(
        rules=catalog.category_rules,
        unmatched_items=program.unmatched_items,
        age_restricted_no_loyalty=program.age_restricted_no_loyalty,
    )
    given = tuple(
        LineIn(
            # A stand-in made of a printed name is never looked up as a code.
            sku=ln.sku if ln.sku_known else None,
            name=ln.name,
            category=ln.category,
            tags=ln.tags,
            may_be_cut=ln.name_cut,
        )
        for ln in lines
    )
    return resolve_all(given, lookup, policy)


def engine_lines(req: SaleRequest, matched: Matched) -> tuple[m.Line, ...]:
    """The lines as the engine prices them: resolved sku, category and tags; a
    ``no_loyalty`` line (the product list's, or an unmatched one under ``exclude``) is
    left out of the program as a ``no_discount`` line is: no discount, no points, and not
    counted toward any threshold (the engine counts eligible lines only)."""
    return tuple(
        m.Line(
            index=i,
            sku=r.sku or ln.sku,
            # The POS's own code for goods the list knows under another sku (a barcode):
            # a promotion written with either still applies.
            codes=(ln.sku,) if ln.sku_known and r.sku and r.sku != ln.sku else (),
            name=ln.name,
            qty=ln.qty,
            price=ln.price,
            category=r.category,
            tags=r.tags,
            no_discount=ln.no_discount or r.no_loyalty,
            is_weighed=ln.weighed,
        )
        for i, (ln, r) in enumerate(zip(req.lines, matched.lines, strict=True))
    )
