"""Receipt templates: the text of a captured POS receipt → a basket the rules engine prices.

A template is a handful of regular expressions (item line, discount line, total, receipt
number), kept as data in the config so a store can adapt it to its POS without code. The
default template reads the common Russian and English layouts:

    Молоко 3,2% 1л                 Молоко 3,2% 1л     2 x 89.00   =178.00
    2 x 89.00            =178.00   Bread            1 @ 45.00      45.00
    ИТОГ                 =401.80   TOTAL                          223.00

A receipt is accepted only if its item amounts (less printed discounts) add up to its
printed total: a template that misreads a receipt must say so, not invent a basket.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from tillgate.core.errors import ConfigError

_MONEY = r"-?\d{1,9}(?:[ \u00a0]\d{3})*[.,]\d{2}"
_QTY = r"\d{1,6}(?:[.,]\d{1,3})?"

DEFAULT_PATTERNS: Mapping[str, tuple[str, ...]] = {
    # Name, quantity, price and amount on one line.
    "item": (
        rf"^(?P<name>\S.*?)\s{{2,}}(?P<qty>{_QTY})\s*(?:шт\.?|кг|pcs|kg)?\s*[xх×*@]\s*"
        rf"(?P<price>{_MONEY})\s*(?:=|\s)\s*=?\s*(?P<amount>{_MONEY})\s*[АБВГ*]?$",
    ),
    # Quantity × price = amount on its own line; the name is the line above it.
    "item_qty": (
        rf"^\s*(?P<qty>{_QTY})\s*(?:шт\.?|кг|pcs|kg)?\s*[xх×*@]\s*(?P<price>{_MONEY})"
        rf"\s*(?:=|\s)\s*=?\s*(?P<amount>{_MONEY})\s*[АБВГ*]?$",
    ),
    # Name and amount only (quantity 1).
    "item_simple": (rf"^(?P<name>[^\d\s=].*?)\s{{2,}}=?(?P<amount>{_MONEY})\s*[АБВГ*]?$",),
    "discount": (rf"^\s*(?:СКИДКА|Скидка|скидка|DISCOUNT|Discount)\b.*?(?P<amount>{_MONEY})\s*$",),
    "total": (
        rf"^\s*(?:ИТОГ(?:О)?(?:\s+К\s+ОПЛАТЕ)?|К\s+ОПЛАТЕ|TOTAL|Total)\b[^\d=]*=?\s*"
        rf"(?P<total>{_MONEY})\s*$",
    ),
    "number": (
        r"(?:ЧЕК|Чек|чек|RECEIPT|Receipt|CHECK|Check)\s*(?:№|#|N|No\.?|:)?\s*(?P<number>\d{1,12})",
        r"(?:ФД|FD)\s*(?:№|#|:)?\s*(?P<number>\d{1,12})",
    ),
    # Lines after which nothing is an item (payment, change, fiscal trailer).
    "stop": (r"^\s*(?:НАЛИЧНЫМИ|НАЛИЧНЫЕ|БЕЗНАЛИЧНЫМИ|ЭЛЕКТРОННЫМИ|СДАЧА|CASH|CARD|CHANGE)\b",),
}
# Lines that look like items but never are (subtotals, taxes, totals).
_NOT_ITEM = re.compile(
    r"^\s*(?:ИТОГ|ПОДЫТОГ|К\s+ОПЛАТЕ|НДС|СУММА|TOTAL|SUBTOTAL|TAX|VAT|СКИДКА|DISCOUNT|"
    r"НАЛИЧН|БЕЗНАЛ|ЭЛЕКТРОН|СДАЧА|CASH|CARD|CHANGE)",
    re.IGNORECASE,
)


@dataclass(frozen=True, kw_only=True)
class ReceiptLine:
    """One item read off a receipt."""

    name: str
    qty: Decimal
    price: Decimal
    amount: Decimal  # what the receipt says the line costs, printed discounts taken off
    # What the template's optional ``sku`` group captured; None: nothing, so the line is
    # matched to a product by its name (a name is never taken for a sku).
    sku: str | None = None
    # Columns of the text line the name was read from: a name whose line fills the
    # receipt's width may have been cut there by the POS (see ReadReceipt.width).
    line_width: int = 0

    def may_be_cut(self, width: int) -> bool:
        """Whether the printed name may be cut short: its line is as wide as the receipt."""
        return width > 0 and self.line_width >= width


@dataclass(frozen=True, kw_only=True)
class ReadReceipt:
    """What a template read off a receipt: its items, total and number."""

    lines: tuple[ReceiptLine, ...]
    total: Decimal
    number: str | None
    problems: tuple[str, ...] = ()  # non-empty: the receipt could not be read reliably
    width: int = 0  # columns of the receipt's widest line: the paper's width as printed

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.lines)


@dataclass(frozen=True, kw_only=True)
class Template:
    """A receipt-recognition template: compiled patterns by role."""

    name: str
    patterns: Mapping[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, name: str, patterns: Mapping[str, str | list[str] | tuple[str, ...]]
    ) -> Template:
        """Compile a template; roles it does not name fall back to the default patterns."""
        unknown = set(patterns) - set(DEFAULT_PATTERNS)
        if unknown:
            raise ConfigError(
                f"intercept template {name!r}: unknown pattern(s) {sorted(unknown)}; "
                f"known: {sorted(DEFAULT_PATTERNS)}"
            )
        compiled: dict[str, tuple[re.Pattern[str], ...]] = {}
        for role, default in DEFAULT_PATTERNS.items():
            given = patterns.get(role, default)
            sources = (given,) if isinstance(given, str) else tuple(given)
            out = []
            for source in sources:
                try:
                    out.append(re.compile(source))
                except re.error as exc:
                    raise ConfigError(
                        f"intercept template {name!r}: {role} pattern {source!r} is not a "
                        f"valid regular expression: {exc}"
                    ) from exc
            compiled[role] = tuple(out)
        return cls(name=name, patterns=compiled)

    @classmethod
    def default(cls) -> Template:
        return cls.build("default", {})

    def _match(self, role: str, text: str) -> re.Match[str] | None:
        for pattern in self.patterns[role]:
            if m := pattern.search(text):
                return m
        return None

    def read(self, text: str) -> ReadReceipt:
        """Read the items, total and number off a receipt's text."""
        lines: list[ReceiptLine] = []
        problems: list[str] = []
        total: Decimal | None = None
        number: str | None = None
        previous = ""  # the last line that was not an item: a name for "2 x 89.00 =178.00"
        previous_width = 0
        width = 0
        for raw in text.splitlines():
            width = max(width, len(raw.rstrip()))
            line = raw.strip()
            if not line or set(line) <= set("-=*_ ."):
                continue
            if number is None and (m := self._match("number", line)):
                number = m.group("number")
            if m := self._match("total", line):
                if total is None:
                    total = _money(m.group("total"))
                continue
            if self._match("stop", line):
                break
            if total is not None:
                continue  # after the total: payment and fiscal trailer
            if m := self._match("discount", line):
                if not lines:
                    problems.append(f"a discount before any item: {line!r}")
                    continue
                off = abs(_money(m.group("amount")))
                last = lines[-1]
                lines[-1] = replace(last, amount=last.amount - off)
                continue
            if _NOT_ITEM.match(line):
                previous = ""
                continue
            item = self._item(line, previous, len(raw.rstrip()), previous_width)
            if item is not None:
                lines.append(item)
                previous = ""
            else:
                previous, previous_width = line, len(raw.rstrip())
        if total is None:
            problems.append("no total line found")
        elif lines:
            summed = sum((ln.amount for ln in lines), Decimal(0))
            if summed != total:
                problems.append(f"the items add up to {summed}, the receipt says {total}")
        if not lines:
            problems.append("no item lines found")
        return ReadReceipt(
            lines=tuple(lines),
            total=total if total is not None else Decimal(0),
            number=number,
            problems=tuple(problems),
            width=width,
        )

    def _item(
        self, line: str, previous: str, line_width: int, previous_width: int
    ) -> ReceiptLine | None:
        if m := self._match("item", line):
            name, qty, price = m.group("name"), _qty(m.group("qty")), _money(m.group("price"))
        elif previous and (m := self._match("item_qty", line)):
            name, qty, price = previous, _qty(m.group("qty")), _money(m.group("price"))
            line_width = previous_width  # the name is the line above
        elif m := self._match("item_simple", line):
            name, qty = m.group("name"), Decimal(1)
            price = _money(m.group("amount"))
        else:
            return None
        amount = _money(m.group("amount"))
        name = " ".join(name.split())
        sku = (m.groupdict().get("sku") or "").strip() or None
        if qty <= 0 or amount < 0:
            return None
        return ReceiptLine(
            name=name,
            qty=qty,
            price=price,
            amount=amount,
            sku=sku[:64] if sku else None,
            line_width=line_width,
        )


def _money(text: str) -> Decimal:
    cleaned = text.replace(" ", "").replace("\u00a0", "").replace(",", ".")
    try:
        return Decimal(cleaned).quantize(Decimal("0.01"))
    except InvalidOperation as exc:  # the patterns only match digits; kept for custom ones
        raise ValueError(f"not an amount: {text!r}") from exc


def _qty(text: str) -> Decimal:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation as exc:
        raise ValueError(f"not a quantity: {text!r}") from exc


def load_template(name: str, custom: Mapping[str, Mapping[str, str | list[str]]]) -> Template:
    """The template a config names: ``default`` or one of ``[intercept.templates.NAME]``."""
    if name in custom:
        return Template.build(name, custom[name])
    if name == "default":
        return Template.default()
    known = ", ".join(["default", *sorted(custom)])
    raise ConfigError(f"intercept.template: no template named {name!r}; known: {known}")
