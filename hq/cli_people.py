"""The ``tillgate hq …`` verbs of people and roles: login, logout, users, tokens, settings,
audit, and support's ``cards block|unblock``.

**Where a session lives.** ``hq login NAME`` keeps the session token in
``hq-sessions.json`` (one per head-office URL) in the user's config directory
(``$XDG_CONFIG_HOME/tillgate``, else ``~/.config/tillgate``; ``%APPDATA%\\tillgate`` on
Windows), the folder 0700 and the file 0600; admin verbs use it when no ``--token``,
``$TILLGATE_HQ_TOKEN`` or ``./hq-admin.token`` says otherwise. ``hq login NAME --print``
keeps nothing and prints the token alone on the last line, for
``export TILLGATE_HQ_TOKEN=…``.

**Passwords** are read with getpass on a terminal, else one a line from standard input (so
scripts and tests can sign in): the password, then — when head office asks for a new one
(the one-time password of ``hq users add``) — the new one.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tillgate.core.cards import mask
from tillgate.core.errors import ConfigError, HqRefused

from .cli import _admin_options, _client, _hq_url, _no_verb
from .roles import ROLES

SESSIONS = "hq-sessions.json"


def register(
    sub: argparse._SubParsersAction[Any],
    cards: argparse._SubParsersAction[Any],
    parser_class: type[argparse.ArgumentParser],
) -> None:
    """Add these verbs to ``tillgate hq`` (``sub``) and to ``tillgate hq cards``."""

    def group(name: str, text: str) -> argparse._SubParsersAction[Any]:
        p: argparse.ArgumentParser = sub.add_parser(
            name, help=text, description=f"{text[0].upper()}{text[1:]}."
        )
        p.set_defaults(handler=_no_verb(p))
        verbs: argparse._SubParsersAction[Any] = p.add_subparsers(
            dest=f"{name}_verb", metavar="VERB", parser_class=parser_class
        )
        return verbs

    def verb(
        where: argparse._SubParsersAction[Any], name: str, text: str, handler: Any, admin: bool
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = where.add_parser(
            name, help=text, description=f"{text[0].upper()}{text[1:]}."
        )
        if admin:
            _admin_options(p)
        p.set_defaults(handler=handler)
        return p

    login = verb(sub, "login", "sign in to head office as a user", _login, admin=False)
    login.add_argument("name", metavar="NAME")
    login.add_argument(
        "--print", action="store_true", help="print the token (last line) instead of keeping it"
    )
    login.add_argument("--new-password", action="store_true", help="also change the password")
    _url_options(login)
    logout = verb(sub, "logout", "end the session hq login keeps", _logout, admin=False)
    _url_options(logout)

    users = group("users", "people who use head office, with their roles")
    add = verb(users, "add", "add a user; the one-time password is the last line", _users_add, True)
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--store", action="append", default=[], help="store_manager: a store (repeat)")
    verb(users, "list", "every user, role, stores and status", _users_list, True).add_argument(
        "--json", action="store_true", help="print JSON"
    )
    dis = verb(users, "disable", "disable a user and end their sessions", _users_disable, True)
    dis.add_argument("name", metavar="NAME")

    tokens = group("tokens", "tokens of scripts, and people's sessions")
    new = verb(tokens, "new", "a token for a script; the token is the last line", _tokens_new, True)
    new.add_argument("--role", required=True, choices=ROLES)
    new.add_argument("--store", action="append", default=[], help="store_manager: a store (repeat)")
    new.add_argument("--label", help="what the token is for (shown by 'tokens list')")
    verb(
        tokens, "list", "every token and session (never a token)", _tokens_list, True
    ).add_argument("--json", action="store_true", help="print JSON")
    rev = verb(tokens, "revoke", "revoke a token or end a session", _tokens_revoke, True)
    rev.add_argument("id", metavar="ID", type=int, help="the id 'tokens list' shows")

    sets = group("settings", "head office's settings")
    put = verb(sets, "set", "change a setting (e.g. support-adjust-limit 500)", _settings_set, True)
    put.add_argument("key", metavar="KEY")
    put.add_argument("value", metavar="N", type=int)
    verb(sets, "list", "every setting, its value and default", _settings_list, True)

    aud = verb(sub, "audit", "the audit log: every change, who, role, what", _audit, True)
    aud.add_argument("--since", metavar="D", help="from this date (YYYY-MM-DD) or time on")
    aud.add_argument("--json", action="store_true", help="one JSON object per line")

    for name, blocked in (("block", True), ("unblock", False)):
        text = "block a card at every till" if blocked else "unblock a card"
        card = verb(cards, name, text, _card_block, True)
        card.add_argument("number", metavar="CARD")
        card.add_argument("--reason", help="why (kept in the audit log)")
        card.set_defaults(blocked=blocked)


def _url_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hq", metavar="URL", help="head office (default as for admin verbs)")
    parser.add_argument("--config", metavar="FILE", help="a till config to take [hq] url from")


# ---------------------------------------------------------------- sessions


def sessions_path() -> Path:
    """Where ``hq login`` keeps sessions: the user's config directory."""
    base = os.environ.get("XDG_CONFIG_HOME")
    if not base and os.name == "nt":
        base = os.environ.get("APPDATA")
    return (Path(base) if base else Path.home() / ".config") / "tillgate" / SESSIONS


def _sessions() -> dict[str, Any]:
    path = sessions_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the sessions file {path}: {exc}; delete it") from exc
    return data if isinstance(data, dict) else {}


def _keep(sessions: dict[str, Any]) -> Path:
    path = sessions_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(sessions, f, indent=2)
        os.chmod(tmp, 0o600)  # an older file of wider mode is replaced, not reused
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write the sessions file {path}: {exc}") from exc
    return path


def saved_session(url: str) -> str | None:
    """The token ``hq login`` kept for head office ``url``, if it has not expired."""
    found = _sessions().get(url.rstrip("/"))
    if not isinstance(found, dict) or not isinstance(found.get("token"), str):
        return None
    expires = found.get("expires_at")
    if isinstance(expires, str) and datetime.fromisoformat(expires) <= datetime.now(UTC):
        raise ConfigError(
            f"the session of {found.get('name')} at {url} expired at {expires[:16]} UTC; sign "
            f"in again: tillgate hq login {found.get('name')}"
        )
    return str(found["token"])


# ---------------------------------------------------------------- signing in


def _secret(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.readline()
    if not line:
        raise ConfigError(f"{prompt.strip().rstrip(':')}: nothing on standard input")
    return line.rstrip("\r\n")


def _new_password(name: str) -> str:
    new = _secret(f"new password for {name} (at least 12 characters): ")
    if sys.stdin.isatty() and _secret("the new password again: ") != new:
        raise ConfigError("the two new passwords differ; nothing was changed")
    return new


def _login(args: argparse.Namespace) -> int:
    from .client import AdminClient

    url = _hq_url(args)
    with AdminClient(url, None) as hq:
        password = _secret(f"password for {args.name} at {url}: ")
        if args.new_password:
            session = hq.change_password(args.name, password, _new_password(args.name))
        else:
            try:
                session = hq.login(args.name, password)
            except HqRefused as exc:
                if exc.code != "password_change_required":
                    raise
                print(
                    f"{args.name}: the one-time password must be replaced now",
                    file=sys.stderr,
                )
                session = hq.change_password(args.name, password, _new_password(args.name))
    who = f"{session['name']} ({session['role']}"
    who += f", stores {', '.join(session['stores'])})" if session["stores"] else ")"
    until = session["expires_at"][:16]
    if args.print:
        print(f"signed in as {who} until {until} UTC; the token is below", file=sys.stderr)
        print(session["token"])
        return 0
    sessions = _sessions()
    sessions[url.rstrip("/")] = {k: session[k] for k in ("name", "role", "token", "expires_at")}
    path = _keep(sessions)
    print(f"signed in to {url} as {who} until {until} UTC; session kept in {path}")
    return 0


def _logout(args: argparse.Namespace) -> int:
    from .client import AdminClient

    url = _hq_url(args).rstrip("/")
    sessions = _sessions()
    kept = sessions.pop(url, None)
    if not isinstance(kept, dict):
        print(f"no session kept for {url}")
        return 0
    try:
        with AdminClient(url, str(kept.get("token"))) as hq:
            hq.logout()
    except (ConfigError, HqRefused):
        pass  # expired or revoked already: forgetting it is all that is left
    _keep(sessions)
    print(f"signed out of {url} ({kept.get('name')})")
    return 0


# ---------------------------------------------------------------- users and tokens


def _users_add(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        out = hq.add_user(args.name, args.role, args.store)
    stores = f" of {', '.join(out['stores'])}" if out["stores"] else ""
    print(
        f"user {out['name']} added as {out['role']}{stores}; their one-time password is below "
        f"(it must be changed at the first 'tillgate hq login {out['name']}')"
    )
    print(out["password"])
    return 0


def _users_list(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        users = hq.users()["users"]
    if args.json:
        for u in users:
            print(json.dumps(u, ensure_ascii=False))
        return 0
    for u in users:
        status = u["status"] + (", one-time password" if u["must_change_password"] else "")
        print(
            f"{u['name']:<20} {u['role']:<14} {','.join(u['stores']) or '-':<20} {status:<28} "
            f"last login {u['last_login'] or '-'}"
        )
    return 0


def _users_disable(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        out = hq.disable_user(args.name)
    print(f"user {out['name']} disabled ({out['sessions_ended']} sessions ended)")
    return 0


def _tokens_new(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        out = hq.new_token(args.role, args.store, args.label)
    stores = f" of {', '.join(out['stores'])}" if out["stores"] else ""
    print(f"token {out['id']} ({out['role']}{stores}); shown once, keep it secret:")
    print(out["token"])
    return 0


def _tokens_list(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        tokens = hq.tokens()["tokens"]
    if args.json:
        for t in tokens:
            print(json.dumps(t, ensure_ascii=False))
        return 0
    for t in tokens:
        who = t["user"] or t["label"] or "-"
        print(
            f"{t['id']:>5}  {t['kind']:<8} {who:<20} {t['role']:<14} "
            f"{','.join(t['stores']) or '-':<16} {t['status']:<8} last used {t['last_used'] or '-'}"
        )
    return 0


def _tokens_revoke(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        out = hq.revoke_token(args.id)
    print(f"token {out['id']} revoked at {out['revoked_at']}")
    return 0


def _settings_set(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        out = hq.set_setting(args.key, args.value)
    print(f"{out['key']} = {out['value']} (was {out['previous']})")
    return 0


def _settings_list(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        for s in hq.settings()["settings"]:
            print(f"{s['key']} = {s['value']} (default {s['default']}): {s['what']}")
    return 0


def _card_block(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        out = hq.block(args.number, blocked=args.blocked, reason=args.reason)
    print(f"card {mask(out['card'])}: {out['status']} (was {out['was']}); tills get it at sync")
    return 0


# ---------------------------------------------------------------- audit


def _state(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _audit(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        rows = hq.audit(since=args.since)["audit"]
    keys = ("at", "actor", "role", "action", "target", "before", "after", "operator", "reason")
    for a in rows:
        if args.json:
            print(json.dumps({k: a.get(k) for k in keys}, ensure_ascii=False))
            continue
        target = mask(a["target"]) if a["action"].startswith("card.") else a["target"]
        print(
            f"{a['at'][:19]}  {a['actor']:<16} {a['role']:<13} {a['action']:<17} {target:<15} "
            f"{_state(a['before'])} -> {_state(a['after'])}"
            + (f"  ({a['reason']})" if a["reason"] else "")
            + (f"  by {a['operator']}" if a.get("operator") else "")
        )
    return 0
