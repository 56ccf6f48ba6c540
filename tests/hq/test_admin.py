"""Admin endpoints: program push, cards CSV, coupons — bad input refused whole."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ANNA, BORIS, program
from tests.hq.helpers import ADMIN, HqTest
from tillgate.cli import main
from tillgate.core.rules.coupons import CouponSigner, promotion_tag

COUPON_PROMO: dict[str, Any] = {
    "id": "mail-300",
    "name": "Купон −300 ₽",
    "when": {"coupon": True},
    "reward": {"kind": "amount", "value": "300.00"},
    "valid": {"to": "2027-01-31T23:59"},
}
PLAIN_PROMO: dict[str, Any] = {
    "id": "bonus",
    "name": "Бонус",
    "reward": {"kind": "points", "value": 10},
}


def _post_csv(hq: HqTest, text: str) -> Any:
    return hq.admin.post(
        "/v1/admin/cards/import", content=text.encode(), headers={"Content-Type": "text/csv"}
    )


def test_program_push_gives_versions_and_every_till_sees_the_latest(hq: HqTest) -> None:
    till = hq.enroll("till-1")
    assert hq.publish(program()) == "1"
    assert hq.publish(program(PLAIN_PROMO)) == "2"
    page = till.changes()
    assert page["program"]["version"] == "2"
    assert [p["id"] for p in page["program"]["body"]["promotions"]] == ["bonus"]


def test_program_as_toml_text(hq: HqTest) -> None:
    toml = '[program]\nname = "Т"\npoint_value = 0.5\n[[promotions]]\nid = "a"\nname = "A"\n'
    toml += 'reward = { kind = "points", value = 5 }\n'
    r = hq.admin.post("/v1/admin/program", json={"toml": toml})
    assert r.status_code == 200, r.text
    body = hq.enroll().changes()["program"]["body"]
    assert body["program"]["point_value"] == "0.5"  # exact, never a float


def test_a_bad_program_is_refused_whole_with_every_error_by_path(hq: HqTest) -> None:
    hq.publish(program())
    till = hq.enroll("till-1")
    cursor = till.changes()["cursor"]
    before = hq.snapshot()
    bad = program(
        PLAIN_PROMO,
        {"id": "b", "name": "B", "reward": {"kind": "percent", "value": 0, "on": "order"}},
        {"id": "c", "name": "C", "reward": {"kind": "gift"}},
        point_value=-1,
    )
    r = hq.admin.post("/v1/admin/program", json=bad)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_program"
    assert set(err["errors"]) >= {
        "program.point_value: must be > 0",
        "promotions[1].reward.value: must be > 0 (promotion 'b')",
    }
    assert any(e.startswith("promotions[2].reward: unknown kind 'gift'") for e in err["errors"])
    # A JSON number with a fraction is read as an exact decimal, never a float.
    r = hq.admin.post(
        "/v1/admin/program",
        content=b'{"program": {"name": "x", "point_value": 0.1}}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    before["programs"] += 1
    before["audit"] += 1  # the publish's audit row
    before["changes"] = hq.snapshot()["changes"]
    r = hq.admin.post("/v1/admin/program", content=b"{nope")
    assert r.status_code == 422 and r.json()["error"]["errors"][0].startswith("not valid JSON")
    assert hq.snapshot() == before
    # No till saw a partial push: the feed holds only the good programs.
    page = till.changes(cursor)
    assert page["program"]["body"]["program"]["name"] == "x"


def test_cards_import_then_update_and_opening_balance_once(hq: HqTest) -> None:
    text = f"number,holder,tier,balance\n{ANNA},Анна,gold,250\n{BORIS},Борис,,\n"
    assert _post_csv(hq, text).json() | {"warnings": []} == {
        "imported": 2,
        "updated": 0,
        "warnings": [],
    }
    again = _post_csv(hq, text.replace("Анна", "Анна И.") + "2900000000059,Ян,,\n").json()
    assert (again["imported"], again["updated"]) == (1, 2)
    card = hq.card(ANNA)
    assert (card["holder"], card["tier"], card["balance"]) == ("Анна И.", "gold", 250)
    assert [(e["till"], e["kind"], e["points"]) for e in card["entries"]] == [("hq", "adjust", 250)]


def test_a_bad_cards_csv_imports_nothing_and_names_each_row(hq: HqTest) -> None:
    before = hq.snapshot()
    text = (
        "number,holder,birthday,status,colour\n"
        f"{ANNA},Анна,1985-03-14,active,red\n"
        f"{BORIS},Борис,14.03.1985,active,\n"
        "12,Short,,active,\n"
        f"{ANNA},Again,,active,\n"
        "2900000000059,Ян,,frozen,\n"
    )
    r = _post_csv(hq, text)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_cards" and "nothing was imported" in err["message"]
    assert [e.split(":")[0] for e in err["errors"]] == ["row 3", "row 4", "row 5", "row 6"]
    assert "birthday '14.03.1985' is not YYYY-MM-DD" in err["errors"][0]
    assert ANNA not in " ".join(err["errors"])  # numbers are masked in errors
    assert hq.snapshot() == before
    r = _post_csv(hq, "holder\nx\n")
    assert r.status_code == 422 and "missing column" in r.json()["error"]["errors"][0]
    r = hq.admin.post("/v1/admin/cards/import", content=b"number\n\xff\xfe\n")
    assert r.status_code == 422 and "UTF-8" in r.json()["error"]["message"]
    # An unknown column alone is a warning, not an error.
    ok = _post_csv(hq, f"number,colour\n{ANNA},red\n")
    assert ok.status_code == 200 and ok.json()["warnings"] == [
        "header: unknown column 'colour' ignored"
    ]


def test_unknown_card_is_404(hq: HqTest) -> None:
    r = hq.admin.get("/v1/admin/cards/2900000012345")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "card_not_found"
    assert "2900000012345" not in r.text


def test_coupons_issue_signed_codes_any_till_verifies(hq: HqTest) -> None:
    hq.publish(program(COUPON_PROMO, PLAIN_PROMO))
    till = hq.enroll("till-1")
    r = hq.admin.post("/v1/admin/coupons/issue", json={"promotion": "mail-300", "count": 50})
    assert r.status_code == 200, r.text
    codes = r.json()["codes"]
    assert len(set(codes)) == 50
    signer = CouponSigner(bytes.fromhex(till.coupon_key))
    for code in codes:
        signed = signer.verify(code)
        assert signed.promotion_tag == promotion_tag("mail-300")
        assert signed.valid_until == date(2027, 1, 31)
    assert hq.count("coupons_issued") == 50


def test_coupons_issue_refusals(hq: HqTest) -> None:
    r = hq.admin.post("/v1/admin/coupons/issue", json={"promotion": "mail-300", "count": 1})
    assert r.status_code == 404  # no program yet
    hq.publish(program(COUPON_PROMO, PLAIN_PROMO))
    r = hq.admin.post("/v1/admin/coupons/issue", json={"promotion": "bonus", "count": 1})
    assert r.status_code == 400 and "takes no coupon" in r.json()["error"]["message"]
    r = hq.admin.post("/v1/admin/coupons/issue", json={"promotion": "mail-300", "count": 0})
    assert r.status_code == 400 and r.json()["error"]["message"] == "count: must be >= 1"
    assert hq.count("coupons_issued") == 0


def test_tills_list(hq: HqTest) -> None:
    till = hq.enroll("till-2", "store-02")
    hq.enroll("till-1", "store-01")
    till.ok_push([till.next(ANNA, "adjust", 1)])
    tills = hq.admin.get("/v1/admin/tills").json()["tills"]
    assert [(t["store"], t["till"], t["through_seq"]) for t in tills] == [
        ("store-01", "till-1", 0),
        ("store-02", "till-2", 1),
    ]
    assert tills[1]["last_push"] is not None and tills[0]["last_push"] is None


def test_a_big_cards_file_uploads_in_one_request_with_progress(
    hq: HqTest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.csv"
    rows = "".join(f"29{i:011d},{'Я' * 200},+7916{i:07d}\n" for i in range(3000))
    path.write_text("number,holder,phone\n" + rows, encoding="utf-8")
    assert path.stat().st_size > 1 << 20
    code = main(["hq", "cards", "import", str(path), "--hq", hq.url, "--token", ADMIN])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "3000 cards imported, 0 updated" in out
    assert "uploading" in err and "100%" in err
    assert hq.count("cards") == 3000


def test_cards_show_takes_a_phone_number_as_the_pos_api_does(hq: HqTest) -> None:
    text = (
        "number,holder,phone,status\n"
        "2900000012345,Анна,+79161234567,blocked\n"
        "2900000012352,Анна,+7 916 123-45-67,active\n"
    )
    assert _post_csv(hq, text).status_code == 200
    for asked in ("+79161234567", "8 (916) 123-45-67", "89161234567"):
        r = hq.admin.get(f"/v1/admin/cards/{asked}")
        assert r.status_code == 200, r.text
        assert r.json()["number"] == "2900000012352"  # the active one
    r = hq.admin.get("/v1/admin/cards/+79990000000")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "card_not_found"
