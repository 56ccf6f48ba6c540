"""Tills at head office: one-time enrolment codes, per-till credentials, authentication.

A till enrols once with a code an admin issued for it (``hq enroll-code``) and gets its
own credential; HQ keeps only a SHA-256 hash of codes and credentials. Both are long
random secrets (not passwords), so a fast hash is enough: guessing one is hopeless.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tillgate.core.errors import (
    EnrolmentRefused,
    InvalidRequest,
    NotFound,
    Unauthorized,
)

from .db import Database, Pending, Row, Tx
from .wire import ts

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: read out on the phone
CODE_SYMBOLS = 12  # 30**12 ≈ 2**59
CODE_DAYS = 7
HQ_TILL = "hq"  # the till id of the entries HQ writes itself (expiry, opening balances)


@dataclass(frozen=True, kw_only=True)
class TillId:
    """An authenticated till; ``program``: the program version in force when it was
    authenticated (read in the same statement: on PostgreSQL a statement is a round trip,
    and a hold is on the calculate's clock), None before any program or when not read."""

    id: str
    store: str
    program: int | None = None


def secret_hash(secret: str) -> str:
    return hashlib.sha256(b"tillgate-hq\x00" + secret.encode("utf-8")).hexdigest()


def normalize_code(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_SYMBOLS))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_SYMBOLS, 4))


def issue_code(tx: Tx, *, store: str, till: str, now: datetime) -> dict[str, str]:
    """A new one-time enrolment code for ``till`` of ``store`` (valid 7 days), in the
    caller's transaction (which writes its audit row too)."""
    if till == HQ_TILL:
        raise InvalidRequest(f"till: {HQ_TILL!r} is reserved for head office's own entries")
    code = new_code()
    expires = now + timedelta(days=CODE_DAYS)
    tx.execute(
        "INSERT INTO enroll_codes (code_hash, store, till, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (secret_hash(normalize_code(code)), store, till, ts(now), ts(expires)),
    )
    return {"code": code, "till": till, "store": store, "expires_at": ts(expires)}


def enroll(db: Database, *, code: str, now: datetime) -> tuple[TillId, str]:
    """Exchange a code for a new credential; returns the till and the credential (once)."""
    refused = EnrolmentRefused(
        "this enrolment code is not valid (unknown, already used or expired); "
        "ask head office for a new one: tillgate hq enroll-code --store S --till T"
    )
    digest = secret_hash(normalize_code(code))
    credential = secrets.token_urlsafe(32)
    with db.write() as tx:
        row = tx.one("SELECT * FROM enroll_codes WHERE code_hash = ?", (digest,))
        if row is None or row["used_at"] is not None or row["expires_at"] <= ts(now):
            raise refused
        # Two tills racing with one code: only one UPDATE finds it unused.
        if not tx.execute(
            "UPDATE enroll_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL",
            (ts(now), digest),
        ):
            raise refused
        # Enrolling again replaces the credential (and lifts a revocation); the till keeps
        # its sequence, so a till whose data file was lost must enrol under a new id.
        tx.execute(
            "INSERT INTO tills (id, store, credential_hash, enrolled_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET store = excluded.store,"
            " credential_hash = excluded.credential_hash, enrolled_at = excluded.enrolled_at,"
            " revoked_at = NULL",
            (row["till"], row["store"], secret_hash(credential), ts(now)),
        )
    return TillId(id=row["till"], store=row["store"]), credential


def bearer(header: str | None) -> str:
    """The token of an ``Authorization: Bearer …`` header; Unauthorized when there is none."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("missing or malformed Authorization header; send 'Bearer <credential>'")
    return value.strip()


def find_till(tx: Tx, token: str) -> Row | None:
    return ask_till(tx, token).one()


def ask_till(tx: Tx, token: str) -> Pending:
    """The credential's till row (and the program in force), asked ahead."""
    return tx.ahead(
        "SELECT t.*, (SELECT MAX(version) FROM programs) AS program_in_force"
        " FROM tills t WHERE t.credential_hash = ?",
        (secret_hash(token),),
    )


def authenticate(tx: Tx, token: str, *, asked: Pending | None = None) -> TillId:
    """The till a credential belongs to; Unauthorized if unknown or revoked.

    ``asked``: its :func:`ask_till`, queued first in this transaction.
    """
    row = (asked if asked is not None else ask_till(tx, token)).one()
    if row is None:
        raise Unauthorized("unknown credential; enrol the till (tillgate enroll CODE --hq URL)")
    if row["revoked_at"] is not None:
        raise Unauthorized(
            f"the credential of till {row['id']} was revoked at {row['revoked_at']}; "
            "enrol it again with a new code"
        )
    program = row["program_in_force"]
    return TillId(
        id=row["id"], store=row["store"], program=int(program) if program is not None else None
    )


class KnownTills:
    """The till each credential authenticated as before, in this process.

    A hold is on a calculate's clock, and on PostgreSQL each round trip wakes the server:
    with the till known, what a hold reads of it goes in the round trip that
    authenticates the credential. The credential is checked all the same, first, every
    time (a revoked one is refused at once); this only says which rows to ask for. A
    credential is a random secret bound to one till for good, so what was known stays
    true or the credential stops authenticating. Only credentials that authenticated are
    kept (one per enrolled till); past ``limit`` the map starts again.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._ids: dict[str, str] = {}
        self._limit = limit

    def get(self, token: str) -> str | None:
        return self._ids.get(secret_hash(token))

    def put(self, token: str, till: str) -> None:
        if len(self._ids) >= self._limit:
            self._ids.clear()
        self._ids[secret_hash(token)] = till


def touch(tx: Tx, till: str, now: datetime) -> None:
    """The till pulled: it is seen, and it has pushed what it had (a sync pushes first),
    so its holds past their time may end (:mod:`tillgate.hq.holds`)."""
    tx.execute(
        "UPDATE tills SET last_seen = ?, last_pull = ? WHERE id = ?", (ts(now), ts(now), till)
    )


def revoke(tx: Tx, *, till: str, now: datetime) -> dict[str, Any]:
    """Revoke a till's credential at once, in the caller's transaction; its next request is
    refused. ``revoked`` False: it was revoked before (at ``revoked_at``)."""
    if not tx.execute(
        "UPDATE tills SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (ts(now), till)
    ):
        row = tx.one("SELECT revoked_at FROM tills WHERE id = ?", (till,))
        if row is None:
            raise NotFound(f"no till {till!r} has enrolled at this head office")
        return {"till": till, "revoked_at": row["revoked_at"], "revoked": False}
    return {"till": till, "revoked_at": ts(now), "revoked": True}


def list_tills(db: Database) -> list[dict[str, Any]]:
    with db.read() as tx:
        rows = tx.all(
            "SELECT id, store, through_seq, enrolled_at, last_push, last_seen, revoked_at"
            " FROM tills ORDER BY store, id"
        )
    return [
        {
            "till": r["id"],
            "store": r["store"],
            "through_seq": int(r["through_seq"]),
            "enrolled_at": r["enrolled_at"],
            "last_push": r["last_push"],
            "last_seen": r["last_seen"],
            "revoked": r["revoked_at"] is not None,
            "revoked_at": r["revoked_at"],
        }
        for r in rows
    ]
