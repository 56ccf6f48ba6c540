"""The data file's schema as an ordered list of migrations (``PRAGMA user_version``).

Never edit a migration that has shipped: append a new one.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from typing import Any

from tillgate.core.cards import display_name, mask_in_text
from tillgate.core.rules.tiers import month_day_text, parse_birthday

from . import sales

V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The program/promotions file in force (one row), as validated JSON.
CREATE TABLE program (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    version   TEXT NOT NULL,
    body      TEXT NOT NULL,
    loaded_at TEXT NOT NULL
);

CREATE TABLE cards (
    number      TEXT PRIMARY KEY,
    holder      TEXT NOT NULL DEFAULT '',
    phone       TEXT,
    birthday    TEXT,
    tier        TEXT,
    segments    TEXT NOT NULL DEFAULT '[]',
    clubs       TEXT NOT NULL DEFAULT '[]',
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'new', 'blocked')),
    origin      TEXT NOT NULL DEFAULT 'import',
    last_birthday_bonus INTEGER,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX cards_phone ON cards (phone);

-- One row per receipt_id the POS used. request/result: the last calculation (JSON).
-- status: calculated → confirmed (→ refunded once returned in full) | cancelled.
CREATE TABLE receipts (
    receipt_id      TEXT PRIMARY KEY,
    status          TEXT NOT NULL
                    CHECK (status IN ('calculated', 'confirmed', 'cancelled', 'refunded')),
    card            TEXT,
    request         TEXT NOT NULL,
    result          TEXT NOT NULL,
    hold_entry      TEXT,
    hold_points     INTEGER NOT NULL DEFAULT 0,
    hold_expires_at TEXT,
    accrued         INTEGER NOT NULL DEFAULT 0,
    redeemed        INTEGER NOT NULL DEFAULT 0,
    paid_kop        INTEGER NOT NULL DEFAULT 0,
    returned_kop    INTEGER NOT NULL DEFAULT 0,
    paid            TEXT,
    fiscal_id       TEXT,
    response        TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    confirmed_at    TEXT
);
CREATE INDEX receipts_card ON receipts (card, confirmed_at);
CREATE INDEX receipts_hold ON receipts (hold_expires_at) WHERE hold_entry IS NOT NULL;

-- The append-only ledger: the single source of every balance.
CREATE TABLE ledger (
    id          TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL UNIQUE,
    till        TEXT NOT NULL,
    card        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN
                ('accrue', 'redeem', 'hold', 'release', 'reverse', 'return', 'expire', 'adjust')),
    points      INTEGER NOT NULL,
    receipt_id  TEXT,
    refund_id   TEXT,
    ref         TEXT,
    note        TEXT,
    created_at  TEXT NOT NULL,
    synced_at   TEXT
);
CREATE INDEX ledger_card ON ledger (card, kind);
CREATE INDEX ledger_receipt ON ledger (receipt_id);
-- A hold is resolved (released) exactly once.
CREATE UNIQUE INDEX ledger_release_once ON ledger (ref) WHERE kind = 'release';
CREATE TRIGGER ledger_append_only_update BEFORE UPDATE OF
    id, seq, till, card, kind, points, receipt_id, refund_id, ref, created_at ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_append_only_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- Accrual lots: pending until available_from, spendable until expires_at (NULL: never).
CREATE TABLE lots (
    id             TEXT PRIMARY KEY,
    card           TEXT NOT NULL,
    entry_id       TEXT NOT NULL REFERENCES ledger (id),
    points         INTEGER NOT NULL,
    available_from TEXT NOT NULL,
    expires_at     TEXT,
    remaining      INTEGER NOT NULL
);
CREATE INDEX lots_card ON lots (card, available_from);
-- The expiry sweep looks only at lots that still hold points.
CREATE INDEX lots_expiry ON lots (expires_at) WHERE remaining > 0;

-- How each entry moved points out of (negative) or back into (positive) a lot.
CREATE TABLE lot_moves (
    entry_id TEXT NOT NULL REFERENCES ledger (id),
    lot_id   TEXT NOT NULL REFERENCES lots (id),
    points   INTEGER NOT NULL,
    PRIMARY KEY (entry_id, lot_id)
);
CREATE INDEX lot_moves_lot ON lot_moves (lot_id);

CREATE TABLE refunds (
    refund_id  TEXT PRIMARY KEY,
    receipt_id TEXT NOT NULL REFERENCES receipts (receipt_id),
    request    TEXT NOT NULL,
    response   TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Cumulative returned quantity per receipt line (refund arithmetic is cumulative).
CREATE TABLE refund_lines (
    receipt_id   TEXT NOT NULL,
    line_index   INTEGER NOT NULL,
    returned_qty TEXT NOT NULL,
    PRIMARY KEY (receipt_id, line_index)
);

CREATE TABLE promotion_uses (
    receipt_id   TEXT NOT NULL,
    promotion_id TEXT NOT NULL,
    card         TEXT,
    day          TEXT NOT NULL,
    points       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (receipt_id, promotion_id)
);
CREATE INDEX promotion_uses_card ON promotion_uses (card, promotion_id, day);

CREATE TABLE stamps (
    card         TEXT NOT NULL,
    promotion_id TEXT NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (card, promotion_id)
);

CREATE TABLE coupons_issued (
    code         TEXT PRIMARY KEY,
    promotion_id TEXT NOT NULL,
    receipt_id   TEXT NOT NULL,
    valid_until  TEXT NOT NULL,
    created_at   TEXT NOT NULL
);

CREATE TABLE coupons_used (
    code         TEXT PRIMARY KEY,
    promotion_id TEXT NOT NULL,
    receipt_id   TEXT NOT NULL,
    card         TEXT,
    used_at      TEXT NOT NULL,
    synced_at    TEXT
);

CREATE TABLE coupons_revoked (
    code       TEXT PRIMARY KEY,
    reason     TEXT NOT NULL DEFAULT 'revoked',
    revoked_at TEXT NOT NULL
);
"""

# V2: head-office sync. The till keeps HQ's view of each card beside its own ledger; a
# card's balance is that view plus the till's own entries HQ has not yet included
# (seq > through_seq). Sync state (cursor, last completed sync, ...) lives in ``meta``.
V2 = """
-- HQ's view of a card as of the last pull: balance/pending as HQ computed them, the lots
-- with points left as JSON [[points, available_from, expires_at|null], ...] (UTC, ts()
-- format), and the highest seq of THIS till's entries already included.
CREATE TABLE hq_cards (
    number      TEXT PRIMARY KEY,
    balance     INTEGER NOT NULL,
    pending     INTEGER NOT NULL,
    lots        TEXT NOT NULL DEFAULT '[]',
    through_seq INTEGER NOT NULL DEFAULT 0,
    uses        TEXT NOT NULL DEFAULT '{}',
    updated_at  TEXT NOT NULL
);

-- Points each budgeted promotion has given across the chain, as HQ last said.
CREATE TABLE hq_budgets (
    promotion_id TEXT PRIMARY KEY,
    points       INTEGER NOT NULL,
    updated_at   TEXT NOT NULL
);

-- Cards registered at this till: sent to HQ once (synced_at set after HQ's 200).
ALTER TABLE cards ADD COLUMN synced_at TEXT;

-- A coupon used at another till (learnt from HQ): which till; NULL for this till's own uses.
ALTER TABLE coupons_used ADD COLUMN till TEXT;

-- The outbox is the suffix of the ledger with synced_at NULL.
CREATE INDEX ledger_unsynced ON ledger (seq) WHERE synced_at IS NULL;
CREATE INDEX ledger_card_seq ON ledger (card, seq);
"""

# V3: a receipt's stored calculation becomes a typed, versioned record (store/sales.py)
# instead of the whole API response with private keys; rows stored before are rewritten.
V3 = sales.upgrade_legacy

# V4: receipt facts for head office (store/facts.py): one row per confirmed receipt and
# per refund, pushed through the outbox after the ledger entries they follow.
V4 = """
CREATE TABLE facts (
    id         TEXT PRIMARY KEY,   -- 'sale:<receipt_id>' or 'refund:<refund_id>'
    kind       TEXT NOT NULL CHECK (kind IN ('sale', 'refund')),
    receipt_id TEXT NOT NULL,
    after_seq  INTEGER NOT NULL,   -- the ledger's last seq when written: sent after it
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    synced_at  TEXT
);
CREATE INDEX facts_unsynced ON facts (after_seq, created_at) WHERE synced_at IS NULL;
"""

# A migration is SQL (run statement by statement) or a function over the connection; each
# runs in one write transaction with the new PRAGMA user_version.
Migration = str | Callable[[sqlite3.Connection], None]
# V5: online holds at head office (store/hqholds.py): what this till reserved at head office
# for each open receipt, and the resolutions (confirmed, cancelled, released) head office
# has yet to hear of.
V5 = """
CREATE TABLE hq_holds (
    receipt_id  TEXT PRIMARY KEY,
    card        TEXT,
    granted     INTEGER NOT NULL DEFAULT 0,   -- points head office reserved
    coupons     TEXT NOT NULL DEFAULT '[]',   -- codes head office reserved
    state       TEXT NOT NULL,                -- held | unknown (no answer in time)
    expires_at  TEXT,                          -- the till's clock: when HQ's hold ends
    resolution  TEXT,                          -- confirmed | cancelled | released
    redeemed    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    sent_at     TEXT                           -- the resolution reached head office
);
CREATE INDEX hq_holds_unsent ON hq_holds (updated_at) WHERE sent_at IS NULL;
-- What other tills' open receipts hold of the card at head office, as of the last pull:
-- not spendable here either (a till cut off must not spend it from its cache).
ALTER TABLE hq_cards ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
"""


# V6: personal data on a chain's till (docs/security.md, "Personal data"). A chain's card
# keeps the holder's display name, a keyed hash of the phone (``phone_hash``, sent by head
# office) and the birthday's month and day; what a till stored before is cut down to that
# in place, and the feed is pulled again from the start to bring the phone hashes. Stored
# receipts and facts lose the same (names, birth years, the card field as the POS sent
# it). secure_delete zeroes the bytes the old values leave free in the file's pages.
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _cut(value: Any) -> Any:
    """A stored JSON value with every holder shortened and every birthday's year gone."""
    if isinstance(value, list):
        return [_cut(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _cut(v) for k, v in value.items()}
    if isinstance(out.get("holder"), str):
        out["holder"] = display_name(out["holder"])
    birthday = out.get("birthday")
    if isinstance(birthday, str) and _FULL_DATE.match(birthday):
        out["birthday"] = month_day_text(parse_birthday(birthday))
    return out


def _cut_json(conn: sqlite3.Connection, table: str, key: str, column: str) -> None:
    rows = conn.execute(f"SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL")
    for row in rows.fetchall():
        data = _cut(json.loads(row[1]))
        if table == "receipts" and column == "request" and isinstance(data.get("card"), str):
            data["card"] = mask_in_text(data["card"])  # a phone or a whole track, as typed
        text = json.dumps(data, ensure_ascii=False, sort_keys=table == "facts")
        if text != row[1]:
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (text, row[0]))


def forget_personal_data(conn: sqlite3.Connection) -> None:
    """V6: cut a chain's cards (and what receipts and facts stored of them) to what a
    till needs; a standalone shop's own cards keep what its cards file holds."""
    conn.execute("PRAGMA secure_delete = ON")
    try:
        conn.execute("ALTER TABLE cards ADD COLUMN phone_hash TEXT")
        conn.execute("CREATE INDEX cards_phone_hash ON cards (phone_hash)")
        chain = conn.execute("SELECT number, holder, birthday FROM cards WHERE origin = 'hq'")
        for number, holder, birthday in chain.fetchall():
            conn.execute(
                "UPDATE cards SET holder = ?, phone = NULL, birthday = ? WHERE number = ?",
                (
                    display_name(holder or ""),
                    month_day_text(parse_birthday(birthday)) if birthday else None,
                    number,
                ),
            )
        for table, key, column in (
            ("receipts", "receipt_id", "request"),
            ("receipts", "receipt_id", "result"),
            ("receipts", "receipt_id", "response"),
            ("refunds", "refund_id", "response"),
            ("facts", "id", "body"),
        ):
            _cut_json(conn, table, key, column)
        # The next pull is a full one: it brings every card's phone hash and the key.
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'sync.cursor'")
    finally:
        conn.execute("PRAGMA secure_delete = OFF")


V6: Migration = forget_personal_data

# V7: the product list (store/products.py, core/products.py): each intercepted or POS line
# gets its category from it by sku, barcode or name.
V7 = """
CREATE TABLE products (
    sku            TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    category       TEXT NOT NULL,
    barcodes       TEXT NOT NULL DEFAULT '[]',   -- JSON list
    aliases        TEXT NOT NULL DEFAULT '[]',   -- JSON list
    tags           TEXT NOT NULL DEFAULT '[]',   -- JSON list
    no_loyalty     INTEGER NOT NULL DEFAULT 0,
    age_restricted INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- sku and barcodes, each pointing at its product (a code two products share is ambiguous)
CREATE TABLE product_codes (
    code TEXT NOT NULL,
    sku  TEXT NOT NULL,
    PRIMARY KEY (code, sku)
) WITHOUT ROWID;
CREATE INDEX product_codes_sku ON product_codes (sku);
-- normalised name and aliases (core/products.normalise_name); prefix scans for cut names
CREATE TABLE product_names (
    key TEXT NOT NULL,
    sku TEXT NOT NULL,
    PRIMARY KEY (key, sku)
) WITHOUT ROWID;
CREATE INDEX product_names_sku ON product_names (sku);
"""

# V8: the names no product or rule gave a category (store/productmisses.py), counted in
# /v1/status under the product list's version they were seen with.
V8 = """
CREATE TABLE product_misses (
    key              TEXT NOT NULL,   -- the normalised name (core/products.normalise_name)
    match            TEXT NOT NULL CHECK (match IN ('unmatched', 'ambiguous')),
    name             TEXT NOT NULL,   -- as last printed or sent
    receipts         INTEGER NOT NULL DEFAULT 0,
    products_version TEXT,            -- the product list's version when last seen
    last_receipt     TEXT NOT NULL,
    first_seen       TEXT NOT NULL,
    last_seen        TEXT NOT NULL,
    PRIMARY KEY (key, match)
) WITHOUT ROWID;
"""

# V9: a compact receipt (issue 15): the calculation record as arrays with the weighed flags
# of its lines, no request, no facts once confirmed (store/sales.py); synced facts go
# (store/facts.py). Rows stored before are rewritten.
V9: Migration = sales.compact

# V10: a card's balance and holds are sums over its ledger entries, read on every calculate
# and confirm: with the points in the card's index they are read from the index alone, not
# by a look-up of each entry's row (a regular's history is hundreds of entries).
V10 = """
DROP INDEX ledger_card;
CREATE INDEX ledger_card ON ledger (card, kind, points);
"""


def _hash_bytes(text: object) -> bytes | None:
    """A stored phone hash (64 hex digits) as its 32 bytes; anything else is forgotten
    (None: the card is found by its number until head office sends its hash again)."""
    if isinstance(text, bytes):
        return text if len(text) == 32 else None
    try:
        hashed = bytes.fromhex(text) if isinstance(text, str) and len(text) == 64 else None
    except ValueError:
        return None
    return hashed if hashed is not None and len(hashed) == 32 else None


def phone_hash_bytes(conn: sqlite3.Connection) -> None:
    """V11: a chain's card keeps its phone's hash as its 32 bytes, not 64 hex digits (half
    the index a first start builds at the end of its pull); the stored ones converted."""
    conn.create_function("tillgate_hash_bytes", 1, _hash_bytes, deterministic=True)
    try:
        conn.execute(
            "UPDATE cards SET phone_hash = tillgate_hash_bytes(phone_hash)"
            " WHERE phone_hash IS NOT NULL"
        )
    finally:
        conn.create_function("tillgate_hash_bytes", 1, None)


V11: Migration = phone_hash_bytes

# V12: a chain's card has no phone (its hash instead), so the phone's index holds only the
# cards that have one (a standalone shop's own): a first start's million cards no longer
# each add a NULL to it. ``phone = ?`` implies ``phone IS NOT NULL``: look-ups still use it.
V12 = """
DROP INDEX cards_phone;
CREATE INDEX cards_phone ON cards (phone) WHERE phone IS NOT NULL;
"""

# V13: a promotion's points budget was summed over every use of it on every calculate (the uses'
# index leads with the card: a scan of the whole table, which never shrinks). Its total is
# kept beside the uses by triggers, and read by promotion. (Run again on a file that has
# it, it adds the totals up anew.)
V13 = """
CREATE TABLE IF NOT EXISTS budget_points (
    promotion_id TEXT PRIMARY KEY,
    points       INTEGER NOT NULL
) WITHOUT ROWID;
DELETE FROM budget_points;
INSERT INTO budget_points (promotion_id, points)
    SELECT promotion_id, SUM(points) FROM promotion_uses WHERE points != 0
    GROUP BY promotion_id;
CREATE TRIGGER IF NOT EXISTS promotion_uses_budget_in AFTER INSERT ON promotion_uses
    WHEN NEW.points != 0
BEGIN
    INSERT INTO budget_points (promotion_id, points) VALUES (NEW.promotion_id, NEW.points)
        ON CONFLICT (promotion_id) DO UPDATE SET points = points + excluded.points;
END;
CREATE TRIGGER IF NOT EXISTS promotion_uses_budget_out AFTER DELETE ON promotion_uses
    WHEN OLD.points != 0
BEGIN
    UPDATE budget_points SET points = points - OLD.points
        WHERE promotion_id = OLD.promotion_id;
END;
CREATE TRIGGER IF NOT EXISTS promotion_uses_budget_change AFTER UPDATE OF promotion_id, points
    ON promotion_uses
BEGIN
    UPDATE budget_points SET points = points - OLD.points
        WHERE promotion_id = OLD.promotion_id;
    INSERT INTO budget_points (promotion_id, points) VALUES (NEW.promotion_id, NEW.points)
        ON CONFLICT (promotion_id) DO UPDATE SET points = points + excluded.points;
END;
"""


# V14: what retention forgets still counts (store/retention.py). A card's forgotten receipts
# become its visits and paid kopecks by the till's local day (the rolling spend window of a
# tier outlasts retention: 365 days against 90); a forgotten receipt's promotion uses become
# one row a card and promotion, keyed ``#`` + the card (no receipt id starts with ``#``),
# with how many uses it stands for. Points budgets are unchanged (the triggers add the
# folded row's points as they take the forgotten rows'). Run again on a file that has it,
# it changes nothing.
def forgotten_counts(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS card_days (card TEXT NOT NULL, day TEXT NOT NULL,"
        " visits INTEGER NOT NULL, spend_kop INTEGER NOT NULL, PRIMARY KEY (card, day))"
        " WITHOUT ROWID"
    )
    columns = {r[1] for r in conn.execute("PRAGMA table_info(promotion_uses)")}
    if "uses" not in columns:
        conn.execute("ALTER TABLE promotion_uses ADD COLUMN uses INTEGER NOT NULL DEFAULT 1")


V14: Migration = forgotten_counts

MIGRATIONS: tuple[Migration, ...] = (
    V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14
)  # fmt: skip

# Indexes a pull of every card from head office goes without (issue 15). The phone hash is
# a random key: each card of a snapshot dirtied a random leaf page of its index (≈ 4 KiB
# of log a card, half of a first start's writing). The pull drops them before its first
# page and builds them, sorted once, in the transaction of its last
# (:mod:`tillgate.sync.feed`); a till whose pull was cut off gets them back at once
# (:meth:`tillgate.sync.engine.Syncer.pull`), and a data file opened without one (a till
# killed mid-pull) when it is opened (:class:`~tillgate.agent.store.db.Database`).
LATE_INDEXES = {"cards_phone_hash": "CREATE INDEX cards_phone_hash ON cards (phone_hash)"}


def missing_late_indexes(conn: sqlite3.Connection) -> list[str]:
    """The late indexes the data file has not got (in a pull of every card, or cut off)."""
    marks = ",".join("?" * len(LATE_INDEXES))
    have = {
        r[0]
        for r in conn.execute(
            f"SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ({marks})",
            list(LATE_INDEXES),
        )
    }
    return [name for name in LATE_INDEXES if name not in have]


def drop_late_indexes(conn: sqlite3.Connection) -> None:
    """Drop the late indexes (inside the caller's write transaction)."""
    for name in LATE_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}")


def build_late_indexes(conn: sqlite3.Connection) -> list[str]:
    """Build the late indexes the file has not got (inside the caller's write
    transaction); their names."""
    missing = missing_late_indexes(conn)
    for name in missing:
        conn.execute(LATE_INDEXES[name])
    return missing
