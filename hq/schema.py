"""Head office's schema as one ordered list of migrations, the same for SQLite and PostgreSQL.

Portable SQL only: TEXT, BIGINT and INTEGER columns, instants as ISO-8601 UTC text with
microseconds (so they sort as text), JSON as TEXT. Ids that must grow come from the
``counters`` table (:meth:`~tillgate.hq.db.Tx.next_ids`), not from SQLite's rowid or a
PostgreSQL sequence, so both dialects hand them out the same way and in commit order.
Never edit a migration that has shipped: append a new one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from tillgate.core.errors import StoreError

from .db import Database

logger = logging.getLogger(__name__)

V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- change: the change-feed cursor; entry: HQ's own order of every stored entry;
-- program: program versions; hq_seq: the sequence of the entries HQ writes itself.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('change', 0), ('entry', 0), ('program', 0),
    ('hq_seq', 0);

-- Only a hash of each credential is kept. through_seq: the highest seq stored for the till.
CREATE TABLE tills (
    id              TEXT PRIMARY KEY,
    store           TEXT NOT NULL,
    credential_hash TEXT UNIQUE,
    enrolled_at     TEXT,
    revoked_at      TEXT,
    through_seq     BIGINT NOT NULL DEFAULT 0,
    last_push       TEXT,
    last_seen       TEXT
);

CREATE TABLE enroll_codes (
    code_hash  TEXT PRIMARY KEY,
    store      TEXT NOT NULL,
    till       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);

-- next_expiry: the soonest expiry of a lot with points left (the expiry job's index);
-- negative_since/balance: set while the card's balance is below zero (a flag for admins).
CREATE TABLE cards (
    number         TEXT PRIMARY KEY,
    holder         TEXT NOT NULL DEFAULT '',
    phone          TEXT,
    birthday       TEXT,
    tier           TEXT,
    segments       TEXT NOT NULL DEFAULT '[]',
    clubs          TEXT NOT NULL DEFAULT '[]',
    status         TEXT NOT NULL DEFAULT 'active',
    origin         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    next_expiry    TEXT,
    negative_since TEXT,
    balance        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX cards_next_expiry ON cards (next_expiry);
CREATE INDEX cards_negative ON cards (negative_since);

-- Every ledger entry of every till, stored once by its id. pos: HQ's order of arrival,
-- the order in which a card's entries are replayed.
CREATE TABLE entries (
    id             TEXT PRIMARY KEY,
    pos            BIGINT NOT NULL UNIQUE,
    till           TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    card           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    points         BIGINT NOT NULL,
    receipt_id     TEXT,
    refund_id      TEXT,
    ref            TEXT,
    note           TEXT,
    created_at     TEXT NOT NULL,
    available_from TEXT,
    expires_at     TEXT,
    received_at    TEXT NOT NULL,
    UNIQUE (till, seq)
);
CREATE INDEX entries_card ON entries (card, pos);

CREATE TABLE programs (
    version      BIGINT PRIMARY KEY,
    name         TEXT NOT NULL,
    body         TEXT NOT NULL,
    published_at TEXT NOT NULL
);

-- The change feed, compacted: one row per thing that changed, moved to a new id each time
-- it changes again. So a page never repeats a key and cursor 0 reads a full snapshot.
CREATE TABLE changes (
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    id   BIGINT NOT NULL UNIQUE,
    at   TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);

CREATE TABLE coupons_issued (
    code         TEXT PRIMARY KEY,
    promotion_id TEXT NOT NULL,
    valid_until  TEXT NOT NULL,
    issued_at    TEXT NOT NULL
);

-- The first use of each coupon code; it stands.
CREATE TABLE coupons_used (
    code         TEXT PRIMARY KEY,
    promotion_id TEXT,
    till         TEXT NOT NULL,
    receipt_id   TEXT NOT NULL,
    card         TEXT,
    used_at      TEXT NOT NULL,
    received_at  TEXT NOT NULL
);

CREATE TABLE coupons_revoked (
    code       TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    revoked_at TEXT NOT NULL
);

-- A later use of a code already used at another till or on another receipt.
CREATE TABLE coupon_conflicts (
    code             TEXT NOT NULL,
    till             TEXT NOT NULL,
    receipt_id       TEXT NOT NULL,
    card             TEXT,
    used_at          TEXT NOT NULL,
    first_till       TEXT NOT NULL,
    first_receipt_id TEXT NOT NULL,
    detected_at      TEXT NOT NULL,
    PRIMARY KEY (code, till, receipt_id)
);

-- An entry whose id or (till, seq) HQ already holds with different content.
CREATE TABLE sync_conflicts (
    till        TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    entry_id    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    stored      TEXT,
    received    TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    PRIMARY KEY (till, seq, entry_id)
);
"""

# Head office is the authority (docs/sync-protocol.md, "What head office takes from a till").
V2 = """
-- NULL: the entry counts. 'open' (quarantined, awaiting an admin) or 'rejected': the entry
-- is kept but left out of every fold, so its points are spendable nowhere.
ALTER TABLE entries ADD COLUMN quarantine TEXT;

-- flag: quarantine ids (what 'hq flags release ID' names); audit: the audit log's ids.
INSERT INTO counters (name, value) VALUES ('flag', 0), ('audit', 0);

-- One row per entry head office would not take: why, and what an admin decided.
-- status: open | released | rejected.
CREATE TABLE quarantine (
    id          BIGINT PRIMARY KEY,
    entry_id    TEXT NOT NULL UNIQUE,
    till        TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    card        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    points      BIGINT NOT NULL,
    code        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open',
    decided_at  TEXT,
    decided_by  TEXT,
    decision    TEXT
);
CREATE INDEX quarantine_status ON quarantine (status, id);
CREATE INDEX quarantine_card ON quarantine (card, till, code);

-- Every change an admin makes to points: who (the token's kind and the operator the admin
-- verb names), when, what (detail, JSON) and why.
CREATE TABLE audit (
    id       BIGINT PRIMARY KEY,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    operator TEXT,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL,
    detail   TEXT NOT NULL,
    reason   TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at, id);
"""

# Receipt facts (hq/facts.py): every till's confirmed receipts and refunds, stored once.
V3 = """
CREATE TABLE receipt_facts (
    till        TEXT NOT NULL,
    id          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    receipt_id  TEXT NOT NULL,
    card        TEXT,
    after_seq   BIGINT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    received_at TEXT NOT NULL,
    -- re-pricing (hq/repricing.py): NULL until done; agrees | disagrees | unpriceable
    repriced    TEXT,
    problems    TEXT,
    PRIMARY KEY (till, id)
);
CREATE INDEX receipt_facts_created ON receipt_facts (created_at);
CREATE INDEX receipt_facts_todo ON receipt_facts (received_at) WHERE repriced IS NULL;
CREATE INDEX entries_receipt ON entries (till, receipt_id);
CREATE INDEX receipt_facts_receipt ON receipt_facts (till, receipt_id);
"""

# Online holds (hq/holds.py): points and coupon codes an open receipt at an online till has
# reserved at head office, so that every other till sees them taken.
V4 = """
-- One hold per receipt of a till; a new calculate of the receipt replaces it.
-- status: active (points counted as reserved until expires_at) | confirmed (the receipt
-- was confirmed: 'redeemed' counted until its redeem entry arrives in a push) | settled
-- (that entry arrived: the balance counts it) | released (cancelled, or released by the
-- till at a sync) | expired (timed out while active).
CREATE TABLE holds (
    till        TEXT NOT NULL,
    receipt_id  TEXT NOT NULL,
    card        TEXT,
    points      BIGINT NOT NULL,
    redeemed    BIGINT NOT NULL DEFAULT 0,
    coupons     TEXT NOT NULL DEFAULT '[]',
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    resolved_at TEXT,
    resolution  TEXT,
    PRIMARY KEY (till, receipt_id)
);
CREATE INDEX holds_card ON holds (card, status);
CREATE INDEX holds_due ON holds (status, expires_at);
-- A coupon code reserved by an open receipt (one receipt at a time); gone on cancel,
-- expiry or confirm (a confirmed code is in coupons_used).
CREATE TABLE coupon_holds (
    code        TEXT PRIMARY KEY,
    till        TEXT NOT NULL,
    receipt_id  TEXT NOT NULL,
    reserved_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX coupon_holds_receipt ON coupon_holds (till, receipt_id);
-- Until when cards.balance holds with no new entry (the next lot to become spendable or to
-- expire; '9999-…' for never): a hold reads the kept balance instead of folding the card.
-- NULL (cards from before): not known, folded at the next read.
ALTER TABLE cards ADD COLUMN balance_until TEXT;
-- When the till last pulled the change feed (after pushing what it had): a hold of its past
-- its time ends only then (it may have confirmed the receipt while cut off).
ALTER TABLE tills ADD COLUMN last_pull TEXT;
"""

# Chain-wide counters (hq/counters.py) from the receipt facts, kept per till so that each
# till is sent what the other tills did and adds its own.
V5 = """
-- name: 'visit' | 'use:<promotion>' | 'stamp:<promotion>' | 'spend' (kopecks);
-- day: the receipt's local day (YYYY-MM-DD).
CREATE TABLE card_counters (
    card  TEXT NOT NULL,
    till  TEXT NOT NULL,
    name  TEXT NOT NULL,
    day   TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (card, till, name, day)
);
-- Points each budgeted promotion gave, per till.
CREATE TABLE budget_counters (
    promotion_id TEXT NOT NULL,
    till         TEXT NOT NULL,
    points       BIGINT NOT NULL,
    PRIMARY KEY (promotion_id, till)
);
"""

# People and scripts with roles at head office (hq/people.py, hq/roles.py), the admin's
# settings (hq/settings.py), and who changed what in the audit log (hq/audit.py).
V6 = """
-- name: lower case. stores: JSON list (store_manager only). password_hash: scrypt, never the
-- password. must_change: 1 until the one-time password the admin got is replaced.
CREATE TABLE users (
    name                TEXT PRIMARY KEY,
    role                TEXT NOT NULL,
    stores              TEXT NOT NULL DEFAULT '[]',
    password_hash       TEXT NOT NULL,
    must_change         INTEGER NOT NULL DEFAULT 1,
    created_at          TEXT NOT NULL,
    created_by          TEXT NOT NULL,
    password_changed_at TEXT,
    last_login          TEXT,
    disabled_at         TEXT
);

-- Bearer tokens of people (kind 'session', from a sign-in: role and stores are the user's)
-- and of scripts (kind 'script': role and stores their own). Only a hash of each is kept.
CREATE TABLE api_tokens (
    id         BIGINT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    user_name  TEXT,
    role       TEXT NOT NULL,
    stores     TEXT NOT NULL DEFAULT '[]',
    label      TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    last_used  TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_name);
INSERT INTO counters (name, value) VALUES ('token', 0);

-- Failed (and in-flight) sign-ins per name, for the limit of 5 a minute; pruned as it goes.
CREATE TABLE login_failures (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    at   TEXT NOT NULL
);
CREATE INDEX login_failures_name ON login_failures (name, at);

-- What an admin set (hq settings set KEY VALUE); a key not here has its default.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);

-- The audit log names the role of who made each change and what it changed, before and
-- after (JSON; NULL where there was nothing before, or nothing after).
ALTER TABLE audit ADD COLUMN role TEXT;
ALTER TABLE audit ADD COLUMN state_before TEXT;
ALTER TABLE audit ADD COLUMN state_after TEXT;
"""

# The chain's coupon keys (hq/couponkeys.py): which exist, which is revoked. The keys
# themselves are files in head office's data folder, never in the database: a row holds
# the key's fingerprint, so a process whose file differs is refused at start.
V7 = """
CREATE TABLE coupon_keys (
    id          INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
"""

# The product list (hq/products.py): versioned apart from the program. ``products`` holds the
# list in force alone (an import replaces it whole); ``product_lists`` every version's facts.
V8 = """
-- pos: the product's place in the list, the key tills page the list by (portable: no
-- collation decides the order). barcodes, aliases, tags: JSON lists. wire: the product as
-- tills are sent it (a JSON array in the order of its list's columns), made once at import
-- so that serving a page is a read, not an encoding.
CREATE TABLE products (
    pos            BIGINT PRIMARY KEY,
    sku            TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    category       TEXT NOT NULL,
    barcodes       TEXT NOT NULL DEFAULT '[]',
    aliases        TEXT NOT NULL DEFAULT '[]',
    tags           TEXT NOT NULL DEFAULT '[]',
    no_loyalty     INTEGER NOT NULL DEFAULT 0,
    age_restricted INTEGER NOT NULL DEFAULT 0,
    wire           TEXT NOT NULL
);
-- One row per version imported: how many products, their categories (JSON), the content's
-- digest (an import of the same goods makes no new version), where it came from.
CREATE TABLE product_lists (
    version     BIGINT PRIMARY KEY,
    count       BIGINT NOT NULL,
    categories  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    source      TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    columns     TEXT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('products', 0);
"""

# Scheduled jobs run by one ``hq serve`` at a time (hq/jobs.py): on SQLite a lease row per
# job (PostgreSQL takes an advisory lock instead). until: '' when free.
V9 = """
CREATE TABLE job_locks (
    name  TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until TEXT NOT NULL
);
"""

# Each card's fold kept (hq/ledger.py): a push folds only the card's new entries onto it.
# through_pos: the last counted entry folded; counted and pos_sum: how many counted entries
# up to there, and the sum of their pos, which must still hold for the state to be used
# (an entry released from quarantine or put back in changes them: the card is replayed).
V10 = """
CREATE TABLE card_folds (
    card        TEXT PRIMARY KEY,
    through_pos BIGINT NOT NULL,
    counted     BIGINT NOT NULL,
    pos_sum     BIGINT NOT NULL,
    state       TEXT NOT NULL
);
"""

# Indexes of columns NULL for most rows hold only the rows that are not (a card with no lot
# that expires, a card not below zero, an entry of no receipt: an imported opening balance),
# so writing a million cards or opening balances writes no entry into them. Every query of
# these indexes names a value of the column, which implies it is not NULL (EXPLAIN: tests).
PARTIAL_INDEXES = """
DROP INDEX cards_next_expiry;
CREATE INDEX cards_next_expiry ON cards (next_expiry) WHERE next_expiry IS NOT NULL;
DROP INDEX cards_negative;
CREATE INDEX cards_negative ON cards (negative_since) WHERE negative_since IS NOT NULL;
DROP INDEX entries_receipt;
CREATE INDEX entries_receipt ON entries (till, receipt_id) WHERE receipt_id IS NOT NULL;
"""

# Card snapshots (hq/snapshots.py): every card as a fresh till's first pull would bring it,
# a SQLite file built once for every till, kept here in parts so that every hq serve can
# send it. A snapshot's row is written after its parts: a row names a whole snapshot.
# BLOB is BYTEA on PostgreSQL (migrate).
V12 = """
CREATE TABLE card_snapshots (
    id        BIGINT PRIMARY KEY,
    change_id BIGINT NOT NULL,
    cards     BIGINT NOT NULL,
    parts     INTEGER NOT NULL,
    size      BIGINT NOT NULL,
    file_size BIGINT NOT NULL,
    sha256    TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    built_at  TEXT NOT NULL
);
CREATE TABLE card_snapshot_parts (
    snapshot BIGINT NOT NULL,
    seq      INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (snapshot, seq)
);
"""

MIGRATIONS: tuple[str, ...] = (V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, PARTIAL_INDEXES, V12)


def statements(script: str) -> Iterator[str]:
    """The statements of a migration (none of ours has a ';' inside a string or body)."""
    code = "\n".join(ln for ln in script.splitlines() if not ln.strip().startswith("--"))
    for part in code.split(";"):
        if part.strip():
            yield part.strip()


def migrate(db: Database, *, now: str) -> int:
    """Bring the database to the latest schema; returns the schema version.

    Each migration runs in its own transaction with its version row, so a failure leaves
    the database at the previous version, never half-migrated.
    """
    with db.write() as tx:
        tx.migration_lock()
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = int(tx.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
    if current > len(MIGRATIONS):
        raise StoreError(
            f"{db.display} has HQ schema version {current}, newer than this tillgate "
            f"understands ({len(MIGRATIONS)}); upgrade tillgate"
        )
    for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
        with db.write() as tx:
            tx.migration_lock()
            done = tx.scalar("SELECT 1 FROM schema_migrations WHERE version = ?", (version,))
            if done:  # another HQ process got there first
                continue
            for statement in statements(script):
                if db.dialect == "postgresql":
                    statement = statement.replace(" BLOB ", " BYTEA ")
                tx.execute(statement)
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, now),
            )
        logger.info("HQ database %s migrated to schema version %d", db.display, version)
    return len(MIGRATIONS)
