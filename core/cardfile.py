"""Cards as head office and a standalone till receive them: the record and the CSV file.

``read_rows`` reads a cards file (``number,holder,phone,birthday,tier,segments,clubs,status,
balance``) row by row into :class:`CardRecord` values and a list of ``row N: reason``
problems (``read_values``: the same rows as plain tuples, for a bulk load); ``parse_csv``
does the same for a small file's text in memory. The till's standalone cards file and head
office's import share them.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import operator
import re
from collections.abc import Iterable, Iterator
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

    Good rows are kept even when others are bad; the caller reports the problems. For a
    small file in memory; a file of any size is read row by row with :func:`read_rows`.
    """
    problems: list[str] = []
    seen: set[str] = set()
    cards = [
        record
        for _, record in read_rows(
            io.StringIO(text), number_pattern=number_pattern, problems=problems, seen=seen
        )
    ]
    return cards, problems


def read_rows(
    lines: Iterable[str],
    *,
    number_pattern: str,
    problems: list[str],
    seen: set[str] | None = None,
) -> Iterator[tuple[int, CardRecord]]:
    """The good rows of a cards CSV one by one, with their row numbers (the header is 1).

    ``lines``: the file's text, line by line (a text file opened with ``newline=""``).
    Each bad row's ``row N: reason`` is appended to ``problems`` as it is met. ``seen``:
    the numbers of the good rows so far, to refuse a number met twice; None when the
    caller finds repeated numbers itself, with :func:`twice`, on a table too big to keep
    in memory. Reading errors (:class:`OSError`, :class:`UnicodeDecodeError`,
    :class:`csv.Error`) come out of the iteration as they happen.
    """
    for n, number, holder, phone, birthday, tier, segments, clubs, status, opening in read_values(
        lines, number_pattern=number_pattern, problems=problems, seen=seen
    ):
        record = CardRecord(
            number=number,
            holder=holder,
            phone=phone,
            birthday=date.fromisoformat(birthday) if birthday else None,
            tier=tier,
            segments=segments,
            clubs=clubs,
            status=status,
            opening_balance=opening,
        )
        yield n, record


# A good row as plain values: row number, number, holder, phone (E.164), birthday
# (YYYY-MM-DD), tier, segments, clubs, status, opening balance.
CardValues = tuple[
    int, str, str, str | None, str | None, str | None, tuple[str, ...], tuple[str, ...], str, int
]


def read_values(
    lines: Iterable[str],
    *,
    number_pattern: str,
    problems: list[str],
    seen: set[str] | None = None,
) -> Iterator[CardValues]:
    """:func:`read_rows` as plain tuples (:data:`CardValues`), with the same checks and the
    same problems: what a bulk load of a million rows reads, with no record per row."""
    pattern = re.compile(number_pattern)
    # csv.reader and the known columns' positions in the header (not DictReader, not a
    # dict per row): the same rows, read at a fraction of the cost.
    reader = csv.reader(_without_bom(lines))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        problems.append(f"header: missing column(s) {', '.join(missing)}")
        return
    problems += [f"header: unknown column {h!r} ignored" for h in header if h not in KNOWN_COLUMNS]
    # A column named twice: its last one counts (as a dict of the row would have it).
    at = {h: i for i, h in enumerate(header) if h in KNOWN_COLUMNS}
    width = max(at.values()) + 1
    pad = [""] * width
    # The known columns of a row with an empty one appended (index -1: a column the file
    # does not have), in KNOWN_COLUMNS order.
    known = operator.itemgetter(*(at.get(c, -1) for c in KNOWN_COLUMNS))
    strip = str.strip
    n = 1
    for raw in reader:
        if not raw:
            continue  # a blank line is no row (as DictReader skips it)
        n += 1
        if len(raw) < width:  # a short row: its missing columns are empty
            raw += pad
        raw.append("")
        try:
            values = _values(n, list(map(strip, known(raw))), pattern, seen)
        except CsvError as exc:
            problems.append(f"row {n}: {exc}")
            continue
        if seen is not None:
            seen.add(values[1])
        yield values


def json_list(values: tuple[str, ...]) -> str:
    """Segments or clubs as the data files keep them (a JSON list, UTF-8 as it is)."""
    return _json_list(values) if values else "[]"


@functools.lru_cache(maxsize=1024)
def _json_list(values: tuple[str, ...]) -> str:
    # A file names a few segments and clubs a million times: each list is encoded once.
    return json.dumps(list(values), ensure_ascii=False)


def twice(row: int, number: str) -> str:
    """The problem of a row whose card number an earlier good row already had."""
    return f"row {row}: card {mask(number)} appears twice"


def _without_bom(lines: Iterable[str]) -> Iterator[str]:
    """The lines, the first without a byte order mark: the rest as they come, with no
    Python frame a line (a generator's ``yield from`` cost 0.25 s at 1M lines)."""
    it = iter(lines)
    for first in it:
        return itertools.chain((first.lstrip("\ufeff"),), it)
    return it


def _values(n: int, row: list[str], pattern: re.Pattern[str], seen: set[str] | None) -> CardValues:
    """One row's values, in :data:`KNOWN_COLUMNS` order and stripped, checked."""
    number, holder, phone, birthday, tier, segments, clubs, status, balance = row
    if not number.isdigit():  # digits only (most files): no separator to take out
        number = _SEPARATORS.sub("", number)
    if not pattern.match(number):
        raise CsvError(f"card number {mask(number)!r} does not match the card pattern")
    if seen is not None and number in seen:
        raise CsvError(f"card {mask(number)} appears twice")
    e164: str | None = None
    if phone:
        # A number already written as E.164 (+7 and ten digits) is what normalize_phone
        # returns for it: most files' phones skip its parsing.
        e164 = phone if _E164_RU.fullmatch(phone) else normalize_phone(phone)
        if e164 is None:
            raise CsvError(f"phone {phone!r} is not a phone number")
    if birthday:
        try:  # any ISO form date.fromisoformat takes (20240131 too), as YYYY-MM-DD
            day = date.fromisoformat(birthday)
            if len(birthday) != 10 or birthday[7] != "-":  # YYYY-MM-DD (most) kept as is
                birthday = day.isoformat()
        except ValueError as exc:
            raise CsvError(f"birthday {birthday!r} is not YYYY-MM-DD") from exc
    status = status or "active"
    if status not in STATUSES:
        raise CsvError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    opening = 0
    if balance:
        if balance.isascii() and balance.isdigit():  # whole points, as most files write them
            opening = int(balance)
        else:
            try:
                value = Decimal(balance)
            except ArithmeticError as exc:
                raise CsvError(f"balance {balance!r} is not a number") from exc
            if not value.is_finite() or value != value.to_integral_value() or value < 0:
                raise CsvError("balance must be a whole number of points >= 0")
            opening = int(value)
    return (
        n,
        number,
        holder,
        e164,
        birthday or None,
        tier or None,
        _split(segments) if segments else (),
        _split(clubs) if clubs else (),
        status,
        opening,
    )


_E164_RU = re.compile(r"\+7[0-9]{10}")
_SEPARATORS = re.compile(r"[\s-]")


@functools.lru_cache(maxsize=1024)
def _split(value: str) -> tuple[str, ...]:
    # A file names a few lists of segments and clubs a million times: each split once.
    if not value:
        return ()
    return tuple(s.strip() for s in value.replace(",", ";").split(";") if s.strip())
