"""Head office as one object: its database, clock, admin token and chain identity."""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tillgate.core.clock import Clock
from tillgate.core.errors import ConfigError
from tillgate.core.files import write_secret
from tillgate.core.rules.coupons import CouponSigner

from .authority import PolicyCache
from .couponkeys import HqKeys
from .schema import migrate
from .tills import KnownTills
from .wire import ts

if TYPE_CHECKING:
    from .db import Database


@dataclass(frozen=True, kw_only=True)
class Hq:
    """A migrated HQ database with the secrets every request needs."""

    db: Database
    clock: Clock
    admin_token: str
    instance_id: str
    # The chain's coupon keys: files in ``data_dir``/keys, the list of them in the database.
    keys: HqKeys = field(repr=False, compare=False)
    # The chain's phone look-up key: tills find a card by a keyed hash of its phone, never
    # by the phone itself (hq/feed.py). In its own 0600 file, never in the database.
    lookup_key: bytes = field(repr=False, compare=False)
    # What the program in force lets a till push, kept per program version.
    policies: PolicyCache = field(default_factory=PolicyCache, compare=False)
    # The till each credential authenticated as (a hold's reads go with its check).
    known_tills: KnownTills = field(default_factory=KnownTills, compare=False)
    # Where head office keeps its files (the key files' folder): scratch files go there too.
    data_dir: Path | None = field(default=None, compare=False)

    @classmethod
    def open(
        cls, db: Database, *, clock: Clock, admin_token: str, data_dir: Path | None = None
    ) -> Hq:
        """Migrate the database and make the chain's identity and coupon key on first use.

        The coupon keys live in ``data_dir``/keys (:mod:`tillgate.hq.couponkeys`; beside a
        SQLite file when no ``data_dir`` is given): several HQ processes on one PostgreSQL
        database share that folder, and the database says which keys it must hold.

        The phone look-up key is ``lookup.key`` in that same data folder
        (:func:`load_lookup_key`); every HQ process of the chain needs the same one too.
        """
        if len(admin_token) < 16:
            raise ValueError("the admin token must be at least 16 characters")
        migrate(db, now=ts(clock.now()))
        with db.write() as tx:
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('instance_id', ?)"
                " ON CONFLICT (key) DO NOTHING",
                (uuid.uuid4().hex,),
            )
            meta = {r["key"]: r["value"] for r in tx.all("SELECT key, value FROM meta")}
        keys_home = data_dir if data_dir else getattr(db, "path", None)
        if keys_home is None:
            raise ValueError("head office on PostgreSQL needs a data_dir for its key files")
        if not data_dir:
            keys_home = Path(keys_home).parent
        keys = HqKeys.open(db, Path(keys_home), now=clock.now())
        return cls(
            db=db,
            clock=clock,
            admin_token=admin_token,
            instance_id=meta["instance_id"],
            keys=keys,
            lookup_key=load_lookup_key(Path(keys_home)),
            data_dir=Path(keys_home),
        )

    @property
    def signer(self) -> CouponSigner:
        """Signs with the newest key and verifies every key in force, as they are now.

        A snapshot, read here, not inside the caller's transaction (SQLite nests none).
        """
        return CouponSigner(self.keys.coupon_keys())

    @property
    def coupon_key(self) -> bytes:
        """The one key enrolment gives tills of earlier versions (key 1)."""
        return self.keys.legacy_key()

    def is_admin(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.admin_token.encode())


LOOKUP_KEY_FILE = "lookup.key"


def load_lookup_key(data_dir: Path) -> bytes:
    """The chain's phone look-up key from ``data_dir``/lookup.key, made (0600) on first use.

    Every head-office process of one chain must use the same key (copy the file to each;
    docs/security.md, "Personal data"): a till looks phones up by hashes made with it.
    """
    path = data_dir / LOOKUP_KEY_FILE
    if not path.exists():
        write_secret(path, (secrets.token_bytes(32).hex() + "\n").encode("ascii"))
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the phone look-up key {path}: {exc}") from exc
    if len(key) < 16:
        raise ConfigError(f"the phone look-up key in {path} is too short (at least 16 bytes)")
    return key
