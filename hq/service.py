"""Head office as one object: its database, clock, admin token and chain identity."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tillgate.core.clock import Clock
from tillgate.core.rules.coupons import CouponSigner, generate_key

from .authority import PolicyCache
from .schema import migrate
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
    coupon_key: bytes
    # What the program in force lets a till push, kept per program version.
    policies: PolicyCache = field(default_factory=PolicyCache, compare=False)

    @classmethod
    def open(cls, db: Database, *, clock: Clock, admin_token: str) -> Hq:
        """Migrate the database and make the chain's identity and coupon key on first use.

        The coupon key lives in the database, not a file, so several HQ processes on one
        PostgreSQL database sign and verify with the same key.
        """
        if len(admin_token) < 16:
            raise ValueError("the admin token must be at least 16 characters")
        migrate(db, now=ts(clock.now()))
        with db.write() as tx:
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('instance_id', ?), ('coupon_key', ?)"
                " ON CONFLICT (key) DO NOTHING",
                (uuid.uuid4().hex, generate_key().hex()),
            )
            meta = {r["key"]: r["value"] for r in tx.all("SELECT key, value FROM meta")}
        return cls(
            db=db,
            clock=clock,
            admin_token=admin_token,
            instance_id=meta["instance_id"],
            coupon_key=bytes.fromhex(meta["coupon_key"]),
        )

    @property
    def signer(self) -> CouponSigner:
        return CouponSigner(self.coupon_key)

    def is_admin(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.admin_token.encode())
