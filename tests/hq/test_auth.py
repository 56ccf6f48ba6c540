"""Enrolment and authentication: every refusal is clear and writes nothing."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import ANNA
from tests.hq.helpers import ADMIN, HqTest

PUSH_PATHS = [("POST", "/v1/sync/push"), ("GET", "/v1/sync/changes")]
ADMIN_PATHS = [
    ("POST", "/v1/admin/program"),
    ("POST", "/v1/admin/cards/import"),
    ("GET", f"/v1/admin/cards/{ANNA}"),
    ("POST", "/v1/admin/enroll-codes"),
    ("POST", "/v1/admin/tills/till-1/revoke"),
    ("POST", "/v1/admin/coupons/issue"),
    ("GET", "/v1/admin/tills"),
    ("GET", "/v1/admin/flags"),
]


def _error(r: object) -> dict[str, str]:
    body = r.json()  # type: ignore[attr-defined]
    return dict(body["error"])


def test_enrolment_gives_a_working_credential_and_the_chain_coupon_key(hq: HqTest) -> None:
    a = hq.enroll("till-1", "store-01")
    b = hq.enroll("till-2", "store-02")
    assert (a.id, a.store, b.id, b.store) == ("till-1", "store-01", "till-2", "store-02")
    assert a.credential != b.credential and len(a.credential) >= 32
    assert a.coupon_key == b.coupon_key == hq.hq.coupon_key.hex()
    assert a.http.get("/v1/sync/changes").status_code == 200
    # Only hashes are stored: neither the code nor the credential is in the database.
    with hq.hq.db.read() as tx:
        rows = tx.all("SELECT * FROM tills") + tx.all("SELECT * FROM enroll_codes")
    assert a.credential not in repr(rows)


def test_enrolment_code_is_single_use(hq: HqTest) -> None:
    code = hq.code("till-1")
    first = hq.client().post("/v1/enroll", json={"code": code})
    assert first.status_code == 200
    before = hq.snapshot()
    again = hq.client().post("/v1/enroll", json={"code": code})
    assert again.status_code == 403
    assert _error(again)["code"] == "enrolment_refused"
    assert "already used" in _error(again)["message"]
    assert hq.snapshot() == before
    # The credential from the first use still works.
    cred = first.json()["credential"]
    assert hq.client(cred).get("/v1/sync/changes").status_code == 200


def test_code_is_accepted_however_it_is_typed(hq: HqTest) -> None:
    code = hq.code("till-1")
    typed = code.replace("-", " ").lower()
    assert hq.client().post("/v1/enroll", json={"code": typed}).status_code == 200


def test_expired_and_unknown_codes_get_one_answer(hq: HqTest) -> None:
    code = hq.code("till-1")
    hq.clock.advance(timedelta(days=7, seconds=1))
    before = hq.snapshot()
    expired = hq.client().post("/v1/enroll", json={"code": code})
    unknown = hq.client().post("/v1/enroll", json={"code": "AAAA-BBBB-CCCC"})
    assert expired.status_code == unknown.status_code == 403
    # One message for every reason, so codes cannot be probed.
    assert _error(expired) == _error(unknown)
    assert hq.snapshot() == before


def test_malformed_enrolment_is_400(hq: HqTest) -> None:
    r = hq.client().post("/v1/enroll", content=b"{not json")
    assert r.status_code == 400 and "malformed JSON" in _error(r)["message"]
    r = hq.client().post("/v1/enroll", json={"kode": "x"})
    assert r.status_code == 400 and _error(r)["message"] == "code: is required"


def test_enrolling_again_replaces_the_credential(hq: HqTest) -> None:
    old = hq.enroll("till-1")
    new = hq.enroll("till-1")
    r = old.http.get("/v1/sync/changes")
    assert r.status_code == 401 and _error(r)["code"] == "unauthorized"
    assert new.http.get("/v1/sync/changes").status_code == 200


def test_hq_is_a_reserved_till_id(hq: HqTest) -> None:
    r = hq.admin.post("/v1/admin/enroll-codes", json={"store": "s", "till": "hq"})
    assert r.status_code == 400 and "reserved" in _error(r)["message"]


def test_no_or_malformed_credential_is_401(hq: HqTest) -> None:
    before = hq.snapshot()
    for method, path in PUSH_PATHS + ADMIN_PATHS:
        for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
            r = hq.client().request(method, path, headers=headers, json={})
            assert r.status_code == 401, (path, headers, r.text)
            assert _error(r)["code"] == "unauthorized"
    assert hq.snapshot() == before


def test_wrong_and_revoked_credentials_are_401_and_write_nothing(hq: HqTest) -> None:
    till = hq.enroll("till-1")
    wrong = hq.client("not-a-credential-at-all-0123456789")
    r = wrong.post("/v1/sync/push", json={"till": "till-1", "entries": []})
    assert r.status_code == 401 and "unknown credential" in _error(r)["message"]

    assert hq.admin.post("/v1/admin/tills/till-1/revoke").status_code == 200
    before = hq.snapshot()
    r = till.push([till.next(ANNA, "accrue", 10)])
    assert r.status_code == 401
    assert "revoked" in _error(r)["message"]
    assert till.http.get("/v1/sync/changes").status_code == 401
    assert hq.snapshot() == before

    tills = hq.admin.get("/v1/admin/tills").json()["tills"]
    assert [(t["till"], t["revoked"]) for t in tills] == [("till-1", True)]
    # A new code lets the till back in, with a new credential.
    assert hq.enroll("till-1").http.get("/v1/sync/changes").status_code == 200


def test_revoking_an_unknown_till_is_404(hq: HqTest) -> None:
    r = hq.admin.post("/v1/admin/tills/nobody/revoke")
    assert r.status_code == 404 and _error(r)["code"] == "not_found"


def test_a_till_cannot_call_admin_endpoints(hq: HqTest) -> None:
    till = hq.enroll("till-1")
    before = hq.snapshot()
    for method, path in ADMIN_PATHS:
        r = till.http.request(method, path, json={"store": "s", "till": "t2"})
        assert r.status_code == 403, (path, r.text)
        assert _error(r)["code"] == "forbidden"
    assert hq.snapshot() == before


def test_wrong_admin_token_is_401(hq: HqTest) -> None:
    r = hq.client("not-the-admin-token-0123456789").get("/v1/admin/tills")
    assert r.status_code == 401 and "admin token" in _error(r)["message"]


def test_admin_token_is_not_a_till_credential(hq: HqTest) -> None:
    before = hq.snapshot()
    r = hq.client(ADMIN).post("/v1/sync/push", json={"till": "till-1", "entries": []})
    assert r.status_code == 403 and _error(r)["code"] == "forbidden"
    assert hq.snapshot() == before


def test_a_till_cannot_push_another_tills_entries(hq: HqTest) -> None:
    one = hq.enroll("till-1")
    hq.enroll("till-2")
    before = hq.snapshot()
    # As the other till in the envelope…
    r = one.http.post(
        "/v1/sync/push",
        json={"till": "till-2", "entries": [one.next(ANNA, "accrue", 10) | {"till": "till-2"}]},
    )
    assert r.status_code == 403 and _error(r)["code"] == "wrong_till"
    # …or one foreign entry among its own.
    mine = one.next(ANNA, "accrue", 10)
    theirs = one.next(ANNA, "accrue", 10) | {"till": "till-2"}
    r = one.push([mine, theirs])
    assert r.status_code == 403 and _error(r)["code"] == "wrong_till"
    assert "entries[1].till" in _error(r)["message"]
    assert hq.snapshot() == before
