"""What the agent prints, as ESC/POS bytes: coupons, prompts and the loyalty summary.

The bytes are made with python-escpos's ``Dummy`` printer, so the printer's capability
profile decides the code-page number (``ESC t n``), native QR and barcode support and the
paper width; nothing here branches on a printer model.

Input items are the dicts the POS API already returns in ``print``
(``agent/responses.py``), plus a summary for intercepted receipts:

- coupon: ``{"kind": "coupon", "title": str, "code": str, "valid_until": "YYYY-MM-DD",
  "value": str (optional, e.g. "−15%" or "100 ₽")}``
- message / prompt: ``{"kind": "message" | "prompt", "title": str | None, "text": str}``
- summary: a :class:`LoyaltySummary` or ``{"kind": "summary", "card": str, "earned": int,
  "redeemed": int, "balance": int, "pending": int, "no_points": [str]}`` (the card is
  masked here again, so a full number never reaches paper); :func:`summary_from_confirm`
  makes one from a confirm response. ``no_points`` names the receipt's lines that earned
  nothing (tobacco, alcohol: the program's excluded categories).

:func:`render_block` makes bytes to be inserted into a POS receipt (no initialisation, no
cut: the POS cuts its own receipt); :func:`render_job` makes a standalone job that starts
with ``ESC @`` and ends with a feed and a partial cut.

Text is made printable in the configured code page before it is encoded: control
characters are dropped (a promotion title must never smuggle printer commands), characters
the code page lacks are replaced by readable ones (``₽`` → ``руб.``, ``−`` → ``-``,
``•`` → ``*``), and only what is still left over becomes ``?``.
"""

from __future__ import annotations

import logging
import textwrap
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from tillgate.core.cards import mask
from tillgate.core.printers import escpos_codepage, escpos_module

logger = logging.getLogger(__name__)

CodeStyle = Literal["auto", "barcode", "qr", "text"]
Language = Literal["ru", "en"]

INIT = b"\x1b@"
# Epson font A is 12 dots wide: the paper width when the profile does not know it.
_FONT_A_DOTS = 12
_BARCODE_MODULE = 2  # dots per CODE128 module: the narrowest most printers accept (GS w 2)
_QR_MODULE = 6  # dots per QR module: about 20 mm for a 25-character code on 180/203 dpi

# What to print instead of a character the code page lacks (tried in order).
_SUBSTITUTES: dict[str, tuple[str, ...]] = {
    "₽": ("руб.", "RUB"),
    "−": ("-",),  # U+2212 minus, as in "−15%"
    "–": ("-",),
    "—": ("-",),
    "‑": ("-",),
    "•": ("*",),  # what cards.mask() hides digits with
    "«": ('"',),
    "»": ('"',),
    "„": ('"',),
    "“": ('"',),
    "”": ('"',),
    "‘": ("'",),
    "’": ("'",),
    "…": ("...",),
    "€": ("EUR",),
    "№": ("N",),
    "\u00a0": (" ",),
    "\u202f": (" ",),
    "\u2009": (" ",),
    "\t": (" ",),
}

_WORDS: dict[str, dict[str, str]] = {
    "ru": {
        "coupon": "КУПОН",
        "valid": "до {date}",
        "code": "Код",
        "card": "Карта",
        "earned": "Начислено баллов",
        "redeemed": "Списано баллов",
        "balance": "Баланс баллов",
        "pending": "Ожидают начисления",
        "available_from": "Доступны с",
        "loyalty": "ПРОГРАММА ЛОЯЛЬНОСТИ",
        "no_points": "Без баллов и скидок:",
    },
    "en": {
        "coupon": "COUPON",
        "valid": "valid until {date}",
        "code": "Code",
        "card": "Card",
        "earned": "Points earned",
        "redeemed": "Points spent",
        "balance": "Points balance",
        "pending": "Points pending",
        "available_from": "Available from",
        "loyalty": "LOYALTY",
        "no_points": "No points or discounts:",
    },
}


@dataclass(frozen=True, kw_only=True)
class LoyaltySummary:
    """The loyalty lines added to an intercepted receipt: card, points earned and balance."""

    card: str  # masked again before printing
    earned: int = 0
    redeemed: int = 0
    balance: int = 0
    pending: int = 0
    available_from: date | None = None  # when the earned points become spendable
    # The receipt's lines that earned nothing, as printed ("Сигареты (tobacco)").
    no_points: tuple[str, ...] = ()


Item = Mapping[str, Any] | LoyaltySummary


def summary_from_confirm(
    response: Mapping[str, Any], *, no_points: Sequence[str] = ()
) -> LoyaltySummary | None:
    """The summary for a confirm response (pos-api.md); None for a sale without a card.

    ``no_points``: the lines that earned nothing, to be named under the figures.
    """
    card = response.get("card")
    if not card:
        return None
    accrued = response.get("accrued") or {}
    available = accrued.get("available_from")
    return LoyaltySummary(
        card=str(card.get("number", "")),
        earned=int(accrued.get("points", 0)),
        redeemed=int((response.get("redeemed") or {}).get("points", 0)),
        balance=int(card.get("balance", 0)),
        pending=int(card.get("pending", 0)),
        available_from=date.fromisoformat(available) if available else None,
        no_points=tuple(no_points),
    )


def repeats_title(title: str, text: str) -> bool:
    """Whether ``text`` already begins with ``title``'s words (punctuation and case aside).

    A promotion's print text usually names it ("Молочная неделя: −10% на молочное" under
    the title "Молочная неделя −10%"): printing both shows the name twice.
    """
    title_words, text_words = _words(title), _words(text)
    return bool(title_words) and text_words[: len(title_words)] == title_words


def _words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in text.casefold()).split()


# ---------------------------------------------------------------- profile and code page


def dummy_printer(profile: str) -> Any:
    """python-escpos's ``Dummy`` printer (it collects the bytes), imported cleanly."""
    escpos_module()
    from escpos.printer import Dummy  # type: ignore[import-untyped]

    return Dummy(profile=profile)


def printable(text: str, codepage: str) -> str:
    """``text`` with control characters dropped and what ``codepage`` lacks replaced."""
    out: list[str] = []
    for char in text:
        if char == "\n":
            out.append(char)
        elif unicodedata.category(char) == "Cc" and char != "\t":
            continue  # ESC, GS, DLE…: never let data become a printer command
        elif _encodable(char, codepage):
            out.append(char)
        else:
            out.append(_substitute(char, codepage))
    return "".join(out)


def _encodable(text: str, codepage: str) -> bool:
    try:
        text.encode(codepage)
    except UnicodeEncodeError:
        return False
    return True


def _substitute(char: str, codepage: str) -> str:
    for candidate in _SUBSTITUTES.get(char, ()):
        if _encodable(candidate, codepage):
            return candidate
    # é → e, ﬁ → fi: drop what the code page cannot show, keep the letter.
    plain = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    if plain and plain != char and _encodable(plain, codepage):
        return plain
    return "?"


# ---------------------------------------------------------------- rendering


def render_block(
    items: Sequence[Item],
    *,
    profile: str,
    codepage: str,
    columns: int,
    language: Language = "ru",
    code_style: CodeStyle = "auto",
) -> bytes:
    """ESC/POS bytes for ``items``, to go inside a receipt: code page set, no init, no cut.

    Styles are reset at the end (left aligned, normal size, not bold) so the rest of the
    POS's receipt prints as it would have without us.
    """
    out = _Writer(
        profile=profile,
        codepage=codepage,
        columns=columns,
        words=_WORDS.get(language, _WORDS["en"]),
        code_style=code_style,
    )
    for item in items:
        out.item(item)
    out.reset()
    return out.bytes()


def render_job(
    items: Sequence[Item],
    *,
    profile: str,
    codepage: str,
    columns: int,
    language: Language = "ru",
    code_style: CodeStyle = "auto",
) -> bytes:
    """A standalone print job: ``ESC @``, the block, a feed and a partial cut."""
    block = render_block(
        items,
        profile=profile,
        codepage=codepage,
        columns=columns,
        language=language,
        code_style=code_style,
    )
    tail = dummy_printer(profile)
    tail.cut(mode="PART")  # feeds past the tear bar first; a full cut where only that exists
    return INIT + block + bytes(tail.output)


class _Writer:
    """One rendering: a ``Dummy`` printer with the code page fixed and the width known."""

    def __init__(
        self,
        *,
        profile: str,
        codepage: str,
        columns: int,
        words: Mapping[str, str],
        code_style: CodeStyle,
    ) -> None:
        name, _ = escpos_codepage(profile, codepage)
        self.codepage = codepage
        self.columns = columns
        self.words = words
        self.code_style = code_style
        self.p = dummy_printer(profile)
        # Fixed, not python-escpos's automatic switching: the configured page is the one the
        # shop's printer is set up for, and one ESC t at the start is all the block needs.
        self.p.charcode(name)
        media = self.p.profile.profile_data.get("media", {}).get("width", {})
        pixels = media.get("pixels")
        self.dots = pixels if isinstance(pixels, int) else columns * _FONT_A_DOTS

    def bytes(self) -> bytes:
        return bytes(self.p.output)

    def text(self, text: str) -> None:
        self.p.text(printable(text, self.codepage))

    def line(self, text: str = "", *, width: int | None = None) -> None:
        width = width or self.columns
        text = printable(text, self.codepage)
        lines = textwrap.wrap(text, width, break_long_words=True) if text.strip() else [""]
        for chunk in lines:
            self.p.text(chunk + "\n")

    def rule(self) -> None:
        self.p.set(align="left", bold=False, normal_textsize=True)
        self.p.text("-" * self.columns + "\n")

    def reset(self) -> None:
        self.p.set(align="left", bold=False, normal_textsize=True)

    def item(self, item: Item) -> None:
        if isinstance(item, LoyaltySummary):
            self.summary(item)
            return
        kind = item.get("kind")
        if kind == "coupon":
            self.coupon(item)
        elif kind in ("message", "prompt"):
            self.message(item)
        elif kind == "summary":
            self.summary(
                LoyaltySummary(
                    card=str(item.get("card", "")),
                    earned=int(item.get("earned", 0)),
                    redeemed=int(item.get("redeemed", 0)),
                    balance=int(item.get("balance", 0)),
                    pending=int(item.get("pending", 0)),
                    available_from=_date(item.get("available_from")),
                    no_points=tuple(str(n) for n in item.get("no_points") or ()),
                )
            )
        else:
            raise ValueError(f"cannot print an item of kind {kind!r} (coupon, message, summary)")

    def coupon(self, item: Mapping[str, Any]) -> None:
        code = str(item.get("code") or "")
        if not code:
            raise ValueError("a coupon to print needs its code")
        self.rule()
        self.p.set(align="center", bold=True)
        self.line(self.words["coupon"])
        if item.get("title"):
            self.p.set(double_height=True)
            self.line(str(item["title"]))
            self.p.set(normal_textsize=True)
        if item.get("value"):
            self.p.set(double_width=True, double_height=True)
            self.line(str(item["value"]), width=max(self.columns // 2, 1))
            self.p.set(normal_textsize=True)
        self.p.set(bold=False)
        valid = _date(item.get("valid_until"))
        if valid is not None:
            self.line(self.words["valid"].format(date=valid.strftime("%d.%m.%Y")))
        self.code(code)
        self.p.set(align="center", bold=True)
        self.line(code)
        self.rule()

    def code(self, code: str) -> None:
        """The coupon code as a native barcode or QR code, whichever the profile can print."""
        style = self.code_style
        if style == "auto":
            if self.p.profile.supports("barcodeB") and self._barcode_fits(code):
                style = "barcode"
            elif self.p.profile.supports("qrCode"):
                style = "qr"
            else:
                style = "text"
        if style == "barcode":
            if not self._barcode_fits(code):
                logger.warning(
                    "coupon barcode (%d characters) is wider than the paper (%d dots) of "
                    'profile %r; set coupon_code = "qr" or "auto" if it does not print',
                    len(code),
                    self.dots,
                    self.p.profile.profile_data.get("name"),
                )
            self.p.ln()
            # _hw_barcode, not barcode(): barcode() prints to stdout and would fall back to
            # a software image; we choose the native command from the profile ourselves.
            self.p._hw_barcode(
                "{B" + code, "CODE128", 80, _BARCODE_MODULE, "OFF", "A", True, "B", True
            )
            self.p.ln()
        elif style == "qr":
            self.p.set(align="center")
            self.p.ln()
            self.p.qr(code, native=True, size=_QR_MODULE)
            self.p.ln()

    def _barcode_fits(self, code: str) -> bool:
        # CODE128 set B: start, one symbol per character, check symbol (11 modules each)
        # and stop (13); the quiet zone can lie in the paper's unprinted margins.
        modules = 11 * (len(code) + 2) + 13
        return bool(modules * _BARCODE_MODULE <= self.dots)

    def message(self, item: Mapping[str, Any]) -> None:
        self.p.set(align="left")
        title, text = str(item.get("title") or ""), str(item.get("text") or "")
        if title and not repeats_title(title, text):
            self.p.set(bold=True)
            self.line(title)
            self.p.set(bold=False)
        if text:
            for paragraph in text.split("\n"):
                self.line(paragraph)

    def summary(self, s: LoyaltySummary) -> None:
        self.rule()
        self.p.set(align="center", bold=True)
        self.line(self.words["loyalty"])
        self.p.set(align="left", bold=False)
        rows: list[tuple[str, str]] = [(self.words["card"], mask(s.card))]
        if s.redeemed:
            rows.append((self.words["redeemed"], str(s.redeemed)))
        rows.append((self.words["earned"], str(s.earned)))
        if s.earned and s.available_from is not None:
            rows.append((self.words["available_from"], s.available_from.strftime("%d.%m.%Y")))
        rows.append((self.words["balance"], str(s.balance)))
        if s.pending:
            rows.append((self.words["pending"], str(s.pending)))
        for label, value in rows:
            self.pair(label, value)
        if s.no_points:
            self.line(self.words["no_points"])
            for name in s.no_points:
                self.line("  " + name)
        self.rule()

    def pair(self, label: str, value: str) -> None:
        """``label ........ value`` on one line, or the value on its own line when too long."""
        label = printable(label, self.codepage)
        value = printable(value, self.codepage)
        gap = self.columns - len(label) - len(value)
        if gap >= 1:
            self.p.text(label + " " * gap + value + "\n")
        else:
            self.line(label)
            self.p.text(value.rjust(self.columns)[-self.columns :] + "\n")


@dataclass(frozen=True, kw_only=True)
class Layout:
    """How this till's printer lays out what the agent prints (from [devices.printer])."""

    profile: str = "default"
    codepage: str = "cp866"
    columns: int = 42
    language: Language = "ru"
    code_style: CodeStyle = "auto"

    def block(self, items: Sequence[Item]) -> bytes:
        """Bytes to insert into a POS receipt (no init, no cut)."""
        return render_block(items, **self._kw())

    def job(self, items: Sequence[Item]) -> bytes:
        """A standalone job: init, the items, feed and partial cut."""
        return render_job(items, **self._kw())

    def _kw(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "codepage": self.codepage,
            "columns": self.columns,
            "language": self.language,
            "code_style": self.code_style,
        }


def _date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"not a date (YYYY-MM-DD): {value!r}") from exc
