"""The few hooks the golden scenarios need into the till, kept apart from the scenarios.

When the till's insides are reshaped, only this file follows them; the scenarios and the
recorded transcripts stay as they were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tillgate.core.cardfile import CardRecord, parse_csv
from tillgate.core.cards import DEFAULT_NUMBER_PATTERN


def card_records(path: Path) -> list[CardRecord]:
    cards, problems = parse_csv(
        path.read_text(encoding="utf-8"), number_pattern=DEFAULT_NUMBER_PATTERN
    )
    assert not problems, problems
    return cards


class Switch:
    """The till's connectivity, switched by the scenario."""

    offline = False


def make_example_till(make_till: Any, cards: list[CardRecord], program: Any) -> Any:
    switch = Switch()
    till = make_till(program, cards=cards, connectivity=switch)
    till.switch = switch
    return till


def go_offline(till: Any) -> None:
    """The till loses head office: offline caps apply from now on."""
    till.switch.offline = True


def issue_coupon(till: Any, promotion: str, *, serial: int) -> str:
    """A head-office coupon code for ``promotion`` (as ``hq coupons issue`` signs it)."""
    from datetime import date

    return str(
        till.service.signer.issue(
            promotion_id=promotion, serial=serial, valid_until=date(2027, 12, 31)
        )
    )
