"""People and scripts at head office: users, passwords, sign-in, sessions and script tokens.

* A **user** is a person with a role (:mod:`tillgate.hq.roles`). An admin adds one and gets a
  one-time password; the first sign-in with it must set a new one (403
  ``password_change_required`` until then). Passwords are kept as scrypt hashes (memory-hard,
  salted; :func:`hash_password`), never as given.
* Signing in (``POST /v1/auth/login``) gives a **session** token for :data:`SESSION_HOURS`;
  its role and stores are the user's at each request, so disabling a user ends every session
  at once.
* A **script token** (``hq tokens new``) has a role and stores of its own and lasts until it
  is revoked.
* Tokens are long random secrets, so only a SHA-256 hash of each is kept (as for tills'
  credentials): guessing one is hopeless and the hash finds it by index.
* **Sign-in limit**: at most :data:`MAX_FAILURES` failed attempts per name in
  :data:`FAILURE_WINDOW`; more is 429 ``too_many_attempts`` (with ``retry_after``) whether
  or not the password is right. Each attempt takes its slot *before* the password is
  checked, so attempts in parallel cannot get past the limit; a right password frees it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import uuid
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from tillgate.core.errors import (
    InvalidRequest,
    NotFound,
    PasswordChangeRequired,
    TooManyAttempts,
    Unauthorized,
    UserExists,
)

from . import audit
from .db import Database, Row, Tx
from .roles import Principal, Role, check_stores, parse_role
from .tills import CODE_ALPHABET
from .wire import ts

logger = logging.getLogger(__name__)

SESSION_HOURS = 12
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=1)
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # scrypt reads all of it: no megabyte passwords
TOKEN_PREFIX = "tgh_"  # tells a head-office token from a till credential at a glance
NAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{0,63}$")
# scrypt: N=2**15, r=8 (32 MiB, ~0.1 s a check). OWASP's floor is N=2**17 at r=8, p=1; this
# trades some of it for sign-ins that do not stall a small head office, and the rate
# limit above stops guessing online. Kept in the hash, so it can be raised later.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


# ---------------------------------------------------------------- secrets


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64), for :func:`verify_password`."""
    salt = secrets.token_bytes(16)
    key = _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P)
    return "$".join(("scrypt", str(n), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(key)))


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``, compared in constant time."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 << 20, dklen=32
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@cache
def _decoy() -> str:
    # Checked against when the name is unknown, so that an unknown name takes as long as a
    # wrong password and names cannot be told by timing.
    return hash_password(secrets.token_urlsafe(16))


def token_hash(token: str) -> str:
    return hashlib.sha256(b"tillgate-hq-token\x00" + token.encode("utf-8")).hexdigest()


def one_time_password() -> str:
    """16 symbols of an alphabet with no look-alikes, in groups of 4 (about 78 bits)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def normalize_name(name: str) -> str:
    found = name.strip().lower()
    if not NAME.match(found):
        raise InvalidRequest(
            "name: 1-64 letters, digits and _ . @ -, starting with a letter or digit"
        )
    return found


def check_new_password(name: str, new: str, old: str) -> None:
    if len(new) < MIN_PASSWORD:
        raise InvalidRequest(f"new_password: at least {MIN_PASSWORD} characters")
    if len(new) > MAX_PASSWORD:
        raise InvalidRequest(f"new_password: at most {MAX_PASSWORD} characters")
    if new == old:
        raise InvalidRequest("new_password: must differ from the current one")
    if new.strip().lower() == name:
        raise InvalidRequest("new_password: must not be the user's name")


# ---------------------------------------------------------------- users


def _stores(text: str) -> list[str]:
    return sorted(json.loads(text))


def add_user(
    db: Database,
    name: str,
    role_name: str,
    stores: list[str],
    *,
    operator: str | None,
    now: datetime,
) -> dict[str, Any]:
    """A new user with a one-time password, returned once (changed at first sign-in)."""
    name = normalize_name(name)
    role = parse_role(role_name)
    shops = sorted(check_stores(role, stores))
    password = one_time_password()
    hashed = hash_password(password)
    with db.write() as tx:
        if tx.scalar("SELECT 1 FROM users WHERE name = ?", (name,)):
            raise UserExists(f"a user {name!r} exists already (see tillgate hq users list)")
        tx.execute(
            "INSERT INTO users (name, role, stores, password_hash, must_change, created_at,"
            " created_by) VALUES (?, ?, ?, ?, 1, ?, ?)",
            (name, role.value, json.dumps(shops), hashed, ts(now), audit.current().name),
        )
        after = {"role": role.value, "stores": shops, "status": "active"}
        audit.write(
            tx,
            action="user.add",
            subject=name,
            detail=after,
            reason="",
            operator=operator,
            now=now,
            after=after,
        )
    logger.info("user %s added with role %s", name, role.value)
    return {"name": name, "role": role.value, "stores": shops, "password": password}


def list_users(db: Database) -> list[dict[str, Any]]:
    with db.read() as tx:
        rows = tx.all("SELECT * FROM users ORDER BY name")
    return [
        {
            "name": r["name"],
            "role": r["role"],
            "stores": _stores(r["stores"]),
            "status": "disabled" if r["disabled_at"] else "active",
            "must_change_password": bool(r["must_change"]),
            "created_at": r["created_at"],
            "created_by": r["created_by"],
            "last_login": r["last_login"],
            "disabled_at": r["disabled_at"],
        }
        for r in rows
    ]


def disable_user(db: Database, name: str, *, operator: str | None, now: datetime) -> dict[str, Any]:
    """Disable a user for good: no sign-in, and every session of theirs ends now."""
    name = name.strip().lower()
    with db.write() as tx:
        row = tx.one("SELECT disabled_at FROM users WHERE name = ?", (name,))
        if row is None:
            raise NotFound(f"no user {name!r}; see tillgate hq users list")
        if row["disabled_at"] is not None:
            return {"name": name, "disabled_at": row["disabled_at"], "sessions_ended": 0}
        tx.execute("UPDATE users SET disabled_at = ? WHERE name = ?", (ts(now), name))
        ended = tx.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL",
            (ts(now), name),
        )
        audit.write(
            tx,
            action="user.disable",
            subject=name,
            detail={"sessions_ended": ended},
            reason="",
            operator=operator,
            now=now,
            before={"status": "active"},
            after={"status": "disabled"},
        )
    logger.info("user %s disabled; %d sessions ended", name, ended)
    return {"name": name, "disabled_at": ts(now), "sessions_ended": ended}


# ---------------------------------------------------------------- sign-in


def _take_attempt(db: Database, name: str, now: datetime) -> Row | None:
    """Count a sign-in attempt against ``name`` (429 past the limit); the user, if any."""
    since = ts(now - FAILURE_WINDOW)
    with db.write() as tx:
        tx.execute("DELETE FROM login_failures WHERE at <= ?", (since,))
        recent = tx.all(
            "SELECT at FROM login_failures WHERE name = ? AND at > ? ORDER BY at", (name, since)
        )
        if len(recent) >= MAX_FAILURES:
            free_at = datetime.fromisoformat(recent[0]["at"]) + FAILURE_WINDOW
            wait = max(1, int((free_at - now).total_seconds() + 0.999))
            raise TooManyAttempts(
                f"too many failed sign-ins for {name!r}: at most {MAX_FAILURES} a minute; "
                f"try again in {wait} s",
                details={"retry_after": wait},
            )
        tx.execute(
            "INSERT INTO login_failures (id, name, at) VALUES (?, ?, ?)",
            (uuid.uuid4().hex, name, ts(now)),
        )
        return tx.one("SELECT * FROM users WHERE name = ?", (name,))


def _checked(db: Database, name: str, password: str, now: datetime) -> Row:
    """The user whose password this is (the attempt freed), or 401/429 (the attempt kept)."""
    refused = Unauthorized("wrong name or password")
    try:
        name = normalize_name(name)
    except InvalidRequest:
        raise refused from None
    if len(password) > MAX_PASSWORD:
        raise refused
    user = _take_attempt(db, name, now)
    if not verify_password(password, user["password_hash"] if user else _decoy()) or not user:
        logger.warning("failed sign-in for %r", name)
        raise refused
    with db.write() as tx:
        tx.execute("DELETE FROM login_failures WHERE name = ?", (name,))
    if user["disabled_at"] is not None:
        raise Unauthorized(f"user {name!r} is disabled since {user['disabled_at']}")
    return user


def _session(tx: Tx, user: Row, now: datetime) -> dict[str, Any]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = tx.next_ids("token")
    expires = now + timedelta(hours=SESSION_HOURS)
    tx.execute(
        "INSERT INTO api_tokens (id, token_hash, kind, user_name, role, stores, created_at,"
        " created_by, expires_at) VALUES (?, ?, 'session', ?, ?, ?, ?, ?, ?)",
        (
            token_id,
            token_hash(token),
            user["name"],
            user["role"],
            user["stores"],
            ts(now),
            user["name"],
            ts(expires),
        ),
    )
    tx.execute("UPDATE users SET last_login = ? WHERE name = ?", (ts(now), user["name"]))
    return {
        "token": token,
        "token_id": token_id,
        "name": user["name"],
        "role": user["role"],
        "stores": _stores(user["stores"]),
        "expires_at": ts(expires),
    }


def login(db: Database, name: str, password: str, *, now: datetime) -> dict[str, Any]:
    """Sign in: a session token, or 403 ``password_change_required`` (the one-time one)."""
    user = _checked(db, name, password, now)
    if user["must_change"]:
        raise PasswordChangeRequired(
            f"{user['name']} signs in with a one-time password: set a new one first "
            "(tillgate hq login asks for it; POST /v1/auth/password)"
        )
    with db.write() as tx:
        session = _session(tx, user, now)
    logger.info("user %s signed in (session %d)", user["name"], session["token_id"])
    return session


def change_password(
    db: Database, name: str, password: str, new_password: str, *, now: datetime
) -> dict[str, Any]:
    """Replace a user's password (the one-time one, or any); signs them in."""
    user = _checked(db, name, password, now)
    check_new_password(user["name"], new_password, password)
    hashed = hash_password(new_password)
    with db.write() as tx:
        tx.execute(
            "UPDATE users SET password_hash = ?, must_change = 0, password_changed_at = ?"
            " WHERE name = ?",
            (hashed, ts(now), user["name"]),
        )
        audit.write(
            tx,
            action="user.password",
            subject=user["name"],
            detail={},
            reason="",
            operator=None,
            now=now,
            actor=user["name"],
            role=user["role"],
            before={"one_time": bool(user["must_change"])},
            after={"one_time": False},
        )
        session = _session(tx, user, now)
    logger.info("user %s changed their password", user["name"])
    return session


# ---------------------------------------------------------------- tokens


def new_token(
    db: Database,
    role_name: str,
    stores: list[str],
    *,
    label: str | None,
    operator: str | None,
    now: datetime,
) -> dict[str, Any]:
    """A script token with its own role (and stores); the token is returned once."""
    role = parse_role(role_name)
    shops = sorted(check_stores(role, stores))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.write() as tx:
        token_id = tx.next_ids("token")
        tx.execute(
            "INSERT INTO api_tokens (id, token_hash, kind, role, stores, label, created_at,"
            " created_by) VALUES (?, ?, 'script', ?, ?, ?, ?, ?)",
            (
                token_id,
                token_hash(token),
                role.value,
                json.dumps(shops),
                label,
                ts(now),
                audit.current().name,
            ),
        )
        after = {"role": role.value, "stores": shops, "label": label}
        audit.write(
            tx,
            action="token.new",
            subject=f"token:{token_id}",
            detail=after,
            reason="",
            operator=operator,
            now=now,
            after=after,
        )
    logger.info("script token %d made with role %s", token_id, role.value)
    return {"id": token_id, "role": role.value, "stores": shops, "label": label, "token": token}


def list_tokens(db: Database, now: datetime) -> list[dict[str, Any]]:
    with db.read() as tx:
        rows = tx.all("SELECT * FROM api_tokens ORDER BY id")
    return [
        {
            "id": int(r["id"]),
            "kind": r["kind"],
            "user": r["user_name"],
            "role": r["role"],
            "stores": _stores(r["stores"]),
            "label": r["label"],
            "created_at": r["created_at"],
            "created_by": r["created_by"],
            "expires_at": r["expires_at"],
            "last_used": r["last_used"],
            "revoked_at": r["revoked_at"],
            "status": _status(r, now),
        }
        for r in rows
    ]


def _status(row: Row, now: datetime) -> str:
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] is not None and row["expires_at"] <= ts(now):
        return "expired"
    return "active"


def revoke_token(
    db: Database, token_id: int, *, operator: str | None, now: datetime
) -> dict[str, Any]:
    """Revoke a script token or end a session; its next request is 401."""
    with db.write() as tx:
        row = tx.one("SELECT * FROM api_tokens WHERE id = ?", (token_id,))
        if row is None:
            raise NotFound(f"no token {token_id}; see tillgate hq tokens list")
        if row["revoked_at"] is not None:
            return {"id": token_id, "revoked_at": row["revoked_at"]}
        tx.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", (ts(now), token_id))
        audit.write(
            tx,
            action="token.revoke",
            subject=f"token:{token_id}",
            detail={"kind": row["kind"], "user": row["user_name"], "role": row["role"]},
            reason="",
            operator=operator,
            now=now,
            before={"status": _status(row, now)},
            after={"status": "revoked"},
        )
    logger.info("token %d revoked", token_id)
    return {"id": token_id, "revoked_at": ts(now)}


# ---------------------------------------------------------------- authentication


def authenticate(db: Database, token: str, now: datetime) -> Principal | None:
    """Who a head-office token is; None if it is not one (a till's, say); 401 if it is
    revoked, expired, or its user disabled."""
    with db.read() as tx:
        row = tx.one(
            "SELECT t.*, u.role AS user_role, u.stores AS user_stores,"
            " u.disabled_at AS user_disabled FROM api_tokens t"
            " LEFT JOIN users u ON u.name = t.user_name WHERE t.token_hash = ?",
            (token_hash(token),),
        )
    if row is None:
        return None
    token_id = int(row["id"])
    session = row["kind"] == "session"
    if session and (row["user_disabled"] is not None or row["user_role"] is None):
        raise Unauthorized(f"user {row['user_name']!r} is disabled; their sessions ended")
    if row["revoked_at"] is not None:
        raise Unauthorized(f"token {token_id} was revoked at {row['revoked_at']}")
    if row["expires_at"] is not None and row["expires_at"] <= ts(now):
        raise Unauthorized(
            f"the session of {row['user_name']} expired at {row['expires_at']}; sign in again: "
            f"tillgate hq login {row['user_name']}"
        )
    if session:
        role, stores, actor = row["user_role"], row["user_stores"], row["user_name"]
    else:
        role, stores, actor = row["role"], row["stores"], f"token:{token_id}"
    _touch(db, row, now)
    return Principal(
        actor=actor,
        role=Role(role),
        stores=frozenset(json.loads(stores)),
        token_id=token_id,
        user=row["user_name"],
    )


def _touch(db: Database, row: Row, now: datetime) -> None:
    # At most once a minute per token: a write per request would serialize reads on SQLite.
    if row["last_used"] is None or row["last_used"] <= ts(now - timedelta(minutes=1)):
        with db.write() as tx:
            tx.execute("UPDATE api_tokens SET last_used = ? WHERE id = ?", (ts(now), row["id"]))


def logout(db: Database, principal: Principal, now: datetime) -> dict[str, Any]:
    """End the session (or revoke the script token) that sent the request."""
    if principal.token_id is None:
        raise InvalidRequest("the admin token of hq serve cannot be signed out; it is a file")
    return revoke_token(db, principal.token_id, operator=None, now=now)
