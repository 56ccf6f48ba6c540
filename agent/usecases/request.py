"""A sale to be priced, as the use cases take it: from the POS API or from a printed receipt.

The POS API (:mod:`tillgate.agent.api.schemas`) and receipt interception
(:mod:`tillgate.agent.intercept`) both build a :class:`SaleRequest`; the checks and the
normalisation of money and quantities live here once, so a receipt read off paper is no
more trusted than a POS's JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

from tillgate.core.errors import InvalidRequest
from tillgate.core.frozen import quick_init
from tillgate.core.money import parse_decimal

RECEIPT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:#\-]{0,63}$"
MAX_QTY = Decimal(100_000)
MAX_PRICE = Decimal("99999999.99")
MAX_REDEEM = 100_000_000
_RECEIPT_ID = re.compile(RECEIPT_ID_PATTERN)

Redeem = int | Literal["max"]

_ASCII = "in ASCII digits 0-9 with a point and no digit separators"


def parse_money(v: Any, *, field: str) -> Decimal:
    """A money amount from a decimal string: two places at most, 0 … MAX_PRICE."""
    if isinstance(v, bool) or not isinstance(v, str):
        raise ValueError(f'{field} must be a decimal string like "89.00", not a JSON number')
    return _money(v, field)


# A basket repeats its prices and quantities, and a shop's from receipt to receipt: each
# text is parsed once (a Decimal is immutable; a refusal is never kept, it raises).
@lru_cache(maxsize=4096)
def _money(v: str, field: str) -> Decimal:
    try:
        d = parse_decimal(v)
    except ValueError as exc:
        raise ValueError(
            f'{field} {v!r} is not a decimal number: write it {_ASCII}, like "89.00"'
        ) from exc
    if d < 0:
        raise ValueError(f"{field} must not be negative")
    if d > MAX_PRICE:  # before quantize, which fails on numbers over 28 digits
        raise ValueError(f"{field} is absurdly large (max {MAX_PRICE})")
    money = d.quantize(Decimal("0.01"))
    if money != d:
        raise ValueError(f"{field} has more than two decimal places")
    # "89", "89.0" and "8.9e1" are the same money; answer it as "89.00" (and never "-0.00").
    return abs(money)


def parse_qty(v: Any) -> Decimal:
    """A quantity: a number or decimal string, > 0, three places at most."""
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise ValueError("qty must be a number or a decimal string")
    # Keyed by type too: 2 and 2.0 are equal keys, but "2" and "2.0" are other quantities.
    return _qty(type(v).__name__, v)


@lru_cache(maxsize=4096)
def _qty(kind: str, v: int | float | str) -> Decimal:
    try:
        d = parse_decimal(str(v)) if not isinstance(v, int) else Decimal(v)
    except ValueError as exc:
        if isinstance(v, float):  # inf or nan: JSON has neither, Python's json reads both
            raise ValueError("qty must be a finite number greater than 0") from exc
        raise ValueError(
            f'qty {v!r} is not a number: write it {_ASCII}, like 2 or "0.350"'
        ) from exc
    if not d.is_finite() or d <= 0:
        raise ValueError("qty must be greater than 0")
    if d > MAX_QTY:
        raise ValueError(f"qty is absurdly large (max {MAX_QTY})")
    if d != d.quantize(Decimal("0.001")):
        raise ValueError("qty has more than three decimal places")
    # Keep the precision the POS wrote ("0.350", "2") but never an exponent ("1E+2").
    exponent = d.as_tuple().exponent
    return d.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else d


def parse_redeem(v: Any) -> Redeem:
    """Points to redeem: a whole number 0 … MAX_REDEEM, or ``"max"``."""
    if isinstance(v, bool) or not (isinstance(v, int) or v == "max"):
        raise ValueError('redeem must be a whole number of points or "max"')
    if isinstance(v, int) and not 0 <= v <= MAX_REDEEM:
        raise ValueError(f"redeem must be between 0 and {MAX_REDEEM} points")
    return "max" if v == "max" else int(v)


@quick_init
@dataclass(frozen=True, kw_only=True)
class SaleLine:
    """One line of the basket, already checked."""

    sku: str
    name: str = ""
    qty: Decimal
    price: Decimal
    category: str | None = None
    tags: tuple[str, ...] = ()
    no_discount: bool = False
    weighed: bool | None = None  # None: a fractional qty means weighed
    # Read off a printed receipt: False when the template captured no sku, so ``sku`` is
    # a stand-in made of the name, never looked up as a code (core/productmatch.py).
    sku_known: bool = True
    name_cut: bool = False  # the printed name filled its line: the POS may have cut it


@dataclass(frozen=True, kw_only=True)
class SaleRequest:
    """Price this basket for this receipt (and card, coupons, points to redeem)."""

    receipt_id: str
    lines: tuple[SaleLine, ...] = ()
    card: str | None = None
    coupons: tuple[str, ...] = ()
    redeem: Redeem = 0


def sale_request(
    receipt_id: str,
    lines: Iterable[Mapping[str, Any]],
    *,
    card: str | None = None,
    coupons: Iterable[str] = (),
    redeem: Any = 0,
) -> SaleRequest:
    """A checked :class:`SaleRequest` from plain values (what a printed receipt gives).

    Raises :class:`InvalidRequest` naming the first bad field, as the POS API would.
    """
    if not _RECEIPT_ID.match(receipt_id):
        raise InvalidRequest(f"receipt_id {receipt_id!r} is not a valid receipt id")
    out: list[SaleLine] = []
    try:
        for i, ln in enumerate(lines):
            sku = str(ln.get("sku", "")).strip()
            name = str(ln.get("name", "")).strip()
            if not 1 <= len(sku) <= 64:
                raise ValueError(f"lines[{i}].sku must be 1 to 64 characters")
            if len(name) > 256:
                raise ValueError(f"lines[{i}].name must be at most 256 characters")
            out.append(
                SaleLine(
                    sku=sku,
                    name=name,
                    qty=parse_qty(ln.get("qty")),
                    price=parse_money(ln.get("price"), field="price"),
                    category=ln.get("category"),
                    tags=tuple(ln.get("tags", ())),
                    no_discount=bool(ln.get("no_discount", False)),
                    weighed=ln.get("weighed"),
                    sku_known=bool(ln.get("sku_known", True)),
                    name_cut=bool(ln.get("name_cut", False)),
                )
            )
        checked_redeem = parse_redeem(redeem)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    return SaleRequest(
        receipt_id=receipt_id,
        lines=tuple(out),
        card=card,
        coupons=tuple(coupons),
        redeem=checked_redeem,
    )
