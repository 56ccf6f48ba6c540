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


def go_offline(till: Any) -> None:
    """The till loses head office: offline caps apply from now on."""
    till.service.offline = True


def issue_coupon(till: Any, promotion: str, *, serial: int) -> str:
    """A head-office coupon code for ``promotion`` (as ``hq coupons issue`` signs it)."""
    from datetime import date

    return str(
        till.service.signer.issue(
            promotion_id=promotion, serial=serial, valid_until=date(2027, 12, 31)
        )
    )
