"""A compact change page's cards: their columns named once, each card a row of values.

A till asks head office for its change pages with ``cards=rows`` (``hq/feed.py``): the
page then names its card columns once (``card_columns``) and carries each card as an
array of values in that order (``card_rows``), as the product list's pages do. A head
office from before answers with ``cards``, objects, and the till takes those as ever.

A snapshot is a million cards, nearly all of them plain: no lots and nothing counted at
another till. Checking each as an object, field by field in Python, was a quarter of a
till's first start. Here the page's rows are checked in one call against the same bounds
as :class:`~tillgate.sync.wire.CardChange` (msgspec, in C: lengths, patterns, 64-bit
integers, the statuses), and a plain card stays the checked row it is, written as it is
(:func:`tillgate.agent.store.cards.upsert_chain_rows`). A row with lots or counts becomes
a :class:`~tillgate.sync.wire.CardChange` through the model, as an object would. A
birthday in a row is a month and day (``--03-14``), one of the 366 there are.

The columns the till knows are read by name: a column it does not know is skipped (head
office may add some), one it knows and is not sent takes the model's default, and a page
without ``number`` is refused. Any bad row refuses the whole page, naming the row and the
column.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from pydantic import TypeAdapter, ValidationError, WrapValidator

from tillgate.agent.store.cards import MONTH_DAYS
from tillgate.core.errors import HqBadReply

from . import jsonpieces
from .wire import (
    INT64_MAX,
    INT64_MIN,
    MAX_PROMOTIONS,
    MAX_SPEND_DAYS,
    MAX_USE_DAYS,
    CardChange,
    ChangePage,
    _fast_card,
    parse,
)

# The columns this till reads, in the order of its rows (hq/feed.py CARD_COLUMNS).
COLUMNS = ("number", "holder", "phone_hash", "birthday", "tier", "segments", "clubs",
           "status", "balance", "pending", "lots", "through_seq", "uses", "held")  # fmt: skip
_LOTS, _USES = COLUMNS.index("lots"), COLUMNS.index("uses")
_PHONE_HASH, _BIRTHDAY = COLUMNS.index("phone_hash"), COLUMNS.index("birthday")
# A column not sent: the model's default (a row that lacks "number" is refused first).
_DEFAULTS: dict[str, Any] = {
    name: CardChange.model_fields[name].get_default(call_default_factory=True)
    for name in COLUMNS[1:]
} | {"uses": {}}

_Int64 = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
_NonNeg = Annotated[int, Meta(ge=0, le=INT64_MAX)]
# A pattern checked by msgspec is a regular expression call a value (1-2 µs each): the
# phone hash's digits are checked for the whole page at once, the birthday against the
# set of the 366 month-days, after the call.
_Row = tuple[
    Annotated[str, Meta(min_length=1, max_length=64)],
    str,
    Annotated[str, Meta(min_length=64, max_length=64)] | None,
    str | None,
    str | None,
    list[str],
    list[str],
    Literal["active", "new", "blocked"],
    _Int64,
    _NonNeg,
    list[Any],
    _NonNeg,
    dict[str, Any],
    _NonNeg,
]
_ROWS = list[_Row]
_CARD = TypeAdapter(Annotated[CardChange, WrapValidator(_fast_card)])
_HEX = re.compile(r"[0-9a-f]*")
_AT = re.compile(r"^(?P<why>.*) - at `\$\[(?P<row>\d+)\](?:\[(?P<column>\d+)\])?")


# A card's counts at the other tills as :class:`~tillgate.sync.wire.ChainCounts` bounds
# them, decoded in C: what a card snapshot's ``uses`` text holds, for most cards that have
# any (:func:`counts_text`). Unknown keys are ignored, as the model ignores them.
_PromotionId = Annotated[str, Meta(min_length=1, max_length=64)]


class _PromotionUses(msgspec.Struct):
    total: _NonNeg = 0
    days: Annotated[dict[date, _NonNeg], Meta(max_length=MAX_USE_DAYS)] = {}


class _Counts(msgspec.Struct):
    visits: _NonNeg = 0
    spend: Annotated[list[tuple[date, _Int64]], Meta(max_length=MAX_SPEND_DAYS)] = []
    uses: Annotated[dict[_PromotionId, _PromotionUses], Meta(max_length=MAX_PROMOTIONS)] = {}
    stamps: Annotated[dict[_PromotionId, _NonNeg], Meta(max_length=MAX_PROMOTIONS)] = {}


_COUNTS = msgspec.json.Decoder(_Counts)
_encode_counts = msgspec.json.Encoder().encode


def counts_text(text: str) -> str | None:
    """A card's ``uses`` JSON as the till keeps it (every field, in the model's order), or
    None if it is not what :class:`~tillgate.sync.wire.ChainCounts` takes as it is (the
    caller then goes the model's way, whose error names the field)."""
    try:
        return _encode_counts(_COUNTS.decode(text)).decode()
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


class CheckedRows(list[tuple[Any, ...]]):
    """A compact page's rows as :func:`loads` decoded them: already checked against the
    bounds of :data:`_ROWS`, in :data:`COLUMNS` order."""


# A change page's top-level fields, each as whatever JSON value it holds, and its card
# rows as their JSON text: one pass of msgspec over the page, then one over its rows.
_PAGE = msgspec.json.Decoder(
    msgspec.defstruct(
        "_Page",
        [(name, Any, msgspec.UNSET) for name in ChangePage.model_fields]
        + [("card_columns", Any, msgspec.UNSET), ("card_rows", msgspec.Raw, msgspec.UNSET)],
    )
)
_ROW_DECODER = msgspec.json.Decoder(list[_Row])


def loads(body: bytes) -> Any:
    """A change page's JSON, its card rows (in :data:`COLUMNS` order) decoded and checked
    in one call as :class:`CheckedRows` (a page of 1,000: ≈ 0.7 ms, where parsing them
    and checking them apart took three times as long). A body msgspec does not take (not
    an object, a number beyond 64 bits, …) goes :mod:`.jsonpieces`' way, so every refusal
    reads as before; other columns' rows are checked by :func:`cards_of`."""
    try:
        page = _PAGE.decode(body)
    except msgspec.DecodeError:  # ValidationError too
        return jsonpieces.loads(body)
    data = {f: v for f in page.__struct_fields__ if (v := getattr(page, f)) is not msgspec.UNSET}
    rows = data.get("card_rows")
    if isinstance(rows, msgspec.Raw):
        if data.get("card_columns") != list(COLUMNS):
            data["card_rows"] = msgspec.json.decode(rows)
        else:
            try:
                data["card_rows"] = CheckedRows(_ROW_DECODER.decode(rows))
            except msgspec.ValidationError as exc:
                raise _bad(_where(str(exc))) from exc
    return data


def change_page(data: Any) -> ChangePage:
    """A change page's JSON as :class:`ChangePage`, its ``card_rows`` (if any) checked
    here; anything wrong is :class:`HqBadReply` naming it."""
    if not isinstance(data, dict) or "card_rows" not in data:
        return parse(ChangePage, data, what="change page")
    rest = dict(data)
    columns, rows = rest.pop("card_columns", None), rest.pop("card_rows")
    plain, cards = cards_of(columns, rows)
    return parse(ChangePage, rest, what="change page").with_rows(plain, cards)


def cards_of(columns: Any, rows: Any) -> tuple[list[tuple[Any, ...]], list[CardChange]]:
    """A compact page's cards: the plain ones as checked rows in :data:`COLUMNS` order,
    the others (with lots or counts) as :class:`CardChange`."""
    if (
        type(columns) is not list
        or not all(type(c) is str for c in columns)
        or "number" not in columns
    ):
        raise _bad("card_columns: must be a list of column names, number among them")
    if not isinstance(rows, list):
        raise _bad("card_rows: must be a list of rows")
    checked: list[tuple[Any, ...]]
    if type(rows) is CheckedRows:
        checked = rows
    else:
        if tuple(columns) != COLUMNS:
            rows = _in_order(columns, rows)
        try:
            checked = msgspec.convert(rows, _ROWS)
        except msgspec.ValidationError as exc:
            raise _bad(_where(str(exc))) from exc
    if not _HEX.fullmatch("".join([row[_PHONE_HASH] or "" for row in checked])):
        n = next(n for n, row in enumerate(checked) if not _HEX.fullmatch(row[_PHONE_HASH] or ""))
        raise _bad(f"card_rows.{n} (phone_hash): must be 64 hex digits (0-9, a-f)")
    plain: list[tuple[Any, ...]] = []
    cards: list[CardChange] = []
    for n, row in enumerate(checked):
        if row[_BIRTHDAY] is not None and row[_BIRTHDAY] not in MONTH_DAYS:
            raise _bad(f"card_rows.{n} (birthday): {row[_BIRTHDAY]!r} is no --MM-DD of a year")
        if row[_LOTS] or row[_USES]:
            cards.append(_card(n, row))
        else:
            plain.append(row)
    return plain, cards


def _in_order(columns: list[str], rows: list[Any]) -> list[Any]:
    """Rows of head office's ``columns`` as rows of :data:`COLUMNS` (the first of a name
    twice; a column not known skipped, one not sent its default)."""
    at = {c: i for i, c in reversed(list(enumerate(columns)))}
    picks = [(at.get(c), _DEFAULTS.get(c)) for c in COLUMNS]
    width = len(columns)
    out: list[Any] = []
    for n, row in enumerate(rows):
        if type(row) is not list or len(row) != width:
            raise _bad(f"card_rows.{n}: is not a row of {width} values")
        out.append([default if i is None else row[i] for i, default in picks])
    return out


def _card(n: int, row: tuple[Any, ...]) -> CardChange:
    try:
        return _CARD.validate_python(dict(zip(COLUMNS, row, strict=True)))
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise _bad(f"card_rows.{n} ({path}): {first['msg']}") from exc


def _where(message: str) -> str:
    """msgspec's ``Expected … - at `$[12][3]``` as ``card_rows.12 (birthday): Expected …``."""
    match = _AT.match(message)
    if match is None:
        return f"card_rows: {message}"
    column = match["column"]
    named = f" ({COLUMNS[int(column)]})" if column is not None else ""
    return f"card_rows.{match['row']}{named}: {match['why']}"


def _bad(why: str) -> HqBadReply:
    return HqBadReply(f"head office sent a bad change page: {why}")
