"""Roles at head office, through the real API on loopback (SQLite and PostgreSQL).

For every admin route and every role, a request with a token of that role is let through or
refused with 403 ``forbidden`` as ``hq/roles.py`` ROUTE_ROLES says (and a refused one writes
nothing). Then what the roles are for: store managers see their stores only, support adjusts
within its limit, every change is in the audit log with who made it, sign-in is limited to 5
failures a minute, the one-time password must be changed, disabled users and revoked
tokens are 401.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ANNA, program
from tests.hq import conftest as hq_fixtures
from tests.hq.helpers import ADMIN, T0, HqTest, start_hq
from tillgate.core.clock import ManualClock
from tillgate.hq.app import create_app
from tillgate.hq.roles import ROLES, ROUTE_ROLES, Role, matrix_markdown

# tests/hq's fixtures, by name: a running HQ on SQLite and on PostgreSQL.
hq = hq_fixtures.hq
db_url = hq_fixtures.db_url
pg_base_url = hq_fixtures.pg_base_url
pg_session = hq_fixtures.pg_session
sqlite_template = hq_fixtures.sqlite_template

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("users", "api_tokens", "settings", "login_failures")
MANAGER_STORES = ["store-01"]

# One request per route that reaches the route's work when the role may call it.
PROBES: dict[str, dict[str, Any]] = {
    "POST /v1/admin/program": {"json": program()},
    "POST /v1/admin/products": {"content": "sku,name,category\nA-1,Хлеб,bakery\n".encode()},
    "GET /v1/admin/products": {},
    "GET /v1/admin/products/unmatched": {},
    "POST /v1/admin/coupons/issue": {"json": {"promotion": "nope", "count": 1}},
    "POST /v1/admin/coupons/revoke": {"json": {"codes": ["NOPE"]}},
    "GET /v1/admin/coupons/keys": {},
    "POST /v1/admin/coupons/keys/rotate": {},
    "POST /v1/admin/coupons/keys/{key_id}/revoke": {"path": "/v1/admin/coupons/keys/999/revoke"},
    "GET /v1/admin/cards/{number}": {"path": f"/v1/admin/cards/{ANNA}"},
    "POST /v1/admin/cards/{number}/block": {
        "path": f"/v1/admin/cards/{ANNA}/block",
        "json": {"reason": "lost"},
    },
    "POST /v1/admin/cards/{number}/unblock": {"path": f"/v1/admin/cards/{ANNA}/unblock"},
    "POST /v1/admin/cards/{number}/adjust": {
        "path": f"/v1/admin/cards/{ANNA}/adjust",
        "json": {"points": 10, "reason": "goodwill"},
    },
    "POST /v1/admin/cards/import": {"content": f"number,holder\n{ANNA},h\n".encode()},
    "POST /v1/admin/cards/snapshot": {},
    "GET /v1/admin/tills": {},
    "GET /v1/admin/tills/{till}": {"path": "/v1/admin/tills/till-1"},
    "GET /v1/admin/flags": {},
    "POST /v1/admin/flags/{flag}/release": {"path": "/v1/admin/flags/1/release", "json": {}},
    "POST /v1/admin/flags/{flag}/reject": {"path": "/v1/admin/flags/1/reject", "json": {}},
    "GET /v1/admin/holds": {},
    "POST /v1/admin/enroll-codes": {"json": {"store": "store-09", "till": "till-9"}},
    "POST /v1/admin/tills/{till}/revoke": {"path": "/v1/admin/tills/till-2/revoke"},
    "GET /v1/admin/users": {},
    "POST /v1/admin/users": {"json": {"name": "newbie", "role": "analyst"}},
    "POST /v1/admin/users/{name}/disable": {"path": "/v1/admin/users/nobody/disable"},
    "GET /v1/admin/tokens": {},
    "POST /v1/admin/tokens": {"json": {"role": "analyst"}},
    "POST /v1/admin/tokens/{token_id}/revoke": {"path": "/v1/admin/tokens/999/revoke"},
    "GET /v1/admin/settings": {},
    "PUT /v1/admin/settings/{key}": {
        "path": "/v1/admin/settings/support-adjust-limit",
        "json": {"value": 400},
    },
    "GET /v1/admin/audit": {},
}


def _error(r: httpx.Response) -> dict[str, Any]:
    return dict(r.json()["error"])


def _count(hq: HqTest) -> dict[str, int]:
    return hq.snapshot() | {t: hq.count(t) for t in TABLES if t != "login_failures"}


def _token(hq: HqTest, role: str, stores: list[str] | None = None) -> httpx.Client:
    r = hq.admin.post("/v1/admin/tokens", json={"role": role, "stores": stores or []})
    assert r.status_code == 200, r.text
    return hq.client(r.json()["token"])


def _chain(hq: HqTest) -> None:
    """A program, Anna's card and a till in each of two stores."""
    hq.publish()
    hq.cards(ANNA)
    hq.enroll("till-1", "store-01")
    hq.enroll("till-2", "store-02")


# ---------------------------------------------------------------- the matrix


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HqTest, dict[str, httpx.Client]]]:
    """One HQ per backend for the whole matrix, with a token of every role."""
    data = tmp_path_factory.mktemp("matrix")
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{data / 'hq.sqlite3'}"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), data / "hq.sqlite3")
    else:
        base = request.getfixturevalue("pg_base_url")
        url, schema = hq_fixtures.pg_schema_url(base)
        hq_fixtures._migrated(url, data)
    test, stop = start_hq(url, data, ManualClock(T0))
    try:
        _chain(test)
        tokens = {
            role: _token(test, role, MANAGER_STORES if role == "store_manager" else None)
            for role in ROLES
            if role != "admin"
        }
        tokens["admin"] = test.admin  # the token hq serve made: the first admin
        yield test, tokens
    finally:
        stop()
        if schema:
            hq_fixtures.drop_schema(request.getfixturevalue("pg_base_url"), schema)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", list(ROUTE_ROLES))
def test_every_route_lets_through_exactly_the_roles_of_the_table(
    chain: tuple[HqTest, dict[str, httpx.Client]], route: str, role: str
) -> None:
    hq, tokens = chain
    method, template = route.split(" ", 1)
    probe = PROBES[route]
    kwargs = {k: v for k, v in probe.items() if k != "path"}
    if "content" in kwargs:
        kwargs["headers"] = {"Content-Type": "text/csv"}
    before = _count(hq)
    r = tokens[role].request(method, probe.get("path", template), **kwargs)
    if ROUTE_ROLES[route].allows(Role(role)):
        assert r.status_code not in (401, 403) and r.status_code < 500, (route, role, r.text)
    else:
        assert r.status_code == 403, (route, role, r.text)
        assert _error(r)["code"] == "forbidden" and role in _error(r)["message"]
        assert _count(hq) == before  # a refused request writes nothing


def test_the_table_covers_every_admin_route_and_the_docs_show_it(hq: HqTest) -> None:
    # Every route the app serves, included routers too (the schema lists them all).
    paths = create_app(hq.hq).openapi()["paths"]
    served = {
        f"{method.upper()} {path}"
        for path, methods in paths.items()
        if path.startswith("/v1/admin")
        for method in methods
    }
    assert served - set(ROUTE_ROLES) == set(), "declare these routes in hq/roles.py ROUTE_ROLES"
    assert set(ROUTE_ROLES) - served == set(), "ROUTE_ROLES names routes the app does not serve"
    assert set(PROBES) == set(ROUTE_ROLES)
    doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    assert "## Roles at head office" in doc
    assert matrix_markdown() in doc, "regenerate the matrix: python -m tillgate.hq.roles"


# ---------------------------------------------------------------- what each role is for


def test_a_store_manager_sees_only_their_stores(hq: HqTest) -> None:
    _chain(hq)
    one = hq.enroll("till-3", "store-01")
    two = hq.enroll("till-4", "store-02")
    # A quarantined entry from a till of each store (a till may not write 'adjust').
    one.ok_push([one.next(ANNA, "adjust", 5)])
    two.ok_push([two.next(ANNA, "adjust", 5)])
    manager = _token(hq, "store_manager", ["store-01"])

    tills = manager.get("/v1/admin/tills").json()["tills"]
    assert {t["till"] for t in tills} == {"till-1", "till-3"}
    assert {t["store"] for t in manager.get("/v1/admin/tills?store=store-01").json()["tills"]} == {
        "store-01"
    }
    r = manager.get("/v1/admin/tills?store=store-02")
    assert r.status_code == 403 and _error(r)["code"] == "forbidden"
    assert manager.get("/v1/admin/tills/till-1").json()["store"] == "store-01"
    r = manager.get("/v1/admin/tills/till-2")
    assert r.status_code == 403 and "store-02" in _error(r)["message"]
    assert manager.get("/v1/admin/tills/nope").status_code == 404

    flags = manager.get("/v1/admin/flags").json()
    assert [q["till"] for q in flags["quarantined"]] == ["till-3"]
    assert flags["negative_cards"] == []
    assert manager.get("/v1/admin/flags?store=store-02").status_code == 403
    every = hq.admin.get("/v1/admin/flags").json()["quarantined"]
    assert sorted(q["till"] for q in every) == ["till-3", "till-4"]
    assert hq.admin.get("/v1/admin/tills?store=store-02").json()["tills"][0]["store"] == "store-02"


def test_support_adjusts_within_the_limit_an_admin_sets(hq: HqTest) -> None:
    _chain(hq)
    support = _token(hq, "support")
    adjust = f"/v1/admin/cards/{ANNA}/adjust"
    assert support.post(adjust, json={"points": 500, "reason": "goodwill"}).status_code == 200
    assert support.post(adjust, json={"points": -500, "reason": "typo"}).status_code == 200
    before = _count(hq)
    r = support.post(adjust, json={"points": 501, "reason": "too much"})
    assert r.status_code == 403, r.text
    assert _error(r)["code"] == "adjust_limit_exceeded" and _error(r)["limit"] == 500
    assert support.post(adjust, json={"points": -501, "reason": "x"}).status_code == 403
    assert _count(hq) == before and hq.card(ANNA)["balance"] == 0

    # Only an admin changes the limit.
    limit = "/v1/admin/settings/support-adjust-limit"
    assert support.put(limit, json={"value": 10**6}).status_code == 403
    r = hq.admin.put(limit, json={"value": 1000})
    assert r.status_code == 200 and r.json() == {
        "key": "support-adjust-limit",
        "value": 1000,
        "previous": 500,
    }
    assert hq.admin.put(limit, json={"value": -1}).status_code == 400
    assert hq.admin.put(limit, json={"value": "a lot"}).status_code == 400
    assert hq.admin.put("/v1/admin/settings/nope", json={"value": 1}).status_code == 404
    assert support.post(adjust, json={"points": 800, "reason": "ok now"}).status_code == 200
    assert support.post(adjust, json={"points": 1001, "reason": "no"}).status_code == 403
    # Admins have no limit.
    assert hq.admin.post(adjust, json={"points": 5000, "reason": "admin"}).status_code == 200
    # Support finds cards (by phone too, as the POS does) and blocks them.
    assert support.get(f"/v1/admin/cards/{ANNA}").json()["balance"] == 5800
    r = support.post(f"/v1/admin/cards/{ANNA}/block", json={"reason": "lost"})
    assert r.json() == {"card": ANNA, "status": "blocked", "was": "active"}
    assert hq.card(ANNA)["status"] == "blocked"
    assert support.post(f"/v1/admin/cards/{ANNA}/unblock").json()["status"] == "active"
    assert support.post("/v1/admin/cards/2900000099999/block").status_code == 404


def test_every_change_is_in_the_audit_log_with_who_and_role(hq: HqTest) -> None:
    _chain(hq)
    marketer, support = _token(hq, "marketer"), _token(hq, "support")
    assert marketer.post("/v1/admin/program", json=program()).status_code == 200
    r = marketer.post("/v1/admin/coupons/revoke", json={"codes": ["X1"], "reason": "leaked"})
    assert r.status_code == 200
    adjust = f"/v1/admin/cards/{ANNA}/adjust"
    assert support.post(adjust, json={"points": 40, "reason": "goodwill"}).status_code == 200
    assert support.post(f"/v1/admin/cards/{ANNA}/block", json={"reason": "lost"}).status_code == 200
    assert hq.admin.post("/v1/admin/tills/till-2/revoke").status_code == 200
    assert (
        hq.admin.put("/v1/admin/settings/support-adjust-limit", json={"value": 9}).status_code
        == 200
    )
    r = hq.admin.post("/v1/admin/users", json={"name": "Olga", "role": "analyst"})
    assert r.status_code == 200 and r.json()["name"] == "olga"
    assert hq.admin.post("/v1/admin/users/olga/disable").status_code == 200
    assert hq.admin.post("/v1/admin/tokens/1/revoke").status_code == 200

    audit = hq.admin.get("/v1/admin/audit").json()["audit"]
    adm = ("admin-token", "admin")
    assert [(a["actor"], a["role"], a["action"], a["target"]) for a in audit] == [
        (*adm, "program.publish", "version 1"),
        (*adm, "cards.import", "cards"),
        (*adm, "till.enroll_code", "store-01/till-1"),
        (*adm, "till.enroll_code", "store-02/till-2"),
        (*adm, "token.new", "token:1"),
        (*adm, "token.new", "token:2"),
        ("token:1", "marketer", "program.publish", "version 2"),
        ("token:1", "marketer", "coupons.revoke", "1 codes"),
        ("token:2", "support", "card.adjust", ANNA),
        ("token:2", "support", "card.block", ANNA),
        (*adm, "till.revoke", "till-2"),
        (*adm, "setting.set", "support-adjust-limit"),
        (*adm, "user.add", "olga"),
        (*adm, "user.disable", "olga"),
        (*adm, "token.revoke", "token:1"),
    ]
    changed = [(a["before"], a["after"]) for a in audit]
    assert changed[1] == (None, {"imported": 1, "updated": 0})
    assert changed[5] == (None, {"label": None, "role": "support", "stores": []})
    assert changed[6] == ({"version": 1}, {"version": 2, "name": "Тест Бонус"})
    assert changed[7] == (None, {"revoked": 1})
    assert changed[8] == ({"balance": 0}, {"balance": 40})
    assert changed[9] == ({"status": "active"}, {"status": "blocked"})
    assert changed[10] == ({"revoked": False}, {"revoked": True})
    assert changed[11] == ({"value": 500}, {"value": 9})
    assert changed[12] == (None, {"role": "analyst", "stores": [], "status": "active"})
    assert changed[13] == ({"status": "active"}, {"status": "disabled"})
    assert changed[14] == ({"status": "active"}, {"status": "revoked"})
    assert all(a["at"] for a in audit) and audit[8]["reason"] == "goodwill"
    # The audit log is the admin's alone; refusals are not changes.
    assert marketer.get("/v1/admin/audit").status_code == 401  # token 1 was revoked
    assert support.get("/v1/admin/audit").status_code == 403
    assert len(hq.admin.get("/v1/admin/audit").json()["audit"]) == len(audit)
    since = hq.admin.get("/v1/admin/audit", params={"since": "2999-01-01"}).json()["audit"]
    assert since == []


# ---------------------------------------------------------------- people and sign-in


def _user(hq: HqTest, name: str, role: str, stores: list[str] | None = None) -> str:
    r = hq.admin.post("/v1/admin/users", json={"name": name, "role": role, "stores": stores or []})
    assert r.status_code == 200, r.text
    return str(r.json()["password"])


def _signed_in(hq: HqTest, name: str, role: str, new: str = "a long new password") -> str:
    once = _user(hq, name, role)
    r = hq.client().post(
        "/v1/auth/password", json={"name": name, "password": once, "new_password": new}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def test_the_one_time_password_must_be_changed_at_first_sign_in(hq: HqTest) -> None:
    _chain(hq)
    once = _user(hq, "maria", "marketer")
    anyone = hq.client()
    r = anyone.post("/v1/auth/login", json={"name": "maria", "password": once})
    assert r.status_code == 403 and _error(r)["code"] == "password_change_required"
    change = {"name": "maria", "password": once}
    for new, words in (("short", "at least 12"), (once, "must differ"), ("MARIA", "at least")):
        r = anyone.post("/v1/auth/password", json=change | {"new_password": new})
        assert r.status_code == 400 and words in _error(r)["message"], r.text
    r = anyone.post("/v1/auth/password", json=change | {"new_password": "correct horse battery"})
    assert r.status_code == 200, r.text
    session = r.json()
    assert (session["name"], session["role"], session["stores"]) == ("maria", "marketer", [])
    me = hq.client(session["token"]).get("/v1/auth/me").json()
    assert me == {
        "actor": "maria",
        "role": "marketer",
        "stores": [],
        "token_id": session["token_id"],
        "user": "maria",
    }
    assert hq.client(session["token"]).post("/v1/admin/program", json=program()).status_code == 200
    # The one-time password is spent; the new one signs in, by any case of the name.
    assert anyone.post("/v1/auth/login", json=change).status_code == 401
    r = anyone.post("/v1/auth/login", json={"name": "Maria", "password": "correct horse battery"})
    assert r.status_code == 200 and r.json()["token"] != session["token"]
    users = hq.admin.get("/v1/admin/users").json()["users"]
    assert [(u["name"], u["must_change_password"], u["status"]) for u in users] == [
        ("maria", False, "active")
    ]
    # A session ends after 12 hours.
    hq.clock.advance(timedelta(hours=12, seconds=1))
    r = hq.client(session["token"]).get("/v1/auth/me")
    assert r.status_code == 401 and "expired" in _error(r)["message"]


def test_five_failed_sign_ins_a_minute_then_429(hq: HqTest) -> None:
    token = _signed_in(hq, "sam", "support", new="the right password")
    assert token
    anyone = hq.client()
    for _ in range(5):
        r = anyone.post("/v1/auth/login", json={"name": "sam", "password": "guess-0123456"})
        assert r.status_code == 401 and _error(r)["message"] == "wrong name or password"
    r = anyone.post("/v1/auth/login", json={"name": "sam", "password": "the right password"})
    assert r.status_code == 429, r.text
    assert _error(r)["code"] == "too_many_attempts" and _error(r)["retry_after"] == 60
    assert r.headers["Retry-After"] == "60"
    r = anyone.post("/v1/auth/password", json={
        "name": "sam", "password": "the right password", "new_password": "another password!"
    })  # fmt: skip
    assert r.status_code == 429
    # Per name: another name is not held up, and an unknown name is refused the same way.
    r = anyone.post("/v1/auth/login", json={"name": "nobody", "password": "guess-0123456"})
    assert r.status_code == 401 and _error(r)["message"] == "wrong name or password"
    hq.clock.advance(timedelta(seconds=30))
    assert anyone.post("/v1/auth/login", json={"name": "sam", "password": "x"}).status_code == 429
    hq.clock.advance(timedelta(seconds=31))
    r = anyone.post("/v1/auth/login", json={"name": "sam", "password": "the right password"})
    assert r.status_code == 200, r.text


def test_a_disabled_user_and_a_revoked_token_are_401(hq: HqTest) -> None:
    _chain(hq)
    session = hq.client(_signed_in(hq, "dora", "analyst"))
    script = _token(hq, "marketer")
    assert session.get("/v1/auth/me").status_code == 200
    assert script.get("/v1/auth/me").json()["actor"].startswith("token:")
    r = hq.admin.post("/v1/admin/users/dora/disable")
    assert r.status_code == 200 and r.json()["sessions_ended"] == 1
    r = session.get("/v1/auth/me")
    assert r.status_code == 401 and _error(r)["code"] == "unauthorized"
    r = hq.client().post("/v1/auth/login", json={"name": "dora", "password": "a long new password"})
    assert r.status_code == 401 and "disabled" in _error(r)["message"]

    tokens = hq.admin.get("/v1/admin/tokens").json()["tokens"]
    script_id = next(t["id"] for t in tokens if t["kind"] == "script" and t["role"] == "marketer")
    assert hq.admin.post(f"/v1/admin/tokens/{script_id}/revoke").status_code == 200
    r = script.post("/v1/admin/program", json=program())
    assert r.status_code == 401 and "revoked" in _error(r)["message"]
    tokens = {t["id"]: t for t in hq.admin.get("/v1/admin/tokens").json()["tokens"]}
    assert tokens[script_id]["status"] == "revoked"
    assert hq.admin.post("/v1/admin/tokens/4242/revoke").status_code == 404
    # Signing out ends the session.
    own = hq.client(_signed_in(hq, "eve", "support"))
    assert own.post("/v1/auth/logout").status_code == 200
    assert own.get("/v1/auth/me").status_code == 401
    # A till's credential is not a person's token; a made-up token is nobody.
    till = hq.enroll("till-7", "store-01")
    assert till.http.get("/v1/admin/users").status_code == 403
    r = hq.client("tgh_made-up-0123456789012345678901234567").get("/v1/auth/me")
    assert r.status_code == 401 and "hq login" in _error(r)["message"]


def test_stores_are_for_store_managers_only(hq: HqTest) -> None:
    before = _count(hq)
    for path, body in (
        ("/v1/admin/users", {"name": "sm", "role": "store_manager"}),
        ("/v1/admin/tokens", {"role": "store_manager"}),
        ("/v1/admin/users", {"name": "mk", "role": "marketer", "stores": ["store-01"]}),
        ("/v1/admin/tokens", {"role": "support", "stores": ["store-01"]}),
        ("/v1/admin/users", {"name": "x", "role": "root"}),
        ("/v1/admin/users", {"name": "bad name!", "role": "analyst"}),
    ):
        r = hq.admin.post(path, json=body)
        assert r.status_code == 400 and _error(r)["code"] == "invalid_request", (body, r.text)
    assert _count(hq) == before
    r = hq.admin.post(
        "/v1/admin/users", json={"name": "sm", "role": "store_manager", "stores": ["s2", "s1"]}
    )
    assert r.status_code == 200 and r.json()["stores"] == ["s1", "s2"]
    r = hq.admin.post("/v1/admin/users", json={"name": "SM", "role": "analyst"})
    assert r.status_code == 409 and _error(r)["code"] == "user_exists"


def test_only_hashes_of_passwords_and_tokens_are_kept(hq: HqTest) -> None:
    once = _user(hq, "hana", "analyst")
    token = hq.admin.post("/v1/admin/tokens", json={"role": "analyst"}).json()["token"]
    assert token.startswith("tgh_") and len(token) >= 40
    with hq.hq.db.read() as tx:
        stored = repr(tx.all("SELECT * FROM users") + tx.all("SELECT * FROM api_tokens"))
        stored += repr(tx.all("SELECT * FROM audit"))
    assert once not in stored and token not in stored
    assert "scrypt$" in stored
    listed = repr(hq.admin.get("/v1/admin/tokens").json())
    assert token not in listed and once not in repr(hq.admin.get("/v1/admin/users").json())
    assert ADMIN not in stored
