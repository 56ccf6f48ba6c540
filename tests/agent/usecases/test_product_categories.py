"""Calculate gives each line its category from the product list and the program's rules,
for POS-API lines and lines read off a printed receipt alike; no_loyalty lines get no
discount, earn nothing and count toward no threshold; misses are counted in /v1/status and
every line's match goes into the receipt's facts."""

from __future__ import annotations

from typing import Any

from tests.conftest import ANNA, program
from tillgate.agent.store import facts
from tillgate.agent.store import products as store
from tillgate.agent.usecases import sale_request
from tillgate.core.products import Product
from tillgate.core.rules.facts import matches, reprice

GOODS = [
    Product(sku="4600000000196", name="Сигареты Ява Золотая", category="tobacco"),
    Product(sku="4600000000189", name="Вино красное сухое 0,75", category="wine", no_loyalty=True),
    Product(sku="4600000000127", name="Гречка 900 г", category="grocery", tags=("cereal",)),
    Product(sku="4600000000011", name="Молоко 3,2% 1 л", category="dairy", barcodes=("2000011",)),
    Product(sku="7001", name="Хлеб", category="bakery"),
    Product(sku="7002", name="хлеб", category="bakery-frozen"),
    Product(sku="7003", name="Пиво светлое 0,5", category="beer", age_restricted=True),
]
RULES = {"match": [{"pattern": r"\bсигарет", "category": "tobacco"}]}


def till_with(
    make_till: Any, *promotions: dict[str, Any], data_file: str = "till", **overrides: Any
) -> Any:
    """A till whose program has RULES and ``overrides``, and whose product list is GOODS."""
    data = program(*promotions, **overrides)
    data["categories"] = RULES
    till = make_till(data, name=data_file)
    with till.service.db.write() as conn:
        store.replace_all(conn, GOODS, version="p-7")
    return till


def printed(name: str, amount: str, qty: str = "1", *, cut: bool = False) -> dict[str, Any]:
    """A line as interception reads it off paper: no sku captured."""
    return {
        "sku": name.upper(),
        "name": name,
        "qty": qty,
        "price": amount,
        "sku_known": False,
        "name_cut": cut,
    }


def sale_facts(till: Any, receipt_id: str) -> dict[str, Any]:
    with till.service.db.read() as conn:
        got = facts.unsynced(conn, through_seq=10**9, limit=1000)
    [fact] = [f for f in got if f["id"] == f"sale:{receipt_id}"]
    return dict(fact["body"]["calculation"])


def test_pos_lines_without_a_category_get_the_product_lists(make_till: Any) -> None:
    till = till_with(make_till)
    sale = till.sale(
        "R-1",
        [
            {"sku": "4600000000196", "qty": 1, "price": "210.00"},  # tobacco by sku
            {"sku": "2000011", "qty": 1, "price": "100.00"},  # dairy by barcode
            {"sku": "x-1", "name": "ГРЕЧКА 900 Г", "qty": 1, "price": "100.00"},  # by name
            {"sku": "x-2", "name": "Гвозди", "qty": 1, "price": "100.00"},  # nobody's
            {"sku": "zz-9", "qty": 1, "price": "10.00"},  # nobody's, with no name
        ],
        card=ANNA,
    )
    # silver 3% of 310.00, tobacco left out: 9 points (with it: 15)
    assert sale["accrued"]["points"] == 9
    # The POS is told the category the till gave each line, and which it left out.
    got = [ln["category"] for ln in sale["lines"]]
    assert got == ["tobacco", "dairy", "grocery", None, None]
    assert [ln["eligible"] for ln in sale["lines"]] == [False, True, True, True, True]
    # Both misses are counted: a nameless one by its sku.
    assert till.http.get("/v1/status").json()["products"]["unmatched"] == 2
    calc = sale_facts(till, "R-1")
    lines = calc["inputs"]["lines"]
    assert [ln["category"] for ln in lines] == ["tobacco", "dairy", "grocery", None, None]
    skus = ["4600000000196", "4600000000011", "4600000000127", "x-2", "zz-9"]
    assert [ln["sku"] for ln in lines] == skus
    assert lines[2]["tags"] == ["cereal"]
    assert matches(calc["inputs"]) == ["sku", "sku", "name", "unmatched", "unmatched"]
    assert calc["inputs"]["products_version"] == "p-7"
    assert reprice(till.service.catalog(), calc["inputs"], calc["outcome"]) == []


def test_printed_lines_are_matched_by_name_and_a_category_promotion_applies(
    make_till: Any,
) -> None:
    bonus = {
        "id": "grocery-x2",
        "name": "Крупы ×2",
        "when": {"items": {"categories": ["grocery"]}},
        "reward": {"kind": "multiplier", "value": 2},
    }
    till = till_with(make_till, bonus)
    calc = till.service.calculate(
        sale_request(
            "R-2",
            [
                printed("ГРЕЧКА 900 Г", "100.00"),
                printed("СИГАРЕТЫ ЯВА ЗОЛОТ", "210.00", cut=True),
                printed("ВИНО КРАСНОЕ СУХОЕ 0,75", "899.00"),
                printed("СИГАРЕТЫ ПАРЛАМЕНТ", "250.00"),  # by the program's rule
            ],
            card=ANNA,
        ),
        money_off=False,
    )
    # 3% of 100.00 doubled: 6 points; tobacco (twice) and no_loyalty wine earn nothing
    assert calc["accrued"]["points"] == 6
    assert [p["id"] for p in calc["promotions"]] == ["grocery-x2"]
    till.service.confirm("R-2")
    inputs = sale_facts(till, "R-2")["inputs"]
    assert matches(inputs) == ["name", "name", "name", "rule"]
    assert [ln["category"] for ln in inputs["lines"]] == ["grocery", "tobacco", "wine", "tobacco"]
    assert [ln["no_discount"] for ln in inputs["lines"]] == [False, False, True, False]


def test_a_captured_sku_is_looked_up_and_a_name_never_is_taken_for_one(make_till: Any) -> None:
    till = till_with(make_till)
    # A name that happens to be a product's sku, printed with no sku captured: a name.
    line = printed("7003", "50.00") | {"sku": "7003"}
    calc = till.service.calculate(sale_request("R-3", [line], card=ANNA), money_off=False)
    assert calc["accrued"]["points"] == 1  # 3% of 50.00, not an age-restricted beer
    captured = line | {"sku_known": True}
    calc = till.service.calculate(sale_request("R-4", [captured], card=ANNA), money_off=False)
    assert calc["accrued"]["points"] == 0  # beer: age restricted, so no loyalty


def test_no_loyalty_lines_count_toward_no_threshold(make_till: Any) -> None:
    big = {
        "id": "500-off",
        "name": "−10% от 500",
        "when": {"min_total": "500.00"},
        "reward": {"kind": "percent", "value": 10, "on": "order"},
    }
    three = {
        "id": "three-cereals",
        "name": "3 крупы — 50 баллов",
        "who": {"card": True},
        "when": {"items": {"tags": ["cereal"], "min_qty": 3}},
        "reward": {"kind": "points", "value": 50},
    }
    till = till_with(make_till, big, three)
    wine = {"sku": "4600000000189", "qty": 1, "price": "899.00", "tags": ["cereal"]}
    cereal = {"sku": "4600000000127", "qty": 2, "price": "100.00"}
    calc = till.ok_calc("R-5", [cereal, wine], card=ANNA)
    assert calc["promotions"] == []  # 200.00 and 2 units count; the wine does not
    assert calc["discount"] == "0.00"
    assert calc["accrued"]["points"] == 6
    calc = till.ok_calc("R-6", [cereal | {"qty": 5}, wine], card=ANNA)
    assert sorted(p["id"] for p in calc["promotions"]) == ["500-off", "three-cereals"]
    assert calc["lines"][1]["discount"] == "0.00"  # the wine, still


def test_ambiguous_and_unmatched_lines_follow_the_policy_and_are_counted(
    make_till: Any,
) -> None:
    lines = [
        printed("ХЛЕБ", "50.00"),
        printed("ГВОЗДИ", "100.00"),
        printed("Молоко 3,2% 1л", "100.00"),
    ]
    earn = till_with(make_till)
    calc = earn.service.calculate(sale_request("R-7", lines, card=ANNA), money_off=False)
    assert calc["accrued"]["points"] == 7  # 3% of 250.00
    # Calculated again (the POS re-prices), then another receipt: names, and receipts.
    earn.service.calculate(sale_request("R-7", lines, card=ANNA), money_off=False)
    earn.service.calculate(sale_request("R-8", lines[1:], card=ANNA), money_off=False)
    status = earn.http.get("/v1/status").json()["products"]
    assert status == {"version": "p-7", "count": len(GOODS), "unmatched": 1, "ambiguous": 1}

    exclude = till_with(make_till, data_file="exclude", unmatched_items="exclude")
    calc = exclude.service.calculate(sale_request("R-9", lines, card=ANNA), money_off=False)
    assert calc["accrued"]["points"] == 3  # 3% of the milk alone
    # A new product list: the misses of the old one are not counted against it.
    with exclude.service.db.write() as conn:
        store.replace_all(conn, GOODS, version="p-8")
    status = exclude.http.get("/v1/status").json()["products"]
    assert (status["version"], status["unmatched"], status["ambiguous"]) == ("p-8", 0, 0)


def test_without_a_product_list_lines_are_matched_by_the_rules_alone(make_till: Any) -> None:
    data = program()
    data["categories"] = RULES
    till = make_till(data)
    calc = till.service.calculate(
        sale_request("R-10", [printed("СИГАРЕТЫ", "210.00"), printed("Хлеб", "100.00")], card=ANNA),
        money_off=False,
    )
    assert calc["accrued"]["points"] == 3
    status = till.http.get("/v1/status").json()["products"]
    assert status == {"version": None, "count": 0, "unmatched": 1, "ambiguous": 0}


def test_a_sku_promotion_applies_whether_it_names_the_barcode_or_the_products_sku(
    make_till: Any,
) -> None:
    """The POS sends a barcode; the list knows the goods under their own sku. A promotion
    written with the barcode (as before the list existed) and one written with the sku both
    apply, and head office re-prices the receipt alike."""
    by_barcode = {
        "id": "milk-barcode",
        "name": "Молоко −10%",
        "priority": 20,
        "when": {"items": {"skus": ["2000011"]}},
        "reward": {"kind": "percent", "value": 10, "on": "matching"},
    }
    by_sku = {
        "id": "milk-sku",
        "name": "Молоко +50",
        "priority": 10,
        "when": {"items": {"skus": ["4600000000011"]}},
        "reward": {"kind": "points", "value": 50},
    }
    till = till_with(make_till, by_barcode, by_sku)
    sale = till.sale("R-9", [{"sku": "2000011", "qty": 1, "price": "100.00"}], card=ANNA)
    assert {p["id"] for p in sale["promotions"]} == {"milk-barcode", "milk-sku"}
    assert sale["total"] == "90.00"
    calc = sale_facts(till, "R-9")
    [line] = calc["inputs"]["lines"]
    assert (line["sku"], line["codes"]) == ("4600000000011", ["2000011"])
    assert reprice(till.service.catalog(), calc["inputs"], calc["outcome"]) == []
