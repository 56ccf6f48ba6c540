"""What head office takes from a till: the checks each pushed entry passes or is quarantined.

Head office is the authority (domain.md, "Online: head office is the authority"). A till
makes ``accrue``, ``redeem``, ``hold``, ``release``, ``reverse`` and ``return`` entries,
for cards head office knows or the program registers on first use, at the till's time.
An entry that is anything else is **quarantined** (:mod:`tillgate.hq.quarantine`): stored,
flagged with the first :class:`Refusal` below, and left out of every balance until an
admin releases it. The checks, in order (the first that fails names the refusal):

==========================  ============================================================
``hq_only_kind``            ``adjust`` and ``expire`` are head office's alone
``unknown_kind``            a kind no till makes
``points_out_of_bounds``    more than :data:`MAX_POINTS` either way
``wrong_sign``              a credit kind with points < 0, or a debit kind with points > 0
``future``                  ``created_at`` later than head office's clock + the program's
                            ``[program.limits] max_clock_skew_seconds`` (default 300)
``unknown_card``            a card head office does not know and the program does not
                            register on first use (that registration arrives in the same
                            push's ``cards_new``)
``over_return``             a ``return`` giving back more than its receipt's redemptions
                            at this till took (net of earlier returns)
==========================  ============================================================

``unknown_card`` is checked last, so an entry flagged with it passed every other check:
when the till's registration of that card arrives in a later push, head office releases it.

Pure: no I/O, no clock reads. The caller reads what the checks need (known cards, the
receipts' redemptions) and the program in force.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .wire import EntryIn, ts

# +1: the kind adds points; -1: it takes points. Zero points is harmless either way.
TILL_KINDS: Mapping[str, int] = {
    "accrue": 1,
    "release": 1,
    "return": 1,
    "redeem": -1,
    "hold": -1,
    "reverse": -1,
}
HQ_KINDS = ("adjust", "expire")
MAX_POINTS = 10**9
DEFAULT_SKEW_SECONDS = 300
DEFAULT_HOLD_SECONDS = 600  # [program.holds] max_seconds: the longest hold head office grants


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The bounds of the program in force that a till's entries must keep."""

    max_clock_skew: timedelta = timedelta(seconds=DEFAULT_SKEW_SECONDS)
    max_points: int = MAX_POINTS
    register_cards: bool = False  # program.register_unknown_cards
    card_pattern: str | None = None  # program.card_number_pattern
    hold_seconds: int = DEFAULT_HOLD_SECONDS  # [program.holds] max_seconds

    @classmethod
    def of(cls, program: Any | None, *, max_points: int = MAX_POINTS) -> Policy:
        """The policy of a validated program (``ProgramFile.program``); None: no program yet.

        ``[program.limits] max_clock_skew_seconds`` is read if the program model has it
        (default 300 s otherwise). ``max_points``: the most one entry may move (at least
        :data:`MAX_POINTS`; more when the program lets one receipt earn or spend more).
        """
        if program is None:
            return cls()
        limits = getattr(program, "limits", None)
        skew = getattr(limits, "max_clock_skew_seconds", DEFAULT_SKEW_SECONDS)
        holds = getattr(program, "holds", None)
        return cls(
            hold_seconds=int(getattr(holds, "max_seconds", DEFAULT_HOLD_SECONDS)),
            max_clock_skew=timedelta(seconds=int(skew)),
            max_points=max(MAX_POINTS, max_points),
            register_cards=bool(program.register_unknown_cards),
            card_pattern=str(program.card_number_pattern),
        )

    def registers(self, number: str) -> bool:
        """Whether the program makes ``number`` a card on first use (as a till decides)."""
        if not self.register_cards:
            return False
        return self.card_pattern is None or re.search(self.card_pattern, number) is not None


class PolicyCache:
    """The policy of the latest program version, so a push does not re-validate the program."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: int | None = None
        self._policy = Policy()

    def get(self, version: int) -> Policy | None:
        with self._lock:
            return self._policy if self._version == version else None

    def put(self, version: int, policy: Policy) -> None:
        with self._lock:
            self._version, self._policy = version, policy


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """Why head office does not take an entry: a stable ``code`` and a sentence."""

    code: str
    reason: str


@dataclass
class Receipts:
    """Per receipt of the pushing till: points its counted redemptions took and returns gave."""

    redeemed: dict[str, int] = field(default_factory=dict)
    returned: dict[str, int] = field(default_factory=dict)

    def returnable(self, receipt: str) -> int:
        return self.redeemed.get(receipt, 0) - self.returned.get(receipt, 0)


class Admission:
    """Checks one push's entries in order; entries it takes count for the ones after them."""

    def __init__(
        self, *, policy: Policy, now: datetime, known_cards: Iterable[str], receipts: Receipts
    ) -> None:
        self.policy = policy
        self.now = now
        self.known = set(known_cards)
        self.receipts = receipts

    def check(self, e: EntryIn) -> Refusal | None:
        """None: the entry counts. Else why it is quarantined."""
        refusal = self._refusal(e)
        if refusal is None and e.receipt_id is not None:
            book = {"redeem": self.receipts.redeemed, "return": self.receipts.returned}
            if e.kind in book:
                totals = book[e.kind]
                totals[e.receipt_id] = totals.get(e.receipt_id, 0) + abs(e.points)
        return refusal

    def _refusal(self, e: EntryIn) -> Refusal | None:
        p = self.policy
        if e.kind in HQ_KINDS:
            return Refusal(
                code="hq_only_kind",
                reason=f"{e.kind!r} entries are head office's alone; a till never writes them",
            )
        sign = TILL_KINDS.get(e.kind)
        if sign is None:
            return Refusal(code="unknown_kind", reason=f"{e.kind!r} is not a kind a till makes")
        if abs(e.points) > p.max_points:
            return Refusal(
                code="points_out_of_bounds",
                reason=f"points {e.points} exceed the bound of ±{p.max_points} for one entry",
            )
        if e.points * sign < 0:
            return Refusal(
                code="wrong_sign",
                reason=f"a {e.kind} {'adds' if sign > 0 else 'takes'} points; "
                f"{e.points} has the wrong sign",
            )
        ahead = e.created_at - self.now
        if ahead > p.max_clock_skew:
            return Refusal(
                code="future",
                reason=f"created_at {ts(e.created_at)} is {_span(ahead)} ahead of head "
                f"office's clock ({ts(self.now)}); at most "
                f"{int(p.max_clock_skew.total_seconds())} s is allowed "
                "(program.limits.max_clock_skew_seconds)",
            )
        if e.card not in self.known:
            return Refusal(
                code="unknown_card",
                reason="head office does not know this card and the program does not "
                "register it on first use",
            )
        if e.kind == "return":
            left = self.receipts.returnable(e.receipt_id) if e.receipt_id else 0
            if e.points > left:
                return Refusal(
                    code="over_return",
                    reason=f"returns {e.points} points but receipt {e.receipt_id!r} of this "
                    f"till has only {max(left, 0)} redeemed points not yet returned",
                )
        return None


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{seconds} s"
    if seconds < 86400 * 2:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"
