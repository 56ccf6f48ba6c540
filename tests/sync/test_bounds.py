"""Bounds reach head office: whatever basket a chain till accepts, HQ takes its entries.

Before ``[program.limits]`` a till accepted two lines of 100 000 x 99 999 999.99 and wrote
an accrual of 1.4 x 10^12 points that head office refused on every push: the till's sync
was wedged for good.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ANNA, line, program
from tests.core.rules.extremes import Basket, baskets, pos_lines, within
from tillgate.agent.api.schemas import CalculateIn
from tillgate.core.errors import OutOfRange

HUGE = [line("A", "99999999.99", 100000), line("B", "99999999.99", 100000)]
FLAT = program(
    accrual_delay_days=0, tiers=[{"name": "silver", "min_spend": "0", "accrue_percent": 7}]
)


def calculate(till: Any, rid: str, lines: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    body = {"receipt_id": rid, "card": ANNA, "lines": lines, **kw}
    return dict(till.service.calculate(CalculateIn.model_validate(body).to_request()))


def test_no_accepted_basket_wedges_the_push(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    try:
        calculate(till, "R-huge", HUGE)
    except OutOfRange as exc:
        assert exc.code == "out_of_range" and exc.details == {"limit": "max_qty", "line": 0}
    else:
        till.service.confirm("R-huge")
    # The largest receipt the limits take: its accrual is one entry head office takes.
    calculate(till, "R-max", [line("A", "10000.00", 10000)])
    till.service.confirm("R-max")
    till.syncer.push()
    assert till.unsynced() == []
    assert hq.card(ANNA)["pending"] == 3_000_000  # silver: 3% of 100 000 000.00


def test_extreme_baskets_push_to_head_office_and_balances_agree(make_chain: Any, hq: Any) -> None:
    """Receipts at, just under and just over the bounds on one card, pushed after each:
    HQ stores every entry, and its balance of the card is the till's, exactly."""
    till = make_chain(data=FLAT)
    ids = itertools.count()
    moved = {"points": 0}

    @settings(
        max_examples=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        basket=baskets(),
        redeem=st.sampled_from([0, "max"]),
        refund=st.sampled_from([None, "whole", "first"]),
    )
    def sell(basket: Basket, redeem: int | str, refund: str | None) -> None:
        rid = f"R-{next(ids)}"
        try:
            calculate(till, rid, pos_lines(basket), redeem=redeem)
        except OutOfRange:
            assert not within(basket)
        else:
            assert within(basket)
            done = till.service.confirm(rid)
            moved["points"] += done["accrued"]["points"] - done["redeemed"]["points"]
            if refund is not None:
                lines = [(0, basket[0][0])] if refund == "first" else None
                back = till.service.refund(rid, refund_id=f"F-{rid}", lines=lines)
                moved["points"] += back["points_returned"] - back["points_reversed"]
        till.syncer.push()
        assert till.unsynced() == []
        at_hq = hq.card(ANNA)
        own = sum(r[0] for r in till.rows("SELECT points FROM ledger WHERE card = ?", ANNA))
        assert at_hq["balance"] + at_hq["pending"] == own == moved["points"]
        assert till.balance(ANNA) == at_hq["balance"]

    sell()
    assert hq.seqs(till.name) == till.seqs()


def test_a_free_receipt_at_max_qty_refunds_and_pushes(make_chain: Any, hq: Any) -> None:
    till = make_chain(data=FLAT)
    calculate(till, "R-0", [line("A", "0.00", 10000)])
    till.service.confirm("R-0")
    back = till.service.refund("R-0", refund_id="F-0", lines=None)
    assert (back["points_reversed"], back["points_returned"]) == (0, 0)
    assert back["amount_returned"] == str(Decimal("0.00"))
    till.syncer.push()
    assert till.unsynced() == []
