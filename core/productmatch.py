"""How a receipt line gets its category, for POS-API and intercepted lines alike.

In this order (the first that answers wins):

1. ``pos``: the category the POS sent with the line;
2. ``sku``: the product list by the line's sku (the POS API's ``sku``, or the one a receipt
   template captured), matched against each product's ``sku`` and ``barcodes``;
3. ``name``: the product list by the line's name (the POS's ``name`` or the printed one),
   normalised (:func:`tillgate.core.products.normalise_name`: case, spacing, Ё/Е,
   punctuation), against each product's name and aliases; a printed name the printer may
   have cut short matches the one product whose key starts with it. A name (or code) that
   matches two products is *ambiguous*: it decides nothing and the rules below are tried;
4. ``rule``: the program's ``[[categories.match]]`` rules, each a regular expression searched
   case-insensitively in :func:`tillgate.core.products.name_words` of the name; first wins;
5. else ``unmatched`` (or ``ambiguous``), handled by ``[program] unmatched_items``:
   ``earn`` (a line like any other) or ``exclude`` (no discount, no points, not counted
   toward any threshold, as ``no_discount_categories``).

A line whose product is known (by sku, else by name, even when the POS sent the category)
takes the product's tags and its ``no_loyalty`` flag; ``age_restricted`` implies
``no_loyalty`` unless ``[program] age_restricted_no_loyalty = false``.

Pure: the product list comes in as a :class:`~tillgate.core.products.ProductLookup`; no
I/O of its own, no clock, no globals.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from tillgate.core.products import Match, Product, ProductLookup, name_words, normalise_name
from tillgate.core.rules.program import CategoryMatch

from .frozen import quick_init

UnmatchedPolicy = Literal["earn", "exclude"]

# A printed name shorter than this is never taken for a cut one: "Вода" is not "Водка…".
MIN_CUT_KEY = 6


@quick_init
@dataclass(frozen=True, kw_only=True)
class LineIn:
    """What is known of a line before matching: what the POS sent or the printer showed."""

    sku: str | None  # None: none known (the receipt template captured no sku)
    name: str = ""
    category: str | None = None  # as the POS sent it
    tags: tuple[str, ...] = ()
    # The printed name may have been cut at the paper's width (its line filled the paper),
    # so it may be a prefix of the product's name. Always False for a POS-API line.
    may_be_cut: bool = False


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The program's part in matching: its rules and what an unknown line gets."""

    rules: tuple[CategoryMatch, ...] = ()
    unmatched_items: UnmatchedPolicy = "earn"
    age_restricted_no_loyalty: bool = True


@quick_init
@dataclass(frozen=True, kw_only=True)
class Resolution:
    """A line as the rules engine will see it, and how its category was found."""

    category: str | None
    sku: str | None  # the product's sku when one matched, else the line's own (None: none)
    tags: tuple[str, ...]
    no_loyalty: bool  # no discount, no points, not counted toward thresholds
    match: Match
    product: Product | None = None


class NoProducts:
    """A product list with no product: lines are matched by the program's rules alone."""

    @property
    def version(self) -> str | None:
        return None

    def by_name_prefix(self, key: str, *, limit: int = 2) -> list[Product]:
        return []

    def by_codes(self, codes: Collection[str], *, limit: int = 2) -> dict[str, list[Product]]:
        return {}

    def by_names(self, keys: Collection[str], *, limit: int = 2) -> dict[str, list[Product]]:
        return {}


def resolve(line: LineIn, lookup: ProductLookup, policy: Policy) -> Resolution:
    """The category, sku, tags and loyalty flag of one line (see the module's order)."""
    return resolve_all((line,), lookup, policy)[0]


def resolve_all(
    lines: Sequence[LineIn], lookup: ProductLookup, policy: Policy
) -> tuple[Resolution, ...]:
    """:func:`resolve` for every line of a receipt, in order.

    The product list is asked once for all the lines' codes and once for all the names
    those did not answer (a cut name is one more question of its own): a 200-line receipt
    is a handful of queries, not hundreds.
    """
    by_code = lookup.by_codes(list(dict.fromkeys(ln.sku for ln in lines if ln.sku)))
    found = [_by_code(ln, by_code) for ln in lines]
    keys = [
        normalise_name(ln.name) if f[0] is None and ln.name else ""
        for ln, f in zip(lines, found, strict=True)
    ]
    by_name = lookup.by_names(list(dict.fromkeys(k for k in keys if k)))
    out: list[Resolution] = []
    for line, (product, ambiguous), key in zip(lines, found, keys, strict=True):
        how: Match = "sku"
        if product is None and key:
            named = by_name.get(key, [])
            if not named and line.may_be_cut and len(key) >= MIN_CUT_KEY:
                named = lookup.by_name_prefix(key, limit=2)
            if len(named) == 1:
                product, how = named[0], "name"
            ambiguous = ambiguous or len(named) > 1
        out.append(_resolution(line, product, how, ambiguous, policy))
    return tuple(out)


def rule_category(name: str, rules: Sequence[CategoryMatch]) -> str | None:
    """The category of the first ``[[categories.match]]`` rule found in the name's words."""
    if not rules or not name:
        return None
    words = name_words(name)
    for rule in rules:
        # re caches compiled patterns: a program's few rules are compiled once.
        if re.search(rule.pattern, words, re.IGNORECASE):
            return rule.category
    return None


def _by_code(line: LineIn, by_code: Mapping[str, list[Product]]) -> tuple[Product | None, bool]:
    """The one product the line's code names, and whether it names two."""
    if not line.sku:
        return None, False
    found = by_code.get(line.sku, [])
    # A sku names one product; a barcode may be printed on two (a reused one): then the
    # product whose own sku it is (listed first), else the name decides.
    if found and (found[0].sku == line.sku or len(found) == 1):
        return found[0], False
    return None, len(found) > 1


def _resolution(
    line: LineIn, product: Product | None, how: Match, ambiguous: bool, policy: Policy
) -> Resolution:
    tags = line.tags
    no_loyalty = False
    if product is not None:
        tags = tuple(dict.fromkeys((*line.tags, *product.tags)))
        no_loyalty = product.no_loyalty or (
            product.age_restricted and policy.age_restricted_no_loyalty
        )
    if line.category is not None:
        # The POS knows its goods best; the product list still says what the law says.
        return Resolution(
            category=line.category,
            sku=line.sku,
            tags=tags,
            no_loyalty=no_loyalty,
            match="pos",
            product=product,
        )
    if product is not None:
        return Resolution(
            category=product.category,
            sku=product.sku,
            tags=tags,
            no_loyalty=no_loyalty,
            match=how,
            product=product,
        )
    category = rule_category(line.name, policy.rules)
    if category is not None:
        return Resolution(
            category=category, sku=line.sku, tags=tags, no_loyalty=False, match="rule"
        )
    return Resolution(
        category=None,
        sku=line.sku,
        tags=tags,
        no_loyalty=policy.unmatched_items == "exclude",
        match="ambiguous" if ambiguous else "unmatched",
    )
