"""The demo's virtual POS: a shop's catalogue, baskets, and receipts printed as a POS prints them.

Receipts are made with python-escpos (as many real POS programs make them) in code page
CP866 on a 42-column printer: the shop's header, the items, discounts, the total, the
payment and a fiscal QR code, then a cut. The interception path sends exactly these bytes
through the agent; the POS-API path prints them on the POS's own printer with the
loyalty figures the API returned.
"""

from __future__ import annotations

import random
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tillgate.drivers.layout import dummy_printer, printable

COLUMNS = 42
CODEPAGE = "cp866"
KOP = Decimal("0.01")


@dataclass(frozen=True, kw_only=True)
class Product:
    sku: str
    name: str
    price: Decimal
    category: str
    weighed: bool = False


def _p(sku: str, name: str, price: str, category: str, *, weighed: bool = False) -> Product:
    return Product(sku=sku, name=name, price=Decimal(price), category=category, weighed=weighed)


# The categories are program.example.toml's.
CATALOGUE: dict[str, Product] = {
    p.sku: p
    for p in (
        _p("4600000000011", "Молоко 3,2% 1 л", "89.00", "dairy"),
        _p("4600000000028", "Кефир 1% 0,9 л", "79.90", "dairy"),
        _p("4600000000035", "Сыр Российский 300 г", "289.00", "dairy"),
        _p("4600000000042", "Творог 5% 200 г", "119.00", "dairy"),
        _p("4600000000059", "Круассан с миндалём", "129.00", "bakery"),
        _p("4600000000066", "Хлеб бородинский", "65.00", "bakery"),
        _p("4600000000073", 'Торт "Наполеон"', "449.00", "bakery"),
        _p("4600000000080", "Кофе в зёрнах 1 кг", "1290.00", "coffee"),
        _p("4600000000097", "Капучино 0,3 л", "189.00", "coffee"),
        _p("2000000000015", "Бананы, кг", "129.90", "produce", weighed=True),
        _p("4600000000103", "Яблоки Гала, кг", "159.90", "produce", weighed=True),
        _p("4600000000110", "Говядина вырезка, кг", "1190.00", "meat", weighed=True),
        _p("4600000000127", "Гречка 900 г", "99.90", "grocery"),
        _p("4600000000134", "Макароны 450 г", "79.90", "grocery"),
        _p("4600000000141", "Рис 900 г", "119.90", "grocery"),
        _p("4600000000158", "Средство для посуды", "149.00", "household"),
        _p("4600000000165", "Губки, 5 шт.", "89.00", "household"),
        _p("4600000000172", "Бумажные полотенца", "199.00", "household"),
        _p("4600000000189", "Вино красное сухое 0,75", "899.00", "alcohol"),
        _p("4600000000196", "Сигареты", "210.00", "tobacco"),
    )
}
BY_NAME = {p.name: p for p in CATALOGUE.values()}


@dataclass(frozen=True, kw_only=True)
class Item:
    product: Product
    qty: Decimal

    @property
    def amount(self) -> Decimal:
        return (self.product.price * self.qty).quantize(KOP, rounding=ROUND_HALF_UP)


def basket(*items: tuple[str, str | int]) -> tuple[Item, ...]:
    """A basket from (product name, quantity) pairs."""
    return tuple(Item(product=BY_NAME[name], qty=Decimal(str(qty))) for name, qty in items)


def random_basket(rng: random.Random) -> tuple[Item, ...]:
    """A plausible shopping basket: 2 to 6 different products."""
    chosen = rng.sample(sorted(CATALOGUE.values(), key=lambda p: p.sku), rng.randint(2, 6))
    out = []
    for product in chosen:
        if product.weighed:
            qty = Decimal(rng.randint(400, 1800)) / 1000
        else:
            qty = Decimal(rng.choice((1, 1, 1, 2, 3)))
        out.append(Item(product=product, qty=qty))
    return tuple(out)


def api_lines(items: Sequence[Item]) -> list[dict[str, Any]]:
    """The basket as the POS API's calculate ``lines``."""
    return [
        {
            "sku": it.product.sku,
            "name": it.product.name,
            "qty": str(it.qty),
            "price": str(it.product.price),
            "category": it.product.category,
        }
        for it in items
    ]


def money(value: Decimal | str) -> str:
    return f"{Decimal(value).quantize(KOP):.2f}"


def _row(left: str, right: str) -> str:
    """``left`` and ``right`` on one 42-column line (left cut short if it must be)."""
    left, right = printable(left, CODEPAGE), printable(right, CODEPAGE)
    room = COLUMNS - len(right) - 1
    return f"{left[:room]:<{room}} {right}\n"


def _wrapped(text: str, *, indent: str = "") -> str:
    """``text`` wrapped to the paper's 42 columns, continuation lines under ``indent``."""
    lines = textwrap.wrap(
        printable(text, CODEPAGE), COLUMNS, subsequent_indent=indent, break_long_words=True
    )
    return "".join(f"{line}\n" for line in lines)


def _qty(qty: Decimal) -> str:
    return f"{qty:.3f}" if qty != qty.to_integral_value() else f"{int(qty)}"


@dataclass(frozen=True, kw_only=True)
class Loyalty:
    """What the POS API said about a receipt, for the POS to print on it."""

    card: str | None  # masked
    line_discounts: tuple[Decimal, ...]
    redeemed_points: int
    redeemed_amount: Decimal
    accrued_points: int
    balance: int | None
    promotions: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Refund:
    """What the POS API said about a refund, for the POS's refund receipt.

    The money goes back the way the sale was paid (the demo's sales are paid by bank
    card); the points paid for the goods go back to the loyalty card, the points they
    earned are taken back.
    """

    of: int  # the sale's receipt number
    amount: Decimal  # amount_returned: the money handed back
    points_returned: int
    points_reversed: int
    line_discounts: tuple[Decimal, ...]  # each returned item's share of the sale's discount
    card: str | None  # masked


def receipt_bytes(
    *,
    number: int,
    items: Sequence[Item],
    at: datetime,
    cashier: str,
    loyalty: Loyalty | None = None,
    refund: Refund | None = None,
) -> bytes:
    """A POS receipt (sale or refund) as ESC/POS bytes, ending with a cut."""
    p = dummy_printer("TM-T88V")

    def text(line: str) -> None:
        # What CP866 lacks (₽, −, the mask's •) printed as the agent prints it.
        p.text(printable(line, CODEPAGE))

    p.hw("INIT")
    p.charcode("CP866")
    p.set(align="center", bold=True, double_height=True)
    text("Ромашка\n")
    p.set(align="center", bold=False, normal_textsize=True)
    text('ООО "Ромашка", Москва, ул. Лесная, 7\n')
    text("ИНН 7701234567\n")
    p.set(align="left")
    title = "ЧЕК ВОЗВРАТА" if refund is not None else "КАССОВЫЙ ЧЕК"
    text(f"{title} № {number}\n")
    if refund is not None:
        text(f"Возврат по чеку № {refund.of}\n")
    text(_row(at.strftime("%d.%m.%Y %H:%M"), f"Кассир: {cashier}"))
    text("-" * COLUMNS + "\n")
    discounts = loyalty.line_discounts if loyalty else refund.line_discounts if refund else ()
    total = Decimal(0)
    for k, it in enumerate(items):
        off = discounts[k] if k < len(discounts) else Decimal(0)
        text(_wrapped(it.product.name, indent="  "))
        text(_row(f"  {_qty(it.qty)} x {money(it.product.price)}", f"={money(it.amount)}"))
        if off:
            text(_row("  Скидка", f"-{money(off)}"))
        total += it.amount - off
    text("-" * COLUMNS + "\n")
    if loyalty is not None and loyalty.redeemed_amount:
        text(_row(f"Оплачено баллами: {loyalty.redeemed_points}", money(loyalty.redeemed_amount)))
        total -= loyalty.redeemed_amount
    if refund is not None:
        # What the agent returned, not the shelf price: the rest of the goods' price was
        # paid with points, which go back to the loyalty card.
        if refund.card is not None:
            text(_row('Карта "Ромашка Бонус"', refund.card))
        if refund.points_returned:
            text(_row("Баллы возвращены на карту", f"+{refund.points_returned}"))
        if refund.points_reversed:
            text(_row("Начисленные баллы сняты", f"-{refund.points_reversed}"))
        total = refund.amount
    p.set(bold=True, double_height=True)
    text(_row("ИТОГ", f"={money(total)}"))
    p.set(bold=False, normal_textsize=True)
    # The demo's sales are paid by bank card: a refund goes back to the card it came from.
    paid = "ВОЗВРАТ БЕЗНАЛИЧНЫМИ" if refund is not None else "БЕЗНАЛИЧНЫМИ"
    text(_row(paid, f"={money(total)}"))
    if loyalty is not None:
        text("-" * COLUMNS + "\n")
        text(_row('Карта "Ромашка Бонус"', loyalty.card or "-"))
        for name in loyalty.promotions:
            text(_wrapped(f"* {name}", indent="  "))
        if loyalty.accrued_points:
            text(_row("Начислено баллов", str(loyalty.accrued_points)))
        if loyalty.balance is not None:
            text(_row("Баланс баллов", str(loyalty.balance)))
    fiscal = f"t={at:%Y%m%dT%H%M}&s={money(total)}&fn=9999078900001234&i={number}&n=1"
    p.set(align="center")
    p.qr(fiscal, native=True, size=4)
    text("Спасибо за покупку!\n")
    p.cut()
    return bytes(p.output)


def receipt_total(items: Sequence[Item]) -> Decimal:
    return sum((it.amount for it in items), Decimal(0))
