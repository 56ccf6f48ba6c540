"""Head office's card snapshot, copied into a chain till's tables (docs/sync-protocol.md,
"Card snapshot"; downloaded by :mod:`tillgate.sync.snapshot`).

The snapshot is a SQLite file: ``snapshot`` (name, value: ``format``, ``change_id``,
``lookup_key``, ``cards``, ``built_at``) and ``cards`` (:data:`COLUMNS`: a card as a change
page brings it to a till with nothing of its own, the phone's hash as its 32 bytes,
segments, clubs, lots and uses as JSON text). Attached to the till's connection, it is
checked and copied in SQL, no Python a card:

* :func:`check` refuses a file whose tables or values are not what a page's rows may be
  (the bounds of :mod:`tillgate.sync.cardrows`), naming the first bad row;
* :func:`copy_cards` writes every card's own row, and head office's view of those with
  nothing counted at another till and their lots in head office's shape; :func:`others`
  yields the rest, which the caller checks and writes through the page's model, a chunk
  at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from tillgate.core.cards import mask

from . import meta, schema, syncstate
from .cards import MONTH_DAYS, display_holder
from .ledger import ts

FORMAT = 1
SCHEMA = "snap"  # the name the file is attached as
COLUMNS = ("number", "holder", "phone_hash", "birthday", "tier", "segments", "clubs",
           "status", "balance", "pending", "lots", "uses", "held")  # fmt: skip
_INT64_MAX = 2**63 - 1


class BadSnapshot(ValueError):
    """The file is not a card snapshot this till can take (the message says why)."""


def _names_ok(column: str) -> str:
    return (
        f"typeof({column}) = 'text' AND ({column} = '[]' OR (json_valid({column})"
        f" AND json_type({column}) = 'array' AND NOT EXISTS"
        f" (SELECT 1 FROM json_each({column}) WHERE type <> 'text')))"
    )


_DAYS = sorted(MONTH_DAYS)
_BAD_ROW = f"""
SELECT number FROM {SCHEMA}.cards WHERE NOT (
    typeof(number) = 'text' AND length(number) BETWEEN 1 AND 64
    AND typeof(holder) = 'text'
    AND (phone_hash IS NULL OR (typeof(phone_hash) = 'blob' AND length(phone_hash) = 32))
    AND (birthday IS NULL OR birthday IN ({",".join("?" * len(_DAYS))}))
    AND (tier IS NULL OR typeof(tier) = 'text')
    AND {_names_ok("segments")} AND {_names_ok("clubs")}
    AND status IN ('active', 'new', 'blocked')
    AND typeof(balance) = 'integer' AND typeof(pending) = 'integer' AND pending >= 0
    AND typeof(held) = 'integer' AND held >= 0
    AND typeof(lots) = 'text' AND typeof(uses) = 'text'
) LIMIT 1
"""
# A lot in the shape head office writes it, checked here as the page's model would: an
# object of no other keys, ``points`` a 64-bit integer, ``available_from`` and
# ``expires_at`` (or null, or absent) instants in UTC with microseconds, as the till keeps
# them (ledger.ts), each a true date and time. Any other lot goes the model's way.
_TS = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]+00:00"  # noqa: E501


def _instant_ok(x: str) -> str:
    return (
        f"({x} GLOB '{_TS}'"
        f" AND strftime('%Y-%m-%dT%H:%M:%S', substr({x}, 1, 19)) = substr({x}, 1, 19))"
    )


# Each field of a lot weighed: a good lot is points and available_from (9) or those and
# expires_at (73), each once (a count of 2 or 3 fields); anything else sums otherwise.
_FIELDS = (
    "(SELECT count(*) || ':' || sum(CASE"
    " WHEN f.key = 'points' AND f.type = 'integer' AND typeof(f.atom) = 'integer' THEN 1"
    f" WHEN f.key = 'available_from' AND f.type = 'text' AND {_instant_ok('f.atom')} THEN 8"
    " WHEN f.key = 'expires_at' AND (f.type = 'null'"
    f" OR (f.type = 'text' AND {_instant_ok('f.atom')})) THEN 64"
    " ELSE 4096 END) FROM json_each(l.value) AS f)"
)
_LOT_OK = f"l.type = 'object' AND {_FIELDS} IN ('2:9', '3:73')"
_FROM, _UNTIL = "json_extract(l.value, '$.available_from')", "json_extract(l.value, '$.expires_at')"
_LOTS_OK = (
    "(lots = '[]' OR (json_valid(lots) AND json_type(lots) = 'array'"
    f" AND NOT EXISTS (SELECT 1 FROM json_each(lots) AS l WHERE NOT ({_LOT_OK}))))"
)
# The lots as the till keeps them (hqcache.lots_text): [[points, available_from, expires_at]].
_LOTS_KEPT = (
    "CASE WHEN lots = '[]' THEN '[]' ELSE (SELECT json_group_array(json_array("
    f"json_extract(l.value, '$.points'), {_FROM}, {_UNTIL})) FROM json_each(lots) AS l) END"
)
# What SQL writes whole: nothing counted at another till, every lot in head office's shape.
_PLAIN = f"uses = '{{}}' AND {_LOTS_OK}"


def check(conn: sqlite3.Connection) -> dict[str, Any]:
    """The attached file's ``snapshot`` values, once its tables and every card's values
    are what a change page's may be; :class:`BadSnapshot` if not."""
    kinds = dict(conn.execute(f"SELECT name, type FROM {SCHEMA}.sqlite_master").fetchall())
    if kinds.get("cards") != "table" or kinds.get("snapshot") != "table":
        raise BadSnapshot("it has no cards and snapshot tables")
    have = {r[1] for r in conn.execute(f"PRAGMA {SCHEMA}.table_info(cards)")}
    missing = [c for c in COLUMNS if c not in have]
    if missing:
        raise BadSnapshot(f"its cards have no {', '.join(missing)}")
    values = dict(conn.execute(f"SELECT name, value FROM {SCHEMA}.snapshot").fetchall())
    if values.get("format") != FORMAT:
        raise BadSnapshot(f"it is of format {values.get('format')!r}; this till reads {FORMAT}")
    change, key, cards = values.get("change_id"), values.get("lookup_key"), values.get("cards")
    if type(change) is not int or not 0 <= change <= _INT64_MAX:
        raise BadSnapshot("its change_id is not a change id")
    if not isinstance(key, str) or len(key) != 64 or key.strip("0123456789abcdef"):
        raise BadSnapshot("its lookup_key is not 64 hex digits")
    counted = conn.execute(f"SELECT COUNT(*) FROM {SCHEMA}.cards").fetchone()[0]
    if cards != counted:
        raise BadSnapshot(f"it says {cards!r} cards and holds {counted}")
    bad = conn.execute(_BAD_ROW, _DAYS).fetchone()
    if bad is not None:
        raise BadSnapshot(f"card {mask(str(bad[0]))} has a value no change page may hold")
    return values


def copy_cards(conn: sqlite3.Connection, *, now: datetime, no_counts: str) -> int:
    """Every card of the attached file into ``cards``, and head office's view of the plain
    ones into ``hq_cards`` (``no_counts``: the text of a card nobody counted), in the
    caller's write transaction; the late indexes dropped, built with the last change page
    (:mod:`tillgate.sync.feed`). The number of cards."""
    at = ts(now)
    conn.create_function("tillgate_display_name", 1, display_holder, deterministic=True)
    meta.put(conn, syncstate.SNAPSHOT, 1)
    schema.drop_late_indexes(conn)
    # The cards SQL does not write whole, found once (a lot's check is a few µs).
    conn.execute("DROP TABLE IF EXISTS temp.snapshot_others")
    conn.execute("CREATE TEMP TABLE snapshot_others (number TEXT PRIMARY KEY) WITHOUT ROWID")
    conn.execute(
        f"INSERT INTO temp.snapshot_others SELECT number FROM {SCHEMA}.cards WHERE NOT ({_PLAIN})"
    )
    n = conn.execute(
        "INSERT INTO cards (number, holder, phone, phone_hash, birthday, tier, segments, clubs,"
        " status, origin, created_at, updated_at) SELECT number, tillgate_display_name(holder),"
        " NULL, phone_hash, birthday, tier, segments, clubs, status, 'hq', ?, ?"
        f" FROM {SCHEMA}.cards ORDER BY number",
        (at, at),
    ).rowcount
    conn.execute(
        "INSERT INTO hq_cards (number, balance, pending, lots, through_seq, uses, held,"
        f" updated_at) SELECT number, balance, pending, {_LOTS_KEPT}, 0, ?, held, ?"
        f" FROM {SCHEMA}.cards WHERE number NOT IN (SELECT number FROM temp.snapshot_others)"
        " ORDER BY number",
        (no_counts, at),
    )
    return int(n)


def others(conn: sqlite3.Connection, chunk: int) -> Iterator[list[tuple[Any, ...]]]:
    """The attached file's cards :func:`copy_cards` left, ``chunk`` at a time, as rows of
    :data:`COLUMNS` (the phone's hash as 64 hex digits), then the lots as the till keeps
    them if they are in head office's shape (else None)."""
    rows = conn.execute(
        "SELECT number, holder, CASE WHEN phone_hash IS NOT NULL THEN lower(hex(phone_hash)) END,"
        " birthday, tier, segments, clubs, status,"
        f" balance, pending, lots, uses, held, CASE WHEN {_LOTS_OK} THEN {_LOTS_KEPT} END"
        f" FROM {SCHEMA}.cards"
        " WHERE number IN (SELECT number FROM temp.snapshot_others) ORDER BY number"
    )
    while batch := rows.fetchmany(chunk):
        yield [tuple(r) for r in batch]
    conn.execute("DROP TABLE temp.snapshot_others")
