"""The receipt's lines as the engine sees them: amounts, eligibility, floors and units.

Everything here is computed once per evaluation from the request and the program and never
changes afterwards; the running state of discounts lives in the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ..money import line_amount, ratio_half_up
from .model import Line
from .program import Program

_HUNDRED = Decimal(100)


@dataclass(frozen=True, kw_only=True)
class Basket:
    """Per-line facts, by position in the request (not by the POS's ``Line.index``)."""

    lines: tuple[Line, ...]
    amounts: tuple[int, ...]  # price × qty, kopecks, half-up
    eligible: tuple[bool, ...]  # may be discounted, paid with points and earn points
    floors: tuple[int, ...]  # the lowest total the line may reach (its amount if not eligible)
    units: tuple[int, ...]  # countable units: qty for whole quantities, 1 for weighed goods
    eligible_idx: tuple[int, ...]  # positions of eligible lines, ascending

    @classmethod
    def of(cls, lines: Sequence[Line], program: Program) -> Basket:
        """Price the lines and work out which of them the program may touch."""
        excluded = frozenset(program.no_discount_categories)
        # The kept share as an exact ratio of integers (kept_n / kept_d percent): a
        # line's floor is then integer arithmetic, no Fraction per line.
        kept_n, kept_d = (_HUNDRED - program.max_discount_percent).as_integer_ratio()
        kept_d *= 100
        amounts: list[int] = []
        eligible: list[bool] = []
        floors: list[int] = []
        units: list[int] = []
        for line in lines:
            amount = line_amount(line.price, line.qty)
            ok = not line.no_discount and line.category not in excluded
            amounts.append(amount)
            eligible.append(ok)
            # The floor is the kept share of the amount, rounded half-up like any money
            # (0 without a cap, the common case, so no rounding is needed).
            floor = ratio_half_up(amount * kept_n, kept_d) if kept_n else 0
            floors.append(floor if ok else amount)
            units.append(1 if line.weighed else max(int(line.qty), 0))
        return cls(
            lines=tuple(lines),
            amounts=tuple(amounts),
            eligible=tuple(eligible),
            floors=tuple(floors),
            units=tuple(units),
            eligible_idx=tuple(i for i, ok in enumerate(eligible) if ok),
        )

    @property
    def subtotal(self) -> int:
        """Sum of all line amounts, eligible or not."""
        return sum(self.amounts)

    def amount_of(self, positions: Sequence[int]) -> int:
        """Amount before any discount of the given lines."""
        return sum(self.amounts[i] for i in positions)

    def units_of(self, positions: Sequence[int]) -> int:
        """Countable units of the given lines (weighed lines count one each)."""
        return sum(self.units[i] for i in positions)
