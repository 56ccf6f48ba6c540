"""Calculate says which lines the program leaves out, and what this basket could take.

``lines[].eligible`` and ``lines[].category`` let a POS (and the till's own printed block)
show "no points" on tobacco; ``redeem_max`` is what ``redeem: "max"`` would spend on this
basket, apart from ``card.redeemable`` (the card's spendable points, whatever the basket).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tests.conftest import ANNA, CARDS, line, program


def test_an_excluded_line_is_marked_and_names_its_category(make_till: Any) -> None:
    till = make_till(program(no_discount_categories=["tobacco"]))
    r = till.calc(
        "R-1",
        [line("1", "100.00", category="dairy"), line("2", "210.00", category="tobacco")],
        card=ANNA,
    ).json()
    dairy, cigs = r["lines"]
    assert (dairy["eligible"], dairy["category"]) == (True, "dairy")
    assert (cigs["eligible"], cigs["category"]) == (False, "tobacco")
    # A line sent as no_discount is left out too, whatever its category.
    r = till.calc("R-2", [line("3", "50.00", no_discount=True)], card=ANNA).json()
    assert r["lines"][0]["eligible"] is False and r["lines"][0]["category"] is None


def test_redeem_max_is_this_baskets_and_redeemable_the_cards(make_till: Any) -> None:
    cards = [dataclasses.replace(c, opening_balance=300) for c in CARDS]
    till = make_till(program(max_redeem_percent=50), cards=cards)
    r = till.calc("R-3", [line("1", "100.00")], card=ANNA).json()
    balance = r["card"]["balance"]
    assert balance == 300
    assert r["redeem_max"] == 50  # half of this receipt
    assert r["redeemed"]["points"] == 0  # nothing asked for
    assert r["card"]["redeemable"] == balance
    r = till.calc("R-3", [line("1", "100.00")], card=ANNA, redeem="max").json()
    assert r["redeemed"]["points"] == r["redeem_max"] == 50
    assert r["card"]["redeemable"] == balance - 50  # this receipt's hold included
    # Without a card nothing can be spent.
    assert till.calc("R-4", [line("1", "100.00")]).json()["redeem_max"] == 0
