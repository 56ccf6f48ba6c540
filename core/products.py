"""The product list: what a till knows of the goods it sells, to give a line its category.

Called the *product list* (``products``) so it does not clash with the promotion index,
:class:`tillgate.core.rules.engine.Catalog`. Head office imports it from a back-office CSV
export (``tillgate hq products import``), versions it apart from the program and sends it in
the feed; a standalone shop points ``[standalone] products_file`` at one. A till keeps it in
SQLite (``agent/store/products.py``), never whole in memory.

This module holds the values and the one name normalisation both sides use; it does no I/O.
How a line gets its category (POS, then sku/barcode, then name, then the program's match
rules, else unmatched) is :mod:`tillgate.core.productmatch`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

# How a line's category was found, carried in receipt facts and counted in /v1/status.
Match = Literal["pos", "sku", "name", "rule", "unmatched", "ambiguous"]
MATCHES: tuple[Match, ...] = ("pos", "sku", "name", "rule", "unmatched", "ambiguous")
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, kw_only=True)
class Product:
    """One row of the product list."""

    sku: str
    name: str
    category: str
    barcodes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    no_loyalty: bool = False  # no discount, no points, not counted toward thresholds
    age_restricted: bool = False  # implies no_loyalty unless the program says otherwise

    def name_keys(self) -> tuple[str, ...]:
        """The normalised keys a printed or sent name is matched against (name, aliases)."""
        keys = [normalise_name(self.name), *(normalise_name(a) for a in self.aliases)]
        return tuple(dict.fromkeys(k for k in keys if k))


def name_words(text: str) -> str:
    """A name as lower-case words: Ё/Е, punctuation and runs of spaces do not count.

    ``"Вино  «Шато», 0,75л"`` gives ``"вино шато 0 75л"``. The program's
    ``[[categories.match]]`` patterns are searched in this form (so ``\bвино\b`` works).
    NFKC first, so full-width and compatibility forms fold too.
    """
    folded = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
    # The runs of letters and digits (str.isalnum, exactly: re's \w is that plus "_"),
    # found by the regex engine: a list of 100,000 names is keyed in a fraction of the time
    # a character-by-character join took.
    return " ".join(_WORD.findall(folded))


def normalise_name(text: str) -> str:
    """A product name as a match key: case, spacing, Ё/Е and punctuation do not count.

    ``"Сигареты «Ява» 0,5"`` and ``"СИГАРЕТЫ ЯВА 0.5"`` give the same key: the letters and
    digits of :func:`name_words`, with no spaces, which also makes a name cut at the
    printer's width a prefix of the whole name's key.
    """
    return name_words(text).replace(" ", "")


class ProductLookup(Protocol):
    """Read access to a product list; the till's SQLite store is the implementation."""

    @property
    def version(self) -> str | None:
        """The list's version (head office's, or a digest of a standalone file); None: none."""
        ...

    def by_name_prefix(self, key: str, *, limit: int = 2) -> list[Product]:
        """Up to ``limit`` products whose name or alias key starts with ``key``
        (a name the printer cut short)."""
        ...

    def by_codes(self, codes: Collection[str], *, limit: int = 2) -> Mapping[str, list[Product]]:
        """For each code, up to ``limit`` products whose sku or barcode it is, the product
        whose own sku it is first; codes nobody has are left out. A receipt's lines are
        looked up at once (core/productmatch.py), not one query per line."""
        ...

    def by_names(self, keys: Collection[str], *, limit: int = 2) -> Mapping[str, list[Product]]:
        """For each key, up to ``limit`` products whose name or alias key it is exactly."""
        ...
