"""Cards as head office and a standalone till receive them: the record and the CSV file.

``parse_csv`` reads a cards file (``number,holder,phone,birthday,tier,segments,clubs,status,
balance``) into :class:`CardRecord` values and a list of ``row N: reason`` problems.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from .cards import mask, normalize_phone

STATUSES = ("active", "new", "blocked")


@dataclass(frozen=True, kw_only=True)
class CardRecord:
    number: str
    holder: str = ""
    phone: str | None = None
    birthday: date | None = None
    tier: str | None = None
    segments: tuple[str, ...] = ()
    clubs: tuple[str, ...] = ()
    status: str = "active"
    last_birthday_bonus: int | None = None
    opening_balance: int = 0  # import only: carried over from a previous system
    extra: dict[str, str] = field(default_factory=dict)


class CsvError(ValueError):
    """One bad row of a cards CSV (row number and reason)."""


REQUIRED_COLUMNS = ("number",)
KNOWN_COLUMNS = (
    "number",
    "holder",
    "phone",
    "birthday",
    "tier",
    "segments",
    "clubs",
    "status",
    "balance",
)


def parse_csv(text: str, *, number_pattern: str) -> tuple[list[CardRecord], list[str]]:
    """Parse a cards CSV into records and a list of ``row N: reason`` problems.

    Good rows are kept even when others are bad; the caller reports the problems.
    """
    import re

    pattern = re.compile(number_pattern)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        return [], [f"header: missing column(s) {', '.join(missing)}"]
    unknown = [h for h in header if h not in KNOWN_COLUMNS]
    problems: list[str] = [f"header: unknown column {h!r} ignored" for h in unknown]
    cards: list[CardRecord] = []
    seen: set[str] = set()
    for n, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k}
        number = re.sub(r"[\s-]", "", row.get("number", ""))
        try:
            if not pattern.match(number):
                raise CsvError(f"card number {mask(number)!r} does not match the card pattern")
            if number in seen:
                raise CsvError(f"card {mask(number)} appears twice")
            phone = None
            if row.get("phone"):
                phone = normalize_phone(row["phone"])
                if phone is None:
                    raise CsvError(f"phone {row['phone']!r} is not a phone number")
            birthday = None
            if row.get("birthday"):
                try:
                    birthday = date.fromisoformat(row["birthday"])
                except ValueError as exc:
                    raise CsvError(f"birthday {row['birthday']!r} is not YYYY-MM-DD") from exc
            status = row.get("status") or "active"
            if status not in STATUSES:
                raise CsvError(f"status {status!r} is not one of {', '.join(STATUSES)}")
            opening = 0
            if row.get("balance"):
                try:
                    value = Decimal(row["balance"])
                except ArithmeticError as exc:
                    raise CsvError(f"balance {row['balance']!r} is not a number") from exc
                if value != value.to_integral_value() or value < 0:
                    raise CsvError("balance must be a whole number of points >= 0")
                opening = int(value)
            cards.append(
                CardRecord(
                    number=number,
                    holder=row.get("holder", ""),
                    phone=phone,
                    birthday=birthday,
                    tier=row.get("tier") or None,
                    segments=_split(row.get("segments", "")),
                    clubs=_split(row.get("clubs", "")),
                    status=status,
                    opening_balance=opening,
                )
            )
            seen.add(number)
        except CsvError as exc:
            problems.append(f"row {n}: {exc}")
    return cards, problems


def _split(value: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.replace(",", ";").split(";") if s.strip())
