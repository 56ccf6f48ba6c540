"""Tiers and birthdays: the customer facts that depend on the program and the date."""

from __future__ import annotations

import calendar
from datetime import MAXYEAR, MINYEAR, date
from decimal import Decimal

from .program import Program, Tier


def effective_tier(
    program: Program, assigned_tier: str | None, rolling_spend: Decimal
) -> str | None:
    """The tier a card earns at now: reached by rolling spend, never below the assigned one.

    Tiers are listed by increasing ``min_spend`` (the program validator guarantees it and
    that the first starts at 0), so program order is tier order. An assigned tier the
    program does not know is ignored; a program without tiers has no tier at all.
    """
    if not program.tiers:
        return None
    reached = 0
    for k, tier in enumerate(program.tiers):
        if tier.min_spend <= rolling_spend:
            reached = k
    names = [t.name for t in program.tiers]
    if assigned_tier in names:
        reached = max(reached, names.index(assigned_tier))
    return program.tiers[reached].name


def next_tier(program: Program, tier: str | None) -> Tier | None:
    """The tier after ``tier`` in program order, if there is one."""
    names = [t.name for t in program.tiers]
    if tier not in names:
        return None
    k = names.index(tier) + 1
    return program.tiers[k] if k < len(program.tiers) else None


# Every rule that reads a birthday uses its month and day alone, so a chain's till is sent
# no year (docs/security.md, "Personal data"). A birthday known by month and day is held
# as a date in this year, a leap year so that 29 February is one too; its year means nothing.
MONTH_DAY_YEAR = 2000


def month_day_text(birthday: date) -> str:
    """A birthday's month and day as ISO 8601 writes them without a year: ``--03-14``."""
    return f"--{birthday.month:02d}-{birthday.day:02d}"


def parse_birthday(text: str) -> date:
    """A birthday from ``--MM-DD`` (month and day, see :data:`MONTH_DAY_YEAR`) or
    ``YYYY-MM-DD``; ValueError if it is neither."""
    if text.startswith("--") and len(text) == 7 and text[4] == "-":
        month, day = text[2:4], text[5:7]
        if month.isdigit() and day.isdigit() and month.isascii() and day.isascii():
            return date(MONTH_DAY_YEAR, int(month), int(day))
        raise ValueError(f"{text!r} is not --MM-DD")
    return date.fromisoformat(text)


def birthday_on(birthday: date, year: int) -> date:
    """The day a birthday is celebrated in ``year`` (29 February: the 28th off leap years)."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birthday.replace(year=year)


def birthday_near(birthday: date | None, today: date, window_days: int) -> date | None:
    """The birthday occurrence within ``window_days`` of today, if any.

    The neighbouring years are looked at too, so a 31 December birthday is near on 2 January.
    Occurrences are a year apart and the window is at most 31 days, so at most one matches.
    """
    if birthday is None:
        return None
    for year in (today.year - 1, today.year, today.year + 1):
        if not MINYEAR <= year <= MAXYEAR:
            continue
        day = birthday_on(birthday, year)
        if abs((day - today).days) <= window_days:
            return day
    return None
