"""The change feed tills pull: program, cards with balances, coupon uses and revocations.

The ``changes`` table holds one row per thing that changed (a card, the program, a coupon
code, a promotion's budget), moved to a new, higher id each time it changes again. A page
is the next ``limit`` rows after the till's cursor, read in one snapshot with everything
they name, so:

* a page never names a thing twice, and ``cursor=0`` reads a full snapshot;
* a till that stores the page and its cursor in one transaction never misses a change:
  ids are handed out under a lock held to commit (:meth:`~tillgate.hq.db.Tx.next_ids`), so
  no id below one the till has seen can still appear later.

A card carries, in ``uses``, what every *other* till counted of it, and ``budgets`` the
points every other till gave from each budget on the page (:mod:`tillgate.hq.counters`):
the requesting till adds its own counts, which it knows better and sooner. A budget is a
change of its own (kind ``budget``), so budgets are paged and compacted like cards and
count towards a page's ``limit`` as the till counts them.

A thousand tills pull nearly the same pages. A card's part alike for every till (its
fields, folded points and lots, and every till's counts) is built once per change of the
card and kept by the process as the JSON it is sent as (:mod:`tillgate.hq.feedparts`,
keyed so that it is never stale); each page adds the requesting till's own part to it:
``through_seq``, ``held`` and ``uses`` (every till's counts less its own), each read for
the whole page in one statement per 500 cards.

A till may ask for the page's cards as rows (``cards=rows``): ``card_columns`` names the
columns once (:data:`CARD_COLUMNS`) and ``card_rows`` holds each card as an array of its
values in that order, as the product list's pages do. A snapshot of a million cards is
then a third less JSON, and the till checks a column's values, not a million objects'
keys. A till that does not ask (one from before) gets ``cards``, objects as ever.

The product list is not in the page: a page names its version and size (``products``) when
it changed, and the till downloads it apart, in pages of its own (:mod:`tillgate.hq.products`).

A till is sent what it needs of a card holder and no more (:func:`till_values`, docs/
security.md "Personal data"): a display name, a keyed hash of the phone to look it up by,
the birthday's month and day, tier, segments and clubs; never the full name, the phone or
the birth year. Every page carries the chain's phone look-up key (``lookup_key``) so that
the till can hash what the cashier types; the cards on the page are hashed with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import msgspec

from tillgate.core.cards import display_name, phone_lookup_hash
from tillgate.core.errors import InvalidRequest
from tillgate.core.rules.tiers import month_day_text, parse_birthday

from . import counters, couponkeys, holds, products
from .couponkeys import HqKeys
from .db import Database, Row, Tx, marks
from .feedparts import CardParts, Part
from .fold import CardState, fold
from .folds import among, parts
from .ledger import card_entries, chunks, fold_entry
from .tills import TillId, touch
from .wire import parse_ts, ts, whole

DEFAULT_LIMIT, MAX_LIMIT = 500, 2000
# Commit ids are 64-bit signed integers in both databases: a cursor beyond that is no id
# HQ could have handed out, and SQLite cannot even compare one (it was a 500).
MAX_CURSOR = 2**63 - 1
# A till's pull is noted at most this often (the pages of one sync come back to back).
SEEN_EVERY = timedelta(seconds=5)
# How a page may carry its cards: JSON objects (every till before), or a compact page's rows.
SHAPES = ("objects", "rows")
# A compact page's columns: a card's part alike for every till, then the till's own.
CARD_COLUMNS = ("number", "holder", "phone_hash", "birthday", "tier", "segments", "clubs",
                "status", "balance", "pending", "lots", "through_seq", "uses", "held")  # fmt: skip
_SHARED = CARD_COLUMNS[:11]
# What a card's shared part is built from, in this order (:func:`till_values`).
CARD_SQL = "number, holder, phone, birthday, tier, segments, clubs, status"


def _names(text: str) -> list[Any]:
    # Most cards are in no segment and no club: a million json.loads("[]") is a second.
    return [] if text == "[]" else list(json.loads(text))


def card_fields(row: Row, state: CardState) -> dict[str, Any]:
    """A card's own fields and its points as HQ folds them (feed and ``hq cards show``)."""
    return {
        "number": row["number"],
        "holder": row["holder"],
        "phone": row["phone"],
        "birthday": row["birthday"],
        "tier": row["tier"],
        "segments": _names(row["segments"]),
        "clubs": _names(row["clubs"]),
        "status": row["status"],
        "balance": state.balance,
        "pending": state.pending,
    }


@lru_cache(maxsize=40_000)
def _month_day(birthday: str) -> str:
    # A million cards' birthdays are a few tens of thousands of dates: each parsed once.
    return month_day_text(parse_birthday(birthday))


def till_values(row: tuple[Any, ...], state: CardState, *, lookup_key: bytes) -> list[Any]:
    """A card's shared values as a till may hold them (no full name, phone or birth year),
    in the order of :data:`CARD_COLUMNS`, from its ``cards`` row read as :data:`CARD_SQL`."""
    number, holder, phone, birthday, tier, segments, clubs, status = row
    return [
        number,
        display_name(holder or ""),
        phone_lookup_hash(lookup_key, phone) if phone else None,
        _month_day(birthday) if birthday else None,
        tier,
        _names(segments),
        _names(clubs),
        status,
        state.balance,
        state.pending,
        lots_out(state) if state.lots else [],
    ]


def lots_out(state: CardState) -> list[dict[str, Any]]:
    """A card's lots: the points it can spend now or later, and when they expire."""
    return [
        {
            "points": lot.points,
            "available_from": ts(lot.available_from),
            "expires_at": ts(lot.expires_at) if lot.expires_at else None,
        }
        for lot in state.lots
    ]


def _rows_after(tx: Tx, cursor: int, n: int, cards_through: int) -> list[Row]:
    """The first ``n`` changes after ``cursor``, those of kind ``card`` up to
    ``cards_through`` left out (a till that has them from a card snapshot)."""
    sql = "SELECT kind, key, id FROM changes WHERE id > ?{} ORDER BY id LIMIT ?"
    if cursor >= cards_through:
        return tx.all(sql.format(""), (cursor, n))
    # The snapshot's own changes: a scan of its span once (a few rows that are no card).
    rows = tx.all(sql.format(" AND id <= ? AND kind <> 'card'"), (cursor, cards_through, n))
    if len(rows) < n:
        rows += tx.all(sql.format(""), (cards_through, n - len(rows)))
    return rows


def _rows_by(tx: Tx, table: str, column: str, keys: list[str]) -> list[Row]:
    out: list[Row] = []
    for part in parts(tx, sorted(keys)):
        where, args = among(tx, column, part)
        out += tx.all(f"SELECT * FROM {table} WHERE {where} ORDER BY {column}", args)
    return out


def _states(tx: Tx, numbers: list[str], now: datetime) -> dict[str, CardState]:
    """Each card's folded state; the many cards with no entries share one empty fold
    (a snapshot of a million cards folded a million empty histories, 10 µs each)."""
    entries = card_entries(tx, numbers)
    empty = fold([], now)
    return {n: fold([fold_entry(r) for r in rows], now) if rows else empty
            for n, rows in entries.items()}  # fmt: skip


# Compact JSON as the reply's body holds it (FastAPI's generic encoder walked every card's
# every field again, as long as building the page itself); one encoder for every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _json(value: object) -> bytes:
    return _ENCODER.encode(value).encode()


# A card's part, the bulk of a page, goes through msgspec's encoder: the same compact
# UTF-8 JSON for its plain values, at a fifth of the cost.
_encode = msgspec.json.Encoder().encode


def _card_rows(tx: Tx, numbers: list[str]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for part in chunks(sorted(numbers)):
        out += tx.tuples(
            f"SELECT {CARD_SQL} FROM cards WHERE number IN ({marks(len(part))}) ORDER BY number",
            list(part),
        )
    return out


def _card_parts(
    tx: Tx, ids: dict[str, int], now: datetime, lookup_key: bytes, parts: CardParts | None
) -> dict[str, Part]:
    """Each card's part alike for every till (:mod:`tillgate.hq.feedparts`), by number:
    from ``parts`` when one made at the card's change ``ids[number]`` holds at ``now``,
    else read, folded, counted and encoded here (and kept in ``parts``)."""
    out: dict[str, Part] = {}
    todo: list[str] = []
    for number, change in ids.items():
        part = parts.get(number, change, now) if parts is not None else None
        if part is None:
            todo.append(number)
        else:
            out[number] = part
    if todo:
        rows = _card_rows(tx, todo)
        found = [r[0] for r in rows]
        states = _states(tx, found, now)
        today = now.astimezone(UTC).date()
        midnight = datetime.combine(today + timedelta(days=1), time(), UTC)
        counts = counters.totals(tx, found, today=today)
        for r in rows:
            number = r[0]
            state = states[number]
            values = till_values(r, state, lookup_key=lookup_key)
            # No lots: nothing matures or expires, the part holds until the day ends.
            lot_due = state.balance_until(now) if state.lots else None
            until = min(lot_due, midnight) if lot_due is not None else midnight
            uses = counters.others_of(number, counts[number])
            out[number] = part = Part(
                change=ids[number],
                since=now,
                until=until,
                # open: the till's own fields follow
                body=_encode(dict(zip(_SHARED, values, strict=True)))[:-1],
                row=_encode(values)[:-1],
                totals=counts[number],
                uses=_json(uses) if uses else b"{}",
            )
            if parts is not None:
                parts.put(number, part)
    return {number: out[number] for number in sorted(out)}


def fresh_rows(
    tx: Tx, rows: list[tuple[Any, ...]], now: datetime, lookup_key: bytes
) -> list[list[Any]]:
    """The cards of ``rows`` (read as :data:`CARD_SQL`, ordered by number) as a page
    would bring them to a till with nothing of its own at head office (no entries pushed,
    nothing counted, nothing held): its values in :data:`CARD_COLUMNS` order but
    ``through_seq`` (0 for such a till), ``uses`` every till's counts (``{}``: none) and
    ``held`` what every open receipt holds. A card snapshot's rows
    (:mod:`tillgate.hq.snapshots`)."""
    numbers = [r[0] for r in rows]
    states = _states(tx, numbers, now)
    counts = counters.totals(tx, numbers, today=now.astimezone(UTC).date())
    held = holds.held_elsewhere(tx, numbers, "", now)  # no till is "": every till's holds
    out = []
    for r in rows:
        number = r[0]
        values = till_values(r, states[number], lookup_key=lookup_key)
        values += [counters.others_of(number, counts[number]) or {}, held.get(number, 0)]
        out.append(values)
    return out


def _uses(number: str, part: Part, own: counters.Own | None) -> bytes:
    """The card's ``uses`` for a till that counted ``own`` of it (None: nothing)."""
    if own is None:
        return part.uses
    uses = counters.others_of(number, part.totals, own)
    return _json(uses) if uses else b"{}"


@dataclass(frozen=True, kw_only=True)
class Page:
    """A page as the reply's body, and when its till pulled before (:func:`pulled`)."""

    body: bytes
    last_pull: str | None


def read_page(
    tx: Tx,
    till: TillId,
    *,
    cursor: int,
    limit: int,
    now: datetime,
    lookup_key: bytes,
    coupon_keys: HqKeys | None = None,
    parts: CardParts | None = None,
    row: Row | None = None,
    shape: str = "objects",
    cards_through: int = 0,
) -> Page:
    """The page of changes after ``cursor`` for ``till``, read in ``tx`` (its cards' phones
    hashed with ``lookup_key``, which the page carries too).

    ``cursor`` and ``limit`` come from the query string (FastAPI hands over any integer,
    however long), so they are checked before they reach SQL; the rest comes from HQ's
    own database. ``parts``: the cards' shared parts this process keeps
    (:mod:`tillgate.hq.feedparts`); None builds every card afresh. ``row``: the till's row
    as its credential's check read it in ``tx`` (:func:`~tillgate.hq.tills.ask_till`), else
    read here. ``shape``: the cards as objects or as a compact page's rows (:data:`SHAPES`).
    ``cards_through``: the till holds every card as of that change id from a card snapshot
    (:mod:`tillgate.hq.snapshots`), so the page leaves out the ``card`` changes up to it.
    """
    cursor = whole("cursor", cursor, 0, MAX_CURSOR)
    limit = whole("limit", limit, 1, MAX_LIMIT)
    cards_through = whole("cards_through", cards_through, 0, MAX_CURSOR)
    if shape not in SHAPES:
        raise InvalidRequest(f"cards: must be one of {', '.join(SHAPES)}")
    if parts is not None and parts.lookup_key != lookup_key:
        parts = None  # made with another key: of no use here
    rows = _rows_after(tx, cursor, limit + 1, cards_through)
    more = len(rows) > limit
    rows = rows[:limit]
    keys: dict[str, list[str]] = {}
    for r in rows:
        keys.setdefault(r["kind"], []).append(r["key"])
    mine = row or tx.one("SELECT through_seq, last_pull FROM tills WHERE id = ?", (till.id,))
    through = int(mine["through_seq"] or 0) if mine is not None else 0
    last_pull = mine["last_pull"] if mine is not None else None
    program = None
    if "program" in keys:
        latest = tx.one("SELECT version, body FROM programs ORDER BY version DESC LIMIT 1")
        if latest is not None:
            program = {"version": str(latest["version"]), "body": json.loads(latest["body"])}
    ids = {r["key"]: int(r["id"]) for r in rows if r["kind"] == "card"}
    cards = _card_parts(tx, ids, now, lookup_key, parts) if ids else {}
    numbers = list(cards)
    # The till's own part, asked at once (on PostgreSQL: one round trip), then read.
    asked_own = counters.ask_mine(tx, numbers, till=till.id)
    asked_held = holds.ask_held_elsewhere(tx, numbers, till.id, now)
    asked_budgets = counters.ask_budgets(tx, keys.get("budget", []), till=till.id)
    own = counters.mine_of(asked_own, today=now.astimezone(UTC).date())
    held = holds.held_of(asked_held)
    budgets = counters.budgets_of(asked_budgets)
    used = [
        {
            "code": r["code"],
            "promotion_id": r["promotion_id"] or "",
            "till": r["till"],
            "receipt_id": r["receipt_id"],
            "used_at": r["used_at"],
        }
        for r in _rows_by(tx, "coupons_used", "code", keys.get("coupon_used", []))
        if r["till"] != till.id
    ]
    revoked = [
        {"code": r["code"], "reason": r["reason"], "revoked_at": r["revoked_at"]}
        for r in _rows_by(tx, "coupons_revoked", "code", keys.get("coupon_revoked", []))
    ]
    # The product list's version and size; the till downloads it apart (hq/products.py).
    product_list = products.announce(tx) if products.CHANGE_KIND in keys else None
    # The chain's coupon keys, whole, whenever they changed (a rotation, a revocation).
    key_set = None
    if coupon_keys is not None and couponkeys.CHANGE_KIND in keys:
        key_set = couponkeys.feed_out(tx, coupon_keys)
    # A card: its shared part, then the till's own: ``through_seq``; ``uses``, what the
    # other tills counted (:func:`tillgate.hq.counters.others_of`); ``held``, what the other
    # tills' open receipts hold at head office (:func:`tillgate.hq.holds.held_elsewhere`).
    if shape == "rows":
        listed = b'"card_columns":%s,"card_rows":[' % _json(CARD_COLUMNS)
        card_json = b",".join(
            b"%s,%d,%s,%d]" % (part.row, through, _uses(n, part, own.get(n)), held.get(n, 0))
            for n, part in cards.items()
        )
    else:
        listed = b'"cards":['
        card_json = b",".join(
            b'%s,"through_seq":%d,"uses":%s,"held":%d}'
            % (part.body, through, _uses(n, part, own.get(n)), held.get(n, 0))
            for n, part in cards.items()
        )
    last = int(rows[-1]["id"]) if rows else cursor
    if not more and cursor < cards_through:
        last = max(last, cards_through)  # every change up to it is the snapshot's or here
    head = {
        "cursor": last,
        "more": more,
        "lookup_key": lookup_key.hex(),
        "program": program,
    }
    tail = {
        "coupons_revoked": revoked,
        "coupons_used": used,
        "coupon_keys": key_set,
        "budgets": budgets,
        "products": product_list,
    }
    body = _json(head)[:-1] + b"," + listed + card_json + b"]," + _json(tail)[1:]
    return Page(body=body, last_pull=last_pull)


def pulled(db: Database, till: TillId, page: Page, now: datetime) -> None:
    """The till has its page: note it seen (:func:`~tillgate.hq.tills.touch`) unless it was
    in the last :data:`SEEN_EVERY` (the pages of one sync, asked back to back, write once).
    Not worth a disk flush: a time lost to a power cut only keeps the till's expired holds
    a pull longer (:mod:`tillgate.hq.holds`), the safe side."""
    if page.last_pull is not None and parse_ts(page.last_pull) > now - SEEN_EVERY:
        return
    with db.write(durable=False) as wtx:
        touch(wtx, till.id, now)


def changes(
    db: Database,
    till: TillId,
    *,
    cursor: int,
    limit: int,
    now: datetime,
    lookup_key: bytes,
    coupon_keys: HqKeys | None = None,
    parts: CardParts | None = None,
    shape: str = "objects",
    cards_through: int = 0,
) -> bytes:
    """:func:`read_page` in a read transaction of its own, then :func:`pulled`: the body."""
    with db.read() as tx:
        page = read_page(
            tx,
            till,
            cursor=cursor,
            limit=limit,
            now=now,
            lookup_key=lookup_key,
            coupon_keys=coupon_keys,
            parts=parts,
            shape=shape,
            cards_through=cards_through,
        )
    pulled(db, till, page, now)
    return page.body
