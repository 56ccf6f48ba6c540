"""Receipt facts: the engine's inputs survive JSON exactly, and re-pricing agrees with an
honest receipt and catches a dishonest one."""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import HealthCheck, given, settings

from tests.core.rules.test_rules_properties import cases
from tillgate.core.rules.engine import Catalog, evaluate
from tillgate.core.rules.facts import decode_inputs, encode_inputs, encode_outcome, reprice
from tillgate.core.rules.program import parse_program
from tillgate.core.rules.tiers import MONTH_DAY_YEAR


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_facts_round_trip_and_reprice_agrees(make, case):
    data, request, ctx = case
    context = make.context(**ctx)
    catalog = Catalog.build(parse_program(data))
    result = evaluate(catalog, request, context)
    inputs = json.loads(json.dumps(encode_inputs(request, context)))
    outcome = json.loads(json.dumps(encode_outcome(request, result)))
    back_request, back_context = decode_inputs(inputs)
    # The holder is left out and a birthday keeps its month and day alone.
    c = request.customer
    kept = (
        None
        if c is None
        else replace(c, holder="", birthday=c.birthday and c.birthday.replace(year=MONTH_DAY_YEAR))
    )
    assert back_request == replace(request, customer=kept)
    assert back_context == context
    assert reprice(catalog, inputs, outcome) == []
    # A till that claims more points than the engine gives is caught.
    forged = outcome | {"accrued_points": outcome["accrued_points"] + 1}
    assert any(p.startswith("accrued_points") for p in reprice(catalog, inputs, forged))


def test_a_receipt_that_redeemed_less_than_it_could_reprices_clean(make):
    catalog = make.catalog(max_redeem_percent=50)
    request = make.request(
        make.line("a", "100.00"), customer=make.customer(balance=500, redeemable=500)
    )
    asked = replace(request, redeem=20)
    result = evaluate(catalog, asked, make.context())
    inputs = encode_inputs(replace(request, redeem="max"), make.context())
    assert reprice(catalog, inputs, encode_outcome(asked, result)) == []
    too_much = encode_outcome(asked, result) | {"redeemed_points": 80}
    assert reprice(catalog, inputs, too_much)  # the engine allows at most 50
