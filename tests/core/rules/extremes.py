"""Extreme baskets for the bounds tests: at, just under and just over ``[program.limits]``.

A basket is a list of ``(qty, price)``; :func:`within` is the oracle, written with
``Decimal`` apart from the code under test, saying whether the default limits take it.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from hypothesis import strategies as st

from tillgate.core.rules.program import ProgramLimits

LIMITS = ProgramLimits()
QTY_STEP, PRICE_STEP = Decimal("0.001"), Decimal("0.01")
MAX_QTY, MAX_PRICE, MAX_TOTAL = LIMITS.max_qty, LIMITS.max_unit_price, LIMITS.max_receipt_total

Basket = list[tuple[Decimal, Decimal]]

_PRICES = [
    MAX_PRICE,
    MAX_PRICE - PRICE_STEP,
    MAX_PRICE + PRICE_STEP,  # just over
    Decimal("10000.00"),  # x max_qty = exactly max_receipt_total
    Decimal("9999.99"),
    PRICE_STEP,
    Decimal("0.00"),
]
_QTYS = [MAX_QTY, MAX_QTY - QTY_STEP, MAX_QTY + QTY_STEP, Decimal(10), QTY_STEP, Decimal(1)]


def amount(qty: Decimal, price: Decimal) -> Decimal:
    """A line's amount, half-up to the kopeck."""
    return (qty * price).quantize(PRICE_STEP, rounding=ROUND_HALF_UP)


def within(basket: Basket) -> bool:
    """Whether the default limits take ``basket``."""
    return (
        all(0 < q <= MAX_QTY and 0 <= p <= MAX_PRICE for q, p in basket)
        and sum((amount(q, p) for q, p in basket), Decimal(0)) <= MAX_TOTAL
        and len(basket) <= LIMITS.max_lines
    )


@st.composite
def baskets(draw: Any, max_lines: int = 3) -> Basket:
    """1..``max_lines`` lines of extreme quantities and prices.

    Most lines fill their share of ``max_receipt_total`` exactly or to just under it (so
    the receipt sits at its bound); some take a bound itself or one step past it, and a
    last 0.01 line may tip a full receipt over.
    """
    n = draw(st.integers(min_value=1, max_value=max_lines))
    share = MAX_TOTAL / n
    out: Basket = []
    for _ in range(n):
        price = draw(
            st.sampled_from(_PRICES)
            | st.decimals(min_value=PRICE_STEP, max_value=MAX_PRICE, places=2)
        )
        fill = (
            min(MAX_QTY, (share / price).quantize(QTY_STEP, rounding=ROUND_DOWN))
            if price
            else MAX_QTY
        )
        qty = draw(
            st.sampled_from([fill, fill, fill - QTY_STEP, *_QTYS])
            | st.decimals(min_value=QTY_STEP, max_value=MAX_QTY, places=3)
        )
        out.append((max(qty, QTY_STEP), price))
    if draw(st.booleans()) and len(out) < max_lines:
        out.append((Decimal(1), PRICE_STEP))
    return out


def pos_lines(basket: Basket) -> list[dict[str, Any]]:
    """The basket as POS API lines (quantities and prices as decimal strings)."""
    return [
        {"sku": f"S{i}", "name": f"item {i}", "qty": str(q), "price": str(p)}
        for i, (q, p) in enumerate(basket)
    ]
