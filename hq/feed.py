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

The product list is not in the page: a page names its version and size (``products``) when
it changed, and the till downloads it apart, in pages of its own (:mod:`tillgate.hq.products`).

A till is sent what it needs of a card holder and no more (:func:`till_fields`, docs/
security.md "Personal data"): a display name, a keyed hash of the phone to look it up by,
the birthday's month and day, tier, segments and clubs; never the full name, the phone or
the birth year. Every page carries the chain's phone look-up key (``lookup_key``) so that
the till can hash what the cashier types; the cards on the page are hashed with it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tillgate.core.cards import display_name, phone_lookup_hash
from tillgate.core.errors import InvalidRequest
from tillgate.core.rules.tiers import month_day_text, parse_birthday

from . import counters, couponkeys, holds, products
from .couponkeys import HqKeys
from .db import Database, Row, Tx, marks
from .fold import CardState, fold
from .ledger import card_entries, chunks, fold_entry
from .tills import TillId, touch
from .wire import ts

DEFAULT_LIMIT, MAX_LIMIT = 500, 2000
# Commit ids are 64-bit signed integers in both databases: a cursor beyond that is no id
# HQ could have handed out, and SQLite cannot even compare one (it was a 500).
MAX_CURSOR = 2**63 - 1


def _whole(name: str, value: object, low: int, high: int) -> int:
    """``value`` if it is an integer (not a bool) within [low, high], else a 400."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name}: must be an integer")
    if not low <= value <= high:
        raise InvalidRequest(f"{name}: must be between {low} and {high}")
    return value


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


def till_fields(row: Row, state: CardState, *, lookup_key: bytes) -> dict[str, Any]:
    """A card's fields as a till may hold them: no full name, phone or birth year."""
    out = card_fields(row, state)
    del out["phone"]
    return out | {
        "holder": display_name(row["holder"] or ""),
        "phone_hash": phone_lookup_hash(lookup_key, row["phone"]) if row["phone"] else None,
        "birthday": month_day_text(parse_birthday(row["birthday"])) if row["birthday"] else None,
    }


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


def card_out(
    row: Row,
    state: CardState,
    *,
    lookup_key: bytes,
    through_seq: int,
    uses: dict[str, Any] | None = None,
    held: int = 0,
) -> dict[str, Any]:
    """A card as the feed sends it; ``through_seq``, ``uses`` (what the other tills
    counted, :func:`tillgate.hq.counters.others`) and ``held`` (what the other tills' open
    receipts hold at head office, :func:`tillgate.hq.holds.held_elsewhere`) are the
    requesting till's; the phone is hashed with ``lookup_key``."""
    return {
        **till_fields(row, state, lookup_key=lookup_key),
        "lots": lots_out(state),
        "through_seq": through_seq,
        "uses": uses or {},
        "held": held,
    }


def _rows_by(tx: Tx, table: str, column: str, keys: list[str]) -> list[Row]:
    out: list[Row] = []
    for part in chunks(sorted(keys)):
        out += tx.all(
            f"SELECT * FROM {table} WHERE {column} IN ({marks(len(part))}) ORDER BY {column}",
            list(part),
        )
    return out


def _states(tx: Tx, numbers: list[str], now: datetime) -> dict[str, CardState]:
    """Each card's folded state; the many cards with no entries share one empty fold
    (a snapshot of a million cards folded a million empty histories, 10 µs each)."""
    entries = card_entries(tx, numbers)
    empty = fold([], now)
    return {n: fold([fold_entry(r) for r in rows], now) if rows else empty
            for n, rows in entries.items()}  # fmt: skip


def page_bytes(page: dict[str, Any]) -> bytes:
    """A page as the reply's body: compact JSON, encoded once (FastAPI's generic encoder
    walked every card's every field again, as long as building the page itself)."""
    return json.dumps(page, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def changes(
    db: Database,
    till: TillId,
    *,
    cursor: int,
    limit: int,
    now: datetime,
    lookup_key: bytes,
    coupon_keys: HqKeys | None = None,
) -> dict[str, Any]:
    """The page of changes after ``cursor`` for ``till`` (its cards' phones hashed with
    ``lookup_key``, which the page carries too).

    ``cursor`` and ``limit`` come from the query string (FastAPI hands over any integer,
    however long), so they are checked before they reach SQL; the rest comes from HQ's
    own database.
    """
    cursor = _whole("cursor", cursor, 0, MAX_CURSOR)
    limit = _whole("limit", limit, 1, MAX_LIMIT)
    with db.read() as tx:
        rows = tx.all(
            "SELECT kind, key, id FROM changes WHERE id > ? ORDER BY id LIMIT ?",
            (cursor, limit + 1),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        keys: dict[str, list[str]] = {}
        for r in rows:
            keys.setdefault(r["kind"], []).append(r["key"])
        through = int(tx.scalar("SELECT through_seq FROM tills WHERE id = ?", (till.id,)) or 0)
        program = None
        if "program" in keys:
            latest = tx.one("SELECT version, body FROM programs ORDER BY version DESC LIMIT 1")
            if latest is not None:
                program = {"version": str(latest["version"]), "body": json.loads(latest["body"])}
        card_rows = _rows_by(tx, "cards", "number", keys.get("card", []))
        states = _states(tx, [r["number"] for r in card_rows], now)
        counts = counters.others(
            tx, [r["number"] for r in card_rows], till=till.id, today=now.astimezone(UTC).date()
        )
        budgets = counters.budgets(tx, keys.get("budget", []), till=till.id)
        held = holds.held_elsewhere(tx, [r["number"] for r in card_rows], till.id, now)
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
    with db.write() as wtx:
        touch(wtx, till.id, now)
    return {
        "cursor": int(rows[-1]["id"]) if rows else cursor,
        "more": more,
        "lookup_key": lookup_key.hex(),
        "program": program,
        "cards": [
            card_out(
                r,
                states[r["number"]],
                lookup_key=lookup_key,
                through_seq=through,
                uses=counts.get(r["number"]),
                held=held.get(r["number"], 0),
            )
            for r in card_rows
        ],
        "coupons_revoked": revoked,
        "coupons_used": used,
        "coupon_keys": key_set,
        "budgets": budgets,
        "products": product_list,
    }
