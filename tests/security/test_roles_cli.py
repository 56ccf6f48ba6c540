"""``tillgate hq users|tokens|login|settings|audit`` as people run them: real ``tillgate``
processes against a real ``hq serve``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hq import conftest as hq_fixtures
from tests.hq.test_cli import ANNA, CARDS, PROGRAM, served

sqlite_template = hq_fixtures.sqlite_template
served = served  # hq serve on db_url, in its own data directory


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite: each verb is a process of its own here (slow), and test_roles.py runs the
    same requests through the API on SQLite and PostgreSQL alike."""
    path = tmp_path / "hq.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def run(
    *args: str, cwd: Path, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``tillgate`` as a user runs it; ``stdin``: what they type (no terminal: one a line)."""
    return subprocess.run(
        [sys.executable, "-m", "tillgate.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        env={**os.environ, **env},
    )


def test_people_sign_in_and_do_what_their_role_allows(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    url, data = served
    admin_dir, person_dir = tmp_path / "admin", tmp_path / "person"
    admin_dir.mkdir()
    person_dir.mkdir()
    admin = {"TILLGATE_HQ_TOKEN": (data / "hq-admin.token").read_text().strip()}
    config = tmp_path / "config"  # the person's config directory: sessions live there
    person = {"XDG_CONFIG_HOME": str(config), "TILLGATE_HQ_TOKEN": ""}
    hq = ["--hq", url]

    def as_admin(*args: str) -> subprocess.CompletedProcess[str]:
        return run(*args, *hq, cwd=admin_dir, env=admin)

    assert as_admin("hq", "cards", "import", str(CARDS)).returncode == 0

    # A store manager needs stores; other roles take none (exit 2: bad usage).
    r = as_admin("hq", "users", "add", "sveta", "--role", "store_manager")
    assert r.returncode == 2 and "needs at least one store" in r.stderr
    r = as_admin("hq", "users", "add", "mark", "--role", "marketer", "--store", "store-01")
    assert r.returncode == 2 and "only a store_manager has stores" in r.stderr
    r = as_admin("hq", "users", "add", "mark", "--role", "wizard")
    assert r.returncode == 2 and "invalid choice" in r.stderr

    r = as_admin("hq", "users", "add", "mark", "--role", "marketer")
    assert r.returncode == 0, r.stderr
    once = r.stdout.strip().splitlines()[-1]
    assert len(once) == 19 and once.count("-") == 3

    # First sign-in: the one-time password, then a new one (no terminal: one a line).
    r = run("hq", "login", "mark", *hq, cwd=person_dir, env=person, stdin=f"{once}\nshort\n")
    assert r.returncode == 1 and "at least 12 characters" in r.stderr
    r = run(
        "hq", "login", "mark", *hq, cwd=person_dir, env=person, stdin=f"{once}\nmy new password\n"
    )
    assert r.returncode == 0, r.stderr
    assert "one-time password must be replaced" in r.stderr and "as mark (marketer)" in r.stdout
    sessions = config / "tillgate" / "hq-sessions.json"
    assert sessions.stat().st_mode & 0o777 == 0o600
    assert sessions.parent.stat().st_mode & 0o777 == 0o700
    assert json.loads(sessions.read_text())[url]["name"] == "mark"

    # The verbs use the kept session: a marketer pushes, but may not list tills (exit 1).
    r = run("hq", "push", str(PROGRAM), *hq, cwd=person_dir, env=person)
    assert r.returncode == 0, r.stderr
    r = run("hq", "tills", "list", *hq, cwd=person_dir, env=person)
    assert r.returncode == 1 and "role marketer may not list tills" in r.stderr

    # A wrong password is exit 1 with one clear line; the sixth failure in a minute is 429.
    for _ in range(5):
        r = run("hq", "login", "mark", *hq, cwd=person_dir, env=person, stdin="wrong guess\n")
        assert r.returncode == 1 and "wrong name or password" in r.stderr
    r = run("hq", "login", "mark", *hq, cwd=person_dir, env=person, stdin="my new password\n")
    assert r.returncode == 1 and "too many failed sign-ins" in r.stderr

    # A script token for support, alone on the last line; its adjust limit holds (exit 1).
    r = as_admin("hq", "tokens", "new", "--role", "support", "--label", "helpdesk bot")
    assert r.returncode == 0, r.stderr
    support = {"TILLGATE_HQ_TOKEN": r.stdout.strip().splitlines()[-1]}
    r = run("hq", "cards", "adjust", ANNA, "600", "--reason", "x", *hq, cwd=person_dir, env=support)
    assert r.returncode == 1 and "at most 500 points" in r.stderr and ANNA not in r.stderr
    r = as_admin("hq", "settings", "set", "support-adjust-limit", "1000")
    assert r.returncode == 0 and "support-adjust-limit = 1000 (was 500)" in r.stdout
    r = run(
        "hq", "cards", "adjust", ANNA, "600", "--reason", "ok", *hq, cwd=person_dir, env=support
    )
    assert r.returncode == 0, r.stderr
    r = run("hq", "cards", "block", ANNA, "--reason", "lost", *hq, cwd=person_dir, env=support)
    assert r.returncode == 0 and "blocked (was active)" in r.stdout and ANNA not in r.stdout
    r = run("hq", "settings", "list", *hq, cwd=person_dir, env=support)
    assert r.returncode == 1 and "role support may not read settings" in r.stderr

    # Lists, then disable and revoke: both are 401 from then on (exit 2: a refused token).
    r = as_admin("hq", "users", "list", "--json")
    assert [json.loads(ln)["name"] for ln in r.stdout.splitlines()] == ["mark"]
    r = as_admin("hq", "tokens", "list")
    assert "helpdesk bot" in r.stdout and "session" in r.stdout
    token_id = next(ln.split()[0] for ln in r.stdout.splitlines() if "helpdesk bot" in ln)
    assert as_admin("hq", "tokens", "revoke", token_id).returncode == 0
    r = run("hq", "cards", "show", ANNA, *hq, cwd=person_dir, env=support)
    assert r.returncode == 2 and "revoked" in r.stderr
    assert as_admin("hq", "users", "disable", "mark").returncode == 0
    r = run("hq", "push", str(PROGRAM), *hq, cwd=person_dir, env=person)
    assert r.returncode == 2 and "disabled" in r.stderr

    # Every change is in the audit log, one JSON object per line, with who and role.
    r = as_admin("hq", "audit", "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert all(
        set(a) >= {"at", "actor", "role", "action", "target", "before", "after"} for a in rows
    )
    assert [(a["actor"], a["role"], a["action"]) for a in rows] == [
        ("admin-token", "admin", "cards.import"),
        ("admin-token", "admin", "user.add"),
        ("mark", "marketer", "user.password"),
        ("mark", "marketer", "program.publish"),
        ("admin-token", "admin", "token.new"),
        ("admin-token", "admin", "setting.set"),
        ("token:2", "support", "card.adjust"),
        ("token:2", "support", "card.block"),
        ("admin-token", "admin", "token.revoke"),
        ("admin-token", "admin", "user.disable"),
    ]
    r = as_admin("hq", "audit")
    assert len(r.stdout.splitlines()) == len(rows) and ANNA not in r.stdout
    assert "balance=1240 -> balance=1840" in r.stdout
    # Only an admin reads it.
    r = run("hq", "audit", *hq, cwd=person_dir, env={"TILLGATE_HQ_TOKEN": "x" * 40})
    assert r.returncode == 2
