"""The product list at head office: imported whole or not at all, versioned apart from the
program, shown, and the names tills could not match counted — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hq.helpers import ADMIN, T0, HqTest, iso
from tillgate.cli import main

GOOD = (
    "\ufeffsku;name;category;barcodes;aliases;tags;no_loyalty;age_restricted\n"
    'A-1;Молоко 3,2% 1 л;dairy;"4600000000011;4600000000012";Молоко;;;\n'
    "A-2;Сигареты Ява;tobacco;4600000000029;;;1;1\n"
    "A-3;Хлеб бородинский;bakery;;;fresh;0;false\n"
)


def post(client: httpx.Client, text: str | bytes, source: str = "") -> httpx.Response:
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        "/v1/admin/products",
        content=data,
        params={"source": source} if source else None,
        headers={"Content-Type": "text/csv"},
    )


def token(hq: HqTest, role: str) -> httpx.Client:
    r = hq.admin.post("/v1/admin/tokens", json={"role": role})
    assert r.status_code == 200, r.text
    return hq.client(r.json()["token"])


def test_import_gives_a_version_apart_from_the_program_and_show_tells_it(hq: HqTest) -> None:
    hq.publish()
    r = post(hq.admin, GOOD, "goods.csv")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["version"] == "1" and out["count"] == 3 and out["unchanged"] is False
    assert out["categories"] == ["bakery", "dairy", "tobacco"] and out["warnings"] == []
    shown = hq.admin.get("/v1/admin/products").json()
    assert shown["version"] == "1" and shown["count"] == 3 and shown["source"] == "goods.csv"
    with hq.hq.db.read() as tx:
        rows = tx.all("SELECT sku, barcodes, no_loyalty, age_restricted FROM products ORDER BY pos")
    assert [r["sku"] for r in rows] == ["A-1", "A-2", "A-3"]
    assert json.loads(rows[0]["barcodes"]) == ["4600000000011", "4600000000012"]
    assert (rows[1]["no_loyalty"], rows[1]["age_restricted"]) == (1, 1)
    # A new program is not a new product list, and the other way round.
    hq.publish()
    assert hq.admin.get("/v1/admin/products").json()["version"] == "1"
    assert post(hq.admin, GOOD.replace("bakery", "bread")).json()["version"] == "2"
    assert hq.count("programs") == 2 and hq.count("product_lists") == 2
    assert hq.count("products") == 3  # the list in force alone


def test_the_same_goods_again_make_no_version_and_no_change_for_tills(hq: HqTest) -> None:
    till = hq.enroll()
    post(hq.admin, GOOD)
    page = till.changes()
    assert page["products"] == {"version": "1", "count": 3}
    # The same goods without the byte-order mark, rows in another order: the same list.
    header, *rows = GOOD.removeprefix("\ufeff").splitlines(keepends=True)
    same = post(hq.admin, header + "".join(reversed(rows))).json()
    assert same["unchanged"] is True and same["version"] == "1"
    assert till.changes(page["cursor"])["products"] is None  # nothing for tills to do
    changed = post(hq.admin, GOOD.replace("Ява", "Ява Золотая")).json()
    assert changed["unchanged"] is False and changed["version"] == "2"
    assert till.changes(page["cursor"])["products"] == {"version": "2", "count": 3}


def test_a_bad_file_is_refused_whole_with_every_problem_and_nothing_changes(hq: HqTest) -> None:
    post(hq.admin, GOOD)
    before = (
        hq.count("products"),
        hq.count("product_lists"),
        hq.count("audit"),
        hq.count("changes"),
    )
    bad = (
        "sku,name,category,no_loyalty,colour\n"
        "A-1,Молоко,dairy,,white\n"
        "A-1,Кефир,dairy,,\n"
        "A-9,,dairy,maybe,\n"
        f"{'X' * 65},Хлеб,bakery,,\n"
    )
    r = post(hq.admin, bad)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_products"
    assert err["errors"] == [
        "row 3, sku: 'A-1' appears twice (first on row 2)",
        "row 4, name: empty (required)",
        "row 4, no_loyalty: 'maybe' is not 1/true or 0/false/empty",
        "row 5, sku: 65 characters, at most 64 ('XXXXXXXXXXXXXXXXXXXX'...)",
    ]
    r = post(hq.admin, b"sku,name,category\nA-1,\xff\xfe,dairy\n")
    assert r.status_code == 422 and r.json()["error"]["errors"] == [
        "row 2: byte 22 is not UTF-8; export the file as UTF-8"
    ]
    r = post(hq.admin, "")
    assert r.status_code == 422 and "empty" in r.json()["error"]["errors"][0]
    after = (
        hq.count("products"),
        hq.count("product_lists"),
        hq.count("audit"),
        hq.count("changes"),
    )
    assert after == before
    assert hq.admin.get("/v1/admin/products").json()["version"] == "1"


def test_an_unknown_column_is_ignored_and_said_so(hq: HqTest) -> None:
    r = post(hq.admin, "sku,name,category,price\nA-1,Молоко,dairy,89.90\n")
    assert r.status_code == 200 and r.json()["warnings"] == [
        "header: unknown column 'price' ignored"
    ]


def test_the_import_is_audited_with_who_and_what(hq: HqTest) -> None:
    post(hq.admin, GOOD, "goods.csv")
    post(token(hq, "marketer"), GOOD.replace("dairy", "milk"), "goods2.csv")
    rows = [
        a
        for a in hq.admin.get("/v1/admin/audit").json()["audit"]
        if a["action"] == "products.import"
    ]
    assert [(a["role"], a["target"], a["before"], a["after"]) for a in rows] == [
        ("admin", "version 1", None, {"version": "1", "count": 3}),
        ("marketer", "version 2", {"version": "1", "count": 3}, {"version": "2", "count": 3}),
    ]
    assert rows[1]["detail"]["source"] == "goods2.csv"


@pytest.mark.parametrize("role", ["analyst", "store_manager", "support"])
def test_only_admin_and_marketer_import_show_and_read_unmatched(hq: HqTest, role: str) -> None:
    if role == "store_manager":
        r = hq.admin.post("/v1/admin/tokens", json={"role": role, "stores": ["store-01"]})
        client = hq.client(r.json()["token"])
    else:
        client = token(hq, role)
    for r in (
        post(client, GOOD),
        client.get("/v1/admin/products"),
        client.get("/v1/admin/products/unmatched"),
    ):
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert hq.count("product_lists") == 0
    marketer = token(hq, "marketer")
    assert post(marketer, GOOD).status_code == 200
    assert marketer.get("/v1/admin/products/unmatched").status_code == 200
    till = hq.enroll()
    assert post(till.http, GOOD).status_code == 403  # a till's credential is no role


def _fact(receipt: str, lines: list[dict[str, Any]], **inputs: Any) -> dict[str, Any]:
    return {
        "id": f"sale:{receipt}",
        "kind": "sale",
        "receipt_id": receipt,
        "after_seq": 0,
        "created_at": iso(T0),
        "body": {"calculation": {"inputs": {"lines": lines, **inputs}, "outcome": {}}},
    }


def test_unmatched_names_are_counted_from_receipt_facts_old_and_new(hq: HqTest) -> None:
    t1, t2 = hq.enroll("till-1"), hq.enroll("till-2")
    wine = {"sku": "ВИНО КРАСН", "name": "ВИНО КРАСН 0,75", "match": "unmatched"}
    twice = {"sku": "", "name": "Молоко", "match": "ambiguous"}
    facts1 = [
        _fact(
            "R-1", [wine, twice, {"sku": "A-1", "name": "x", "match": "sku"}], products_version="3"
        ),
        _fact("R-2", [wine, {"sku": "", "name": "Хлеб", "match": "name"}], products_version="3"),
        _fact("R-3", [{"sku": "A", "name": "old till's line"}]),  # no match: from before
        {**_fact("R-4", []), "body": {"dropped": "over 262144 bytes"}},
    ]
    assert len(t1.ok_push([], facts=facts1)["facts"]) == 4
    t2.ok_push([], facts=[_fact("R-1", [wine], products_version=4)])

    out = hq.admin.get("/v1/admin/products/unmatched", params={"since": "2026-11-01"}).json()
    assert out["receipts"] == 5
    assert out["lines"] == {"ambiguous": 1, "name": 1, "sku": 1, "unknown": 1, "unmatched": 3}
    names = [
        (n["name"], n["match"], n["count"], n["tills"], n["products_versions"])
        for n in out["names"]
    ]
    assert names == [
        ("ВИНО КРАСН 0,75", "unmatched", 3, ["till-1", "till-2"], ["3", "4"]),
        ("Молоко", "ambiguous", 1, ["till-1"], ["3"]),
    ]
    assert out["names"][0]["skus"] == ["ВИНО КРАСН"]
    later = hq.admin.get("/v1/admin/products/unmatched", params={"since": "2026-12-01"}).json()
    assert later["receipts"] == 0 and later["names"] == []
    bad = hq.admin.get("/v1/admin/products/unmatched", params={"since": "yesterday"})
    assert bad.status_code == 400


def test_the_cli_imports_shows_and_lists_unmatched(
    hq: HqTest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "goods.csv"
    path.write_text(GOOD, encoding="utf-8")
    base = ["--hq", hq.url, "--token", ADMIN]
    assert main(["hq", "products", "import", str(path), *base]) == 0
    out = capsys.readouterr().out
    assert "3 products in 3 categories, published as product list version 1" in out
    assert main(["hq", "products", "import", str(path), *base]) == 0
    assert "nothing new for tills" in capsys.readouterr().out

    assert main(["hq", "products", "show", *base]) == 0
    out = capsys.readouterr().out
    assert "version     1" in out and "products    3" in out and "bakery, dairy, tobacco" in out
    assert main(["hq", "products", "show", "--json", *base]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 3

    till = hq.enroll()
    line = {"sku": "", "name": "ПИВО СВЕТЛОЕ", "match": "unmatched"}
    till.ok_push([], facts=[_fact("R-1", [line])])
    assert main(["hq", "products", "unmatched", "--since", "2026-11-01", *base]) == 0
    out = capsys.readouterr().out
    assert "ПИВО СВЕТЛОЕ" in out and "1 receipts" in out

    # A bad file: every problem on its own line, exit 2, nothing sent.
    path.write_text("sku,name,category\nA-1,,\n", encoding="utf-8")
    assert main(["hq", "products", "import", str(path), *base]) == 2
    err = capsys.readouterr().err
    assert "row 2, name: empty (required)" in err and "row 2, category: empty (required)" in err
    assert hq.count("product_lists") == 1


def test_tills_page_through_the_list_in_force(hq: HqTest) -> None:
    till = hq.enroll()
    post(hq.admin, GOOD)
    first = till.http.get("/v1/sync/products", params={"version": "1", "limit": 2}).json()
    assert (first["count"], first["after"], first["more"]) == (3, 2, True)
    assert first["columns"][:3] == ["sku", "name", "category"]
    assert first["products"] == [
        ["A-1", "Молоко 3,2% 1 л", "dairy", ["4600000000011", "4600000000012"], ["Молоко"], [],
         False, False],
        ["A-2", "Сигареты Ява", "tobacco", ["4600000000029"], [], [], True, True],
    ]  # fmt: skip
    rest = till.http.get("/v1/sync/products", params={"version": "1", "after": 2}).json()
    assert [p[0] for p in rest["products"]] == ["A-3"] and rest["more"] is False
    assert rest["products"][0][5] == ["fresh"]
    end = till.http.get("/v1/sync/products", params={"version": "1", "after": 3}).json()
    assert end["products"] == [] and end["more"] is False and end["after"] == 3
    post(hq.admin, GOOD.replace("dairy", "milk"))
    old = till.http.get("/v1/sync/products", params={"version": "1"})
    assert old.status_code == 404 and old.json()["error"]["version"] == "2"
