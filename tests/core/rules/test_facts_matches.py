"""Facts version 2: each input line's ``match`` and the inputs' ``products_version`` ride
along without changing the price; facts of version 1, which lack them, read as before."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tillgate.core.rules.engine import evaluate
from tillgate.core.rules.facts import (
    FACTS_VERSION,
    decode_inputs,
    encode_inputs,
    encode_outcome,
    matches,
    reprice,
)


def test_match_and_products_version_ride_along_and_old_facts_still_reprice(make: Any) -> None:
    assert FACTS_VERSION == 2
    catalog = make.catalog(no_discount_categories=["tobacco"])
    request = make.request(
        make.line("cig", "210.00", category="tobacco"),
        make.line("milk", "89.00", category="dairy"),
        make.line("nails", "100.00"),
        customer=make.customer(),
    )
    context = make.context()
    outcome = encode_outcome(request, evaluate(catalog, request, context))
    new = json.loads(
        json.dumps(
            encode_inputs(
                request, context, matches=["rule", "name", "unmatched"], products_version="p-1"
            )
        )
    )
    assert [ln["match"] for ln in new["lines"]] == ["rule", "name", "unmatched"]
    assert new["products_version"] == "p-1"
    assert matches(new) == ["rule", "name", "unmatched"]
    assert decode_inputs(new)[0].lines == request.lines
    assert reprice(catalog, new, outcome) == []

    # Version 1: no match, no products_version.
    old = json.loads(json.dumps(encode_inputs(request, context)))
    assert "products_version" not in old and all("match" not in ln for ln in old["lines"])
    assert matches(old) == [None, None, None]
    assert decode_inputs(old) == decode_inputs(new)
    assert reprice(catalog, old, outcome) == []
    # A match this version does not know reads as unknown, not as a wrong one.
    odd = new | {"lines": [ln | {"match": "guess"} for ln in new["lines"]]}
    assert matches(odd) == [None, None, None]


def test_matches_must_name_every_line(make: Any) -> None:
    request = make.request(make.line("a", "1.00"), make.line("b", "1.00"))
    with pytest.raises(ValueError, match="1 matches for 2 lines"):
        encode_inputs(request, make.context(), matches=["sku"])
