"""Bounds: the largest basket a till may price, and the most points one receipt can earn.

``[program.limits]`` (:class:`~tillgate.core.rules.program.ProgramLimits`) caps what one
basket may hold. :func:`check_bounds` is the one implementation of that check: the till's
calculate refuses a basket beyond it with ``400 out_of_range``, and head office can apply
the very same check to the receipt facts a till pushes. :func:`receipt_points_bound` is
the most points one receipt could earn under a program, :func:`receipt_redeem_bound` the
most it could spend (head office may bound the entries it takes by them);
:func:`program_problems` refuses a program under which one receipt could earn more than
:data:`MAX_RECEIPT_POINTS`.

Why this keeps every sum far from 2^63 (SQLite's INTEGER, PostgreSQL's BIGINT) is worked
out in docs/promotions.md ("Limits of a receipt"). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from ..money import fmt, line_amount, to_kop

if TYPE_CHECKING:  # program.py imports this module: names for annotations only
    from .model import Line
    from .program import ProgramFile, ProgramLimits

# The ceilings a chain may raise its limits to. The quantity and price ones are what the
# POS API parses at all (agent/usecases/request.py); the receipt total keeps a receipt
# within 10^11 kopecks, so 9.2 × 10^7 receipts at the ceiling still sum below 2^63.
CEILING_QTY = Decimal(100_000)
CEILING_UNIT_PRICE = Decimal("99999999.99")
CEILING_RECEIPT_TOTAL = Decimal("1000000000.00")
CEILING_LINES = 10_000
CEILING_CLOCK_SKEW_SECONDS = 7 * 24 * 3600

# The most points one receipt may earn (its accrual is one ledger entry). A card then needs
# 9.2 x 10^6 receipts to bring its balance near 2^63, and head office's wire took no more
# than this in one entry. Spending needs no such check: under the ceilings one receipt can
# spend at most 10^11 points (1 000 000 000.00 at 0.01 a point).
MAX_RECEIPT_POINTS = 10**12

_SHOWN = 5  # breaches named in one error message; the rest are counted


@dataclass(frozen=True, kw_only=True)
class Breach:
    """One way a basket is beyond the limits: which limit, which line (None: the receipt)."""

    limit: str  # the key of [program.limits], e.g. "max_qty"
    line: int | None
    message: str

    def __str__(self) -> str:
        return self.message


def check_bounds(limits: ProgramLimits, lines: Sequence[Line]) -> list[Breach]:
    """Every way ``lines`` go beyond ``limits``, in line order; empty when within them.

    Lines are named by their ``index`` (the position the POS sent them in).
    """
    out: list[Breach] = []
    if len(lines) > limits.max_lines:
        out.append(
            Breach(
                limit="max_lines",
                line=None,
                message=f"the basket has {len(lines)} lines; at most {limits.max_lines} "
                "are allowed (program.limits.max_lines)",
            )
        )
    total = 0
    for line in lines:
        out.extend(_line_breaches(limits, line))
        total += line_amount(line.price, line.qty) if line.qty > 0 and line.price >= 0 else 0
    cap = to_kop(limits.max_receipt_total)
    if total > cap:
        out.append(
            Breach(
                limit="max_receipt_total",
                line=None,
                message=f"the receipt comes to {fmt(total)} before discounts, over "
                f"program.limits.max_receipt_total ({fmt(cap)})",
            )
        )
    return out


def _line_breaches(limits: ProgramLimits, line: Line) -> list[Breach]:
    """How one line goes beyond the quantity and unit price limits."""
    where = f"lines[{line.index}]"
    out: list[Breach] = []
    if line.qty <= 0 or line.qty > limits.max_qty:
        out.append(
            Breach(
                limit="max_qty",
                line=line.index,
                message=f"{where}.qty {line.qty} is outside 0 < qty <= {limits.max_qty} "
                "(program.limits.max_qty)",
            )
        )
    if line.price < 0 or line.price > limits.max_unit_price:
        out.append(
            Breach(
                limit="max_unit_price",
                line=line.index,
                message=f"{where}.price {line.price} is outside 0.00 <= price <= "
                f"{fmt(to_kop(limits.max_unit_price))} (program.limits.max_unit_price)",
            )
        )
    return out


def describe(breaches: Sequence[Breach]) -> str:
    """The breaches as one message: the first few, then how many more."""
    shown = "; ".join(b.message for b in breaches[:_SHOWN])
    more = len(breaches) - _SHOWN
    return f"{shown} (+{more} more)" if more > 0 else shown


def receipt_points_bound(file: ProgramFile) -> int:
    """The most points one receipt could ever earn under ``file`` (an upper bound).

    What is paid is at most ``max_receipt_total``; percent accruals (the highest tier's
    ``accrue_percent``, every ``points_percent``, every ``multiplier`` on the highest tier)
    are counted as if all of them applied to all of it, and every fixed bonus (``points``
    rewards, welcome, birthday) as if all were given at once.
    """
    program = file.program
    top = max((t.accrue_percent for t in program.tiers), default=Decimal(0))
    percent = Fraction(top)
    fixed = program.welcome_points + program.birthday_points
    for promo in file.promotions:
        reward = promo.reward
        inner = reward.reward if reward.kind == "stamp" else reward
        if inner.kind == "points":
            fixed += inner.value
        elif inner.kind == "points_percent":
            percent += Fraction(inner.value)
        elif inner.kind == "multiplier":
            percent += Fraction(top) * (Fraction(inner.value) - 1)
    money = Fraction(to_kop(program.limits.max_receipt_total), to_kop(program.point_value))
    return int(money * percent / 100) + fixed


def receipt_redeem_bound(file: ProgramFile) -> int:
    """The most points one receipt could ever spend under ``file``: ``max_redeem_percent``
    of ``max_receipt_total``, in whole points."""
    program = file.program
    money = Fraction(to_kop(program.limits.max_receipt_total)) * Fraction(
        program.max_redeem_percent
    )
    return int(money / 100 / to_kop(program.point_value))


def program_problems(file: ProgramFile) -> list[str]:
    """What makes a program unsafe under its own limits (``path: message`` lines)."""
    earn = receipt_points_bound(file)
    if earn <= MAX_RECEIPT_POINTS:
        return []
    return [
        f"program.limits.max_receipt_total: one receipt could earn up to {earn} points under "
        f"this program, more than the {MAX_RECEIPT_POINTS} one receipt may earn; lower "
        "max_receipt_total, raise point_value or lower the point rewards"
    ]
