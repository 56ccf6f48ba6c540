"""The chain's coupon keys at head office: files hold the keys, the database which exist.

Each key is a 0600 file in ``<data dir>/keys`` (:class:`~tillgate.core.keyfolder.KeyFolder`),
never a database value: a database is backed up, replicated and read by more people than
a key should be. The ``coupon_keys`` table says which keys exist, each one's fingerprint,
and which are revoked, so every head-office process of one database agrees on them; a
process whose folder lacks a key, or holds a different one, refuses to start and says
which file to copy.

New codes are signed with the newest key not revoked; codes of older keys verify until
they expire; a revoked key's codes never again. The set travels to the tills as one
change of kind ``coupon_keys`` (:func:`feed_out`), in the same transaction as the change.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from tillgate.core.errors import ConfigError, InvalidRequest, NotFound, StoreError
from tillgate.core.keyfolder import KeyFolder
from tillgate.core.rules.coupons import (
    LEGACY_KEY,
    MAX_KEY_ID,
    CouponKeys,
    fingerprint,
    generate_key,
)

from . import audit
from .db import Database, Tx
from .ledger import add_changes
from .wire import ts

logger = logging.getLogger(__name__)

KEYS_FOLDER = "keys"
CHANGE_KIND, CHANGE_KEY = "coupon_keys", "all"
_OLD_META_KEY = "coupon_key"  # where an install from before key files kept key 1


class HqKeys:
    """The coupon keys of one head office: a :class:`~tillgate.core.rules.coupons.KeySource`."""

    def __init__(self, db: Database, folder: KeyFolder) -> None:
        self.db = db
        self.folder = folder

    def __repr__(self) -> str:
        return f"HqKeys({self.folder!r})"

    @classmethod
    def open(cls, db: Database, data_dir: Path, *, now: datetime) -> HqKeys:
        """The keys of a migrated database; key 1 made, or moved out of ``meta``, on first
        start. Raises ConfigError when this process's folder does not match the database."""
        keys = cls(db, KeyFolder(data_dir / KEYS_FOLDER))
        with db.write() as tx:
            moved = keys._adopt_old_key(tx, now)
            if not tx.scalar("SELECT COUNT(*) FROM coupon_keys"):
                keys._add(tx, LEGACY_KEY, generate_key(), now)
        if moved:
            logger.warning(
                "coupon key 1 moved out of the database into %s (a key file, mode 0600)",
                keys.folder.key_file(LEGACY_KEY),
            )
        keys.coupon_keys()  # every key the database names is here, and the same
        return keys

    def _adopt_old_key(self, tx: Tx, now: datetime) -> bool:
        row = tx.one("SELECT value FROM meta WHERE key = ?", (_OLD_META_KEY,))
        if row is None:
            return False
        key = bytes.fromhex(row["value"])
        known = tx.one("SELECT fingerprint FROM coupon_keys WHERE id = ?", (LEGACY_KEY,))
        if known is None:
            self._add(tx, LEGACY_KEY, key, now)
        elif known["fingerprint"] != fingerprint(key):
            raise ConfigError("head office's database holds two different coupon keys 1")
        else:
            self.folder.add(LEGACY_KEY, key)
        if tx.dialect == "sqlite":
            # The freed cell is zeroed, so the key does not stay in the file's pages.
            tx.execute("PRAGMA secure_delete = ON")
        tx.execute("DELETE FROM meta WHERE key = ?", (_OLD_META_KEY,))
        return True

    def _add(self, tx: Tx, key_id: int, key: bytes, now: datetime) -> None:
        # The file first: a crash before the commit leaves a file no row names (made
        # again, the same or a new one, by the next try), never a row without its key.
        self.folder.add(key_id, key)
        tx.execute(
            "INSERT INTO coupon_keys (id, fingerprint, created_at) VALUES (?, ?, ?)",
            (key_id, fingerprint(key), ts(now)),
        )
        add_changes(tx, CHANGE_KIND, [CHANGE_KEY], now)

    # ------------------------------------------------------------ reading

    def coupon_keys(self) -> CouponKeys:
        """The keys in force, as the database names them and this folder holds them."""
        with self.db.read() as tx:
            rows = tx.all("SELECT id, fingerprint, revoked_at FROM coupon_keys ORDER BY id")
        return self._ring(rows)

    def _ring(self, rows: list[dict[str, Any]]) -> CouponKeys:
        keys: dict[int, bytes] = {}
        revoked: set[int] = set()
        for r in rows:
            key_id = int(r["id"])
            if r["revoked_at"] is not None:
                revoked.add(key_id)
                continue
            key = self.folder.read(key_id)
            if key is None or fingerprint(key) != r["fingerprint"]:
                state = "is missing" if key is None else "holds a different key"
                raise ConfigError(
                    f"{self.folder.key_file(key_id)} {state}: head office's database names "
                    f"coupon key {key_id} (fingerprint {r['fingerprint']}). Every head-office "
                    "process of one database needs the same keys folder: copy it from the "
                    "data directory of the one that made the key"
                )
            keys[key_id] = key
        return CouponKeys(keys=keys, revoked=frozenset(revoked))

    def legacy_key(self) -> bytes:
        """The key enrolment gives tills of earlier versions (key 1, else the newest)."""
        ring = self.coupon_keys()
        current = ring.current
        if current is None:
            raise StoreError("every coupon key is revoked; rotate the key")
        return ring.keys.get(LEGACY_KEY, ring.keys[current])

    def listing(self) -> dict[str, Any]:
        """What ``hq coupons keys`` shows: each key's id, fingerprint, dates; never a key."""
        with self.db.read() as tx:
            rows = tx.all(
                "SELECT id, fingerprint, created_at, revoked_at FROM coupon_keys ORDER BY id"
            )
        live = [int(r["id"]) for r in rows if r["revoked_at"] is None]
        current = max(live) if live else None
        return {
            "current": current,
            "keys": [
                {
                    "id": int(r["id"]),
                    "fingerprint": r["fingerprint"],
                    "created_at": r["created_at"],
                    "revoked_at": r["revoked_at"],
                    "signs": int(r["id"]) == current,
                }
                for r in rows
            ],
        }

    # ------------------------------------------------------------ changes

    def rotate(self, *, now: datetime, operator: str | None) -> dict[str, Any]:
        """A new key that signs every code from now on; the older ones keep verifying."""
        with self.db.write() as tx:
            tx.lock_rows("counters", "name", ["change"])  # one rotation at a time
            last = int(tx.scalar("SELECT COALESCE(MAX(id), 0) FROM coupon_keys"))
            if last >= MAX_KEY_ID:
                raise InvalidRequest(
                    f"all {MAX_KEY_ID} coupon key ids are used (a code has room for no more); "
                    "a key id is never reused"
                )
            key_id = last + 1
            key = generate_key()
            self.folder.key_file(key_id).unlink(missing_ok=True)  # left by a failed rotation
            self._add(tx, key_id, key, now)
            audit.write(
                tx,
                action="coupon_key.rotate",
                subject=f"coupon key {key_id}",
                detail={"key_id": key_id, "fingerprint": fingerprint(key)},
                reason="",
                operator=operator,
                now=now,
                before={"signs": last or None},
                after={"signs": key_id},
            )
        logger.info(
            "coupon key %d made (fingerprint %s); it signs new codes", key_id, fingerprint(key)
        )
        return {"key_id": key_id, "fingerprint": fingerprint(key), "previous": last or None}

    def revoke(self, key_id: int, *, now: datetime, operator: str | None) -> dict[str, Any]:
        """Refuse every code of ``key_id`` from now on, here and at every till that syncs."""
        if isinstance(key_id, bool) or not 1 <= key_id <= MAX_KEY_ID:
            raise NotFound(f"no coupon key {key_id}: key ids are 1..{MAX_KEY_ID}")
        with self.db.write() as tx:
            tx.lock_rows("counters", "name", ["change"])
            row = tx.one("SELECT id, revoked_at FROM coupon_keys WHERE id = ?", (key_id,))
            if row is None:
                raise NotFound(f"no coupon key {key_id} (see: tillgate hq coupons keys)")
            if row["revoked_at"] is not None:
                return {"key_id": key_id, "revoked_at": row["revoked_at"], "changed": False}
            newest = tx.scalar("SELECT MAX(id) FROM coupon_keys WHERE revoked_at IS NULL")
            if int(newest) == key_id:
                raise InvalidRequest(
                    f"coupon key {key_id} signs the new codes: make a new one first "
                    "(tillgate hq coupons rotate-key), then revoke this one"
                )
            tx.execute("UPDATE coupon_keys SET revoked_at = ? WHERE id = ?", (ts(now), key_id))
            add_changes(tx, CHANGE_KIND, [CHANGE_KEY], now)
            audit.write(
                tx,
                action="coupon_key.revoke",
                subject=f"coupon key {key_id}",
                detail={"key_id": key_id},
                reason="",
                operator=operator,
                now=now,
                before={"revoked": False},
                after={"revoked": True},
            )
        # After the commit: a revoked key's file serves nothing any more.
        self.folder.revoke(key_id)
        logger.warning("coupon key %d revoked: its codes are refused from now on", key_id)
        return {"key_id": key_id, "revoked_at": ts(now), "changed": True}


def feed_out(tx: Tx, keys: HqKeys) -> dict[str, Any]:
    """The ``coupon_keys`` change as a page carries it: every key in force, revoked ids."""
    rows = tx.all("SELECT id, fingerprint, revoked_at FROM coupon_keys ORDER BY id")
    ring = keys._ring(rows)
    return {
        "keys": [{"id": k, "key": ring.keys[k].hex()} for k in sorted(ring.keys)],
        "revoked": sorted(ring.revoked),
    }
