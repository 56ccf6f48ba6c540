"""The product list reaches tills through sync: whole, once per version, never half."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.sync.badhq import MisbehavingHq
from tillgate.agent.store import meta
from tillgate.agent.store import products as store_products
from tillgate.core.errors import HqBadReply, HqUnreachable

PATH = "/v1/sync/products"


def products_csv(n: int, *, category: str = "grocery", start: int = 0) -> bytes:
    rows = "".join(
        f"S{i:05d};Товар {i};{category};460{i:010d};Алиас {i};;;\n" for i in range(start, start + n)
    )
    return ("sku;name;category;barcodes;aliases;tags;no_loyalty;age_restricted\n" + rows).encode()


def publish(hq: Any, data: bytes) -> dict[str, Any]:
    return dict(
        hq.ok("POST", "/v1/admin/products", content=data, headers={"Content-Type": "text/csv"})
    )


def product_requests(till: Any) -> int:
    return sum(r.url.path == PATH for r in till.link.requests)


def list_of(till: Any) -> tuple[str | None, int, set[str]]:
    with till.service.db.read() as conn:
        return (
            meta.get(conn, store_products.VERSION_KEY),
            store_products.count(conn),
            store_products.categories(conn),
        )


def lookup(till: Any, code: str) -> list[str]:
    with till.service.db.read() as conn:
        found = store_products.SqliteProducts(conn).by_codes([code], limit=10**6)
        return [p.category for p in found.get(code, [])]


def cut_after_one_page(till: Any) -> None:
    """The next product page reaches the till from the real HQ; then the line goes down."""
    net = httpx.HTTPTransport()

    def forward_then_cut(request: httpx.Request) -> httpx.Response:
        reply = net.handle_request(request)
        content = reply.read()
        reply.close()
        till.link.down = True
        return httpx.Response(reply.status_code, content=content)

    till.link.stub = MisbehavingHq(forward_then_cut)


def test_first_feed_brings_the_whole_list_and_a_second_sync_downloads_nothing(
    make_chain: Any, hq: Any
) -> None:
    till = make_chain()
    till.syncer.product_page = 10
    out = publish(hq, products_csv(25))
    assert out["count"] == 25 and out["categories"] == ["grocery"]

    report = till.syncer.run_once()

    assert report.products == out["version"] and report.product_pages == 3
    assert list_of(till) == (out["version"], 25, {"grocery"})
    assert lookup(till, "4600000000007") == ["grocery"]  # by barcode
    assert lookup(till, "S00024") == ["grocery"]  # by sku
    with till.service.db.read() as conn:
        found = store_products.SqliteProducts(conn).by_names(["алиас3"], limit=10**6)
    assert [p.sku for p in found["алиас3"]] == ["S00003"]
    # Nothing new at head office: not one product request.
    before = product_requests(till)
    assert till.syncer.run_once().products is None
    assert product_requests(till) == before


def test_a_till_already_on_the_version_downloads_nothing_even_from_a_full_pull(
    make_chain: Any, hq: Any
) -> None:
    till = make_chain()
    publish(hq, products_csv(5))
    till.syncer.run_once()
    with till.service.db.write() as conn:
        meta.put(conn, "sync.cursor", 0)  # a full snapshot again (as after a re-key)
    before = product_requests(till)
    report = till.syncer.run_once()
    assert report.products is None and product_requests(till) == before


def test_the_same_goods_imported_again_make_no_new_version(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    first = publish(hq, products_csv(5))
    till.syncer.run_once()
    # Same content, another delimiter and column order: the same list.
    again = "category,name,sku,barcodes,aliases\n" + "".join(
        f'grocery,Товар {i},S{i:05d},460{i:010d},"Алиас {i}"\n' for i in range(5)
    )
    second = publish(hq, again.encode())
    assert second["unchanged"] is True and second["version"] == first["version"]
    before = product_requests(till)
    till.syncer.run_once()
    assert product_requests(till) == before


def test_an_interrupted_feed_keeps_the_old_list_whole_then_goes_on(
    make_chain: Any, hq: Any
) -> None:
    till = make_chain()
    till.syncer.product_page = 10
    v1 = publish(hq, products_csv(12))["version"]
    till.syncer.run_once()
    v2 = publish(hq, products_csv(30, category="dairy", start=100))["version"]

    till.syncer.pull()  # the page naming the new list
    cut_after_one_page(till)
    with pytest.raises(HqUnreachable):
        till.syncer.pull_products()

    # Still the old list, whole: nothing of version 2 prices a line.
    assert list_of(till) == (v1, 12, {"grocery"})
    assert lookup(till, "S00003") == ["grocery"] and lookup(till, "S00100") == []
    with till.service.db.read() as conn:
        kept = store_products.staged(conn)
    assert kept is not None and kept.version == v2 and kept.after == 10

    till.link.down = False
    before = product_requests(till)
    report = till.syncer.run_once()
    assert report.products == v2
    assert product_requests(till) - before == 2  # the two pages it did not have, no more
    assert list_of(till) == (v2, 30, {"dairy"})
    # The update replaced the list: goods no longer in it are gone.
    assert lookup(till, "S00003") == [] and lookup(till, "S00129") == ["dairy"]
    with till.service.db.read() as conn:
        assert store_products.staged(conn) is None
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert not {t for t in tables if t.endswith("_next")}  # the scratch tables went


def test_a_list_replaced_at_head_office_mid_download_is_downloaded_anew(
    make_chain: Any, hq: Any
) -> None:
    till = make_chain()
    till.syncer.product_page = 10
    publish(hq, products_csv(25))
    till.syncer.pull()  # the page naming the new list
    cut_after_one_page(till)
    with pytest.raises(HqUnreachable):
        till.syncer.pull_products()
    assert list_of(till) == (None, 0, set())  # no list yet, and no half one either
    v2 = publish(hq, products_csv(7, category="bakery"))["version"]
    till.link.down = False

    report = till.syncer.run_once()

    assert report.products == v2 and list_of(till) == (v2, 7, {"bakery"})


def test_a_list_that_does_not_add_up_is_refused_and_the_old_one_stays(
    make_chain: Any, hq: Any
) -> None:
    till = make_chain()
    v1 = publish(hq, products_csv(3))["version"]
    till.syncer.run_once()
    v2 = publish(hq, products_csv(4, category="dairy"))["version"]
    till.syncer.pull()  # the page naming version 2 is in; now its one page lies about the size
    lying = {"version": v2, "count": 9, "after": 4, "more": False, "products": []}
    till.link.stub = MisbehavingHq(httpx.Response(200, json=lying))

    with pytest.raises(HqBadReply, match="does not add up"):
        till.syncer.pull_products()

    assert list_of(till) == (v1, 3, {"grocery"})
    with till.service.db.read() as conn:
        assert store_products.staged(conn) is None  # begun again next time
    assert till.syncer.run_once().products == v2
    assert list_of(till) == (v2, 4, {"dairy"})


def test_head_office_answers_a_bad_page_request_with_a_clear_400(hq: Any) -> None:
    till = hq.other_till("till-9")
    r = till.http.get(PATH, params={"version": "1"})
    assert r.status_code == 404 and r.json()["error"]["version"] is None  # no list at all
    publish(hq, products_csv(2))
    version = hq.ok("GET", "/v1/admin/products")["version"]
    r = till.http.get(PATH, params={"version": version, "after": -1})
    assert r.status_code == 400 and "after" in r.json()["error"]["message"]
    r = till.http.get(PATH, params={"version": version, "limit": 0})
    assert r.status_code == 400 and "limit" in r.json()["error"]["message"]
    r = till.http.get(PATH, params={"version": "nope"})
    assert r.status_code == 404 and r.json()["error"]["version"] == version
    r = hq.api.admin.get(PATH, params={"version": version})  # the admin token is no till
    assert r.status_code == 403


def test_a_head_office_with_no_list_any_more_leaves_the_till_its_own(
    make_chain: Any, hq: Any
) -> None:
    till = make_chain()
    v1 = publish(hq, products_csv(3))["version"]
    till.syncer.run_once()
    v2 = publish(hq, products_csv(4, category="dairy"))["version"]
    till.syncer.pull()
    # Head office answers as one restored from a backup without any list does.
    gone = httpx.Response(
        404, json={"error": {"code": "not_found", "message": "no list", "version": None}}
    )
    till.link.stub = MisbehavingHq(gone)
    assert till.syncer.pull_products().products is None
    assert list_of(till) == (v1, 3, {"grocery"})
    with till.service.db.read() as conn:
        assert store_products.wanted(conn) is None
    before = product_requests(till)
    till.syncer.pull_products()
    assert product_requests(till) == before  # it stopped asking
    assert v2 != v1


@pytest.mark.parametrize(
    ("row", "why"),
    [
        (["", "Молоко", "dairy", [], [], [], False, False], "products.1 (sku) must be text"),
        (["A-9", "Молоко", "dairy", "4600", [], [], False, False], "products.1 (barcodes)"),
        (["A-9", "Молоко", "dairy", [], [], [], "yes", False], "products.1 (no_loyalty)"),
        (["A-9", "Молоко", "dairy"], "products.1 is not a row of 8 values"),
        (["A-9", "М" * 257, "dairy", [], [], [], False, False], "products.1 (name)"),
    ],
)
def test_a_bad_product_row_is_a_bad_reply_and_nothing_of_the_page_is_kept(
    make_chain: Any, hq: Any, row: list[Any], why: str
) -> None:
    till = make_chain()
    version = publish(hq, products_csv(2))["version"]
    till.syncer.pull()
    good = ["A-1", "Кефир", "dairy", ["4600000000011"], [], [], False, False]
    page = {"version": version, "count": 2, "after": 2, "more": False, "products": [good, row]}
    till.link.stub = MisbehavingHq(httpx.Response(200, json=page))
    with pytest.raises(HqBadReply, match=re.escape(why)):
        till.syncer.pull_products()
    assert list_of(till) == (None, 0, set())
    with till.service.db.read() as conn:
        assert store_products.staged(conn) is None
