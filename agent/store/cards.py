"""Cards in the till's cache: lookup by number or phone, import, first-use registration.

What a card row holds depends on where the card came from (docs/security.md, "Personal
data"). A standalone shop's own cards file is kept as it is (``origin`` ``import``): full
name, phone, birthday. A chain's card comes from head office (``hq``) and keeps what a
till needs alone: the holder's display name (``Анна И.``), the keyed hash of the phone
(``phone_hash``, its 32 bytes, looked up with the chain's key) and the birthday's month and day
(``--03-14``); :func:`upsert` never writes more of one, whoever calls it.

The chain's phone look-up key comes with every page of head office's change feed and is
kept in its own 0600 file beside the data file (``keys/lookup.key``), never in it: a copy
of the data file alone does not let anyone test guessed phones against the hashes.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from tillgate.core.cardfile import CardRecord, json_list
from tillgate.core.cards import display_name, phone_lookup_hash
from tillgate.core.errors import StoreError
from tillgate.core.files import write_secret
from tillgate.core.rules.tiers import MONTH_DAY_YEAR, month_day_text, parse_birthday

from . import meta
from .ledger import ts

LOOKUP_KEY_FILE = "lookup.key"
_HEX = re.compile(r"^[0-9a-f]{32,256}$")
# A data file in memory (tests) has no folder: its key stays in memory too, in ``meta``.
_LOOKUP_KEY_META = "sync.lookup_key"


def _key_file(conn: sqlite3.Connection) -> Path | None:
    folder = meta.keys_folder(conn)
    return None if folder is None else folder / LOOKUP_KEY_FILE


def lookup_key(conn: sqlite3.Connection) -> str | None:
    """The chain's phone look-up key (hex) as head office last sent it; None before."""
    path = _key_file(conn)
    if path is None:
        return meta.get(conn, _LOOKUP_KEY_META)
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read the phone look-up key {path}: {exc}") from exc
    if not _HEX.match(key):
        raise StoreError(f"the phone look-up key {path} is not a hex key")
    return key


def _row_to_card(row: sqlite3.Row) -> CardRecord:
    return CardRecord(
        number=row["number"],
        holder=row["holder"],
        phone=row["phone"],
        birthday=parse_birthday(row["birthday"]) if row["birthday"] else None,
        tier=row["tier"],
        segments=tuple(json.loads(row["segments"])),
        clubs=tuple(json.loads(row["clubs"])),
        status=row["status"],
        last_birthday_bonus=row["last_birthday_bonus"],
    )


def find(
    conn: sqlite3.Connection, *, number: str | None = None, phone: str | None = None
) -> CardRecord | None:
    """The card with ``number``, or with ``phone`` (E.164): a shop's own card by its phone,
    a chain's card by the phone's keyed hash."""
    if number is not None:
        row = conn.execute("SELECT * FROM cards WHERE number = ?", (number,)).fetchone()
    elif phone is not None:
        key = lookup_key(conn)
        hashed = bytes.fromhex(phone_lookup_hash(bytes.fromhex(key), phone)) if key else None
        rows = conn.execute(
            "SELECT * FROM cards WHERE phone = ? OR phone_hash = ?"
            " ORDER BY status = 'blocked', updated_at DESC LIMIT 1",
            (phone, hashed),
        ).fetchall()
        row = rows[0] if rows else None
    else:
        return None
    return _row_to_card(row) if row else None


_UPSERT = (
    "INSERT INTO cards (number, holder, phone, phone_hash, birthday, tier, segments, clubs,"
    " status, origin, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (number) DO UPDATE SET holder = excluded.holder, phone = excluded.phone,"
    " phone_hash = excluded.phone_hash, birthday = excluded.birthday,"
    " tier = excluded.tier, segments = excluded.segments, clubs = excluded.clubs,"
    " status = excluded.status, updated_at = excluded.updated_at"
)


def upsert(
    conn: sqlite3.Connection,
    card: CardRecord,
    *,
    now: datetime,
    origin: str = "import",
    phone_hash: str | None = None,
) -> None:
    """Insert or update one card. A card from head office (``origin="hq"``) is written as
    a chain's till may hold it: display name, ``phone_hash`` (never the phone), the
    birthday's month and day."""
    conn.execute(_UPSERT, _values(card, ts(now), origin=origin, phone_hash=phone_hash))


def upsert_many(
    conn: sqlite3.Connection,
    cards: Iterable[tuple[CardRecord, str | None]],
    *,
    now: datetime,
    origin: str = "import",
) -> None:
    """:func:`upsert` of each ``(card, phone_hash)``, in one statement."""
    at = ts(now)
    conn.executemany(
        _UPSERT, [_values(card, at, origin=origin, phone_hash=hashed) for card, hashed in cards]
    )


class ChainCard(NamedTuple):
    """A card of head office's change feed, its own fields as the page brings them."""

    number: str
    holder: str
    phone_hash: str | None
    birthday: date | str | None  # a date, or its month and day as text (``--03-14``)
    tier: str | None
    segments: Sequence[str]
    clubs: Sequence[str]
    status: str


def upsert_chain(conn: sqlite3.Connection, cards: Iterable[ChainCard], *, now: datetime) -> None:
    """Insert or update head office's cards (a page of the change feed) in one statement,
    as :func:`upsert` writes one with ``origin="hq"``: built without a :class:`CardRecord`
    each or a birthday parsed and printed again (a million of each on a first start)."""
    at = ts(now)
    conn.executemany(_UPSERT, [_chain_values(*card, at) for card in cards])


def upsert_chain_rows(
    conn: sqlite3.Connection, cards: Iterable[Sequence[Any]], *, now: datetime
) -> None:
    """:func:`upsert_chain` of rows whose first eight values are a :class:`ChainCard`'s,
    the birthday already one of :data:`MONTH_DAYS` (a compact change page's plain cards,
    :mod:`tillgate.sync.cardrows`): no tuple a card built to be taken apart again."""
    at = ts(now)
    conn.executemany(
        _UPSERT,
        [
            (c[0], display_holder(c[1]), None, _hash(c[2]), c[3], c[4], _list_text(c[5]),
             _list_text(c[6]), c[7], "hq", at, at)
            for c in cards
        ],
    )  # fmt: skip


# A chain's holders' display names are far fewer than its cards (first name, initial):
# each made once, not a million times on a first start.
display_holder = lru_cache(maxsize=4096)(display_name)


def _hash(phone_hash: str | None) -> bytes | None:
    # The phone's hash as its 32 bytes (a BLOB: half the index of its 64 hex digits).
    return bytes.fromhex(phone_hash) if phone_hash else None


def _list_text(values: Sequence[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False) if values else "[]"


# Every month and day a birthday can have, as text: a chain's till keeps these as they come.
MONTH_DAYS = frozenset(
    month_day_text(date(MONTH_DAY_YEAR, 1, 1) + timedelta(days=d)) for d in range(366)
)


def _chain_values(
    number: str,
    holder: str,
    phone_hash: str | None,
    birthday: date | str | None,
    tier: str | None,
    segments: Sequence[str],
    clubs: Sequence[str],
    status: str,
    at: str,
) -> tuple[object, ...]:
    """A chain's card as its till may hold it (docs/security.md, "Personal data"): the
    holder's display name, the phone's hash and never the phone, the birthday's month
    and day."""
    if isinstance(birthday, str) and birthday not in MONTH_DAYS:
        birthday = parse_birthday(birthday)  # a whole date's text; ValueError if not one
    if isinstance(birthday, date):
        birthday = month_day_text(birthday)
    return (
        number,
        display_holder(holder),
        None,
        _hash(phone_hash),
        birthday,
        tier,
        _list_text(segments),
        _list_text(clubs),
        status,
        "hq",
        at,
        at,
    )


def _values(
    card: CardRecord, at: str, *, origin: str, phone_hash: str | None
) -> tuple[object, ...]:
    if origin == "hq":
        return _chain_values(
            card.number, card.holder, phone_hash, card.birthday, card.tier, card.segments,
            card.clubs, card.status, at,
        )  # fmt: skip
    return (
        card.number,
        card.holder,
        card.phone,
        None,
        card.birthday.isoformat() if card.birthday else None,
        card.tier,
        json.dumps(list(card.segments), ensure_ascii=False) if card.segments else "[]",
        json.dumps(list(card.clubs), ensure_ascii=False) if card.clubs else "[]",
        card.status,
        origin,
        at,
        at,
    )


def put_lookup_key(conn: sqlite3.Connection, key: str) -> bool:
    """Keep the chain's phone look-up key (hex); True if it replaced a different one.

    Phone hashes made with the old key no longer match what the cashier types: they are
    forgotten, and the caller pulls every card again to get them back.
    """
    key = key.lower()
    old = lookup_key(conn)
    if old == key:
        return False
    path = _key_file(conn)
    if path is None:
        meta.put(conn, _LOOKUP_KEY_META, key)
    else:
        try:
            write_secret(path, f"{key}\n".encode("ascii"))
        except OSError as exc:
            raise StoreError(f"cannot keep the phone look-up key in {path}: {exc}") from exc
    if old is None:
        return False
    conn.execute("UPDATE cards SET phone_hash = NULL WHERE phone_hash IS NOT NULL")
    return True


def set_birthday_bonus(conn: sqlite3.Connection, number: str, year: int) -> None:
    conn.execute("UPDATE cards SET last_birthday_bonus = ? WHERE number = ?", (year, number))


def numbers(conn: sqlite3.Connection) -> Iterable[str]:
    return (r[0] for r in conn.execute("SELECT number FROM cards"))


# ---------------------------------------------------------------- a cards file, streamed

# A cards file of any size goes through this connection's own temporary table: its rows are
# written in batches as they are read, a number met twice is found there (not in a set of
# every number in memory), and the cards are then written in one statement.
_STAGE = "temp.cards_import"
BATCH = 5000


def stage_begin(conn: sqlite3.Connection) -> None:
    """An empty staging table (inside the caller's write transaction)."""
    conn.execute(f"DROP TABLE IF EXISTS {_STAGE}")
    conn.execute(
        f"CREATE TABLE {_STAGE} (row INTEGER PRIMARY KEY, number TEXT NOT NULL, holder TEXT,"
        " phone TEXT, birthday TEXT, tier TEXT, segments TEXT, clubs TEXT, status TEXT,"
        " opening INTEGER NOT NULL)"
    )


def stage(conn: sqlite3.Connection, rows: Iterable[tuple[int, CardRecord]]) -> int:
    """Write a shop's own cards (with their row numbers in the file) to the staging table,
    in batches of :data:`BATCH`; returns how many."""
    count = 0
    batch: list[tuple[object, ...]] = []
    for n, card in rows:
        batch.append(
            (
                n,
                card.number,
                card.holder,
                card.phone,
                card.birthday.isoformat() if card.birthday else None,
                card.tier,
                json_list(card.segments),
                json_list(card.clubs),
                card.status,
                card.opening_balance,
            )
        )
        if len(batch) >= BATCH:
            count += _stage_batch(conn, batch)
            batch = []
    return count + _stage_batch(conn, batch)


def _stage_batch(conn: sqlite3.Connection, batch: list[tuple[object, ...]]) -> int:
    conn.executemany(f"INSERT INTO {_STAGE} VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
    return len(batch)


def staged_twice(conn: sqlite3.Connection) -> Iterator[tuple[int, str]]:
    """The staged rows whose number an earlier staged row has (row, number), in file order;
    they are dropped from the staging table: the first row of a number is the card."""
    conn.execute(f"CREATE INDEX {_STAGE}_number ON cards_import (number, row)")
    later = (
        f"SELECT s.row, s.number FROM {_STAGE} AS s WHERE EXISTS (SELECT 1 FROM {_STAGE}"
        " AS t WHERE t.number = s.number AND t.row < s.row) ORDER BY s.row"
    )
    found = conn.execute(later).fetchall()  # few: they are the file's mistakes
    conn.execute(f"DELETE FROM {_STAGE} WHERE row IN (SELECT row FROM ({later}))")
    return ((int(r[0]), str(r[1])) for r in found)


def stage_commit(conn: sqlite3.Connection, *, now: datetime) -> None:
    """Insert or update every staged card as :func:`upsert` does a shop's own one."""
    conn.execute(
        "INSERT INTO cards (number, holder, phone, phone_hash, birthday, tier, segments, clubs,"
        " status, origin, created_at, updated_at) SELECT number, holder, phone, NULL,"
        f" birthday, tier, segments, clubs, status, 'import', ?, ? FROM {_STAGE} WHERE true"
        " ORDER BY row"
        " ON CONFLICT (number) DO UPDATE SET holder = excluded.holder, phone = excluded.phone,"
        " phone_hash = excluded.phone_hash, birthday = excluded.birthday,"
        " tier = excluded.tier, segments = excluded.segments, clubs = excluded.clubs,"
        " status = excluded.status, updated_at = excluded.updated_at",
        (ts(now), ts(now)),
    )


# The staged cards with an opening balance (``ord, card, points``, in file order), for
# :func:`tillgate.agent.store.points.credit_openings` to credit in a few statements.
STAGED_OPENINGS = (
    f"SELECT row AS ord, number AS card, opening AS points FROM {_STAGE} WHERE opening > 0"
)


def stage_end(conn: sqlite3.Connection) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {_STAGE}")
