"""What a change page says of a card alike to every till, built once per change of the card.

A change page sends each card as two parts (:mod:`tillgate.hq.feed`): the card's own
fields, its folded points and lots and its counts at every till — the same for every till
that reads the card at that change — and the requesting till's ``through_seq``, ``held``
and ``uses`` (every till's counts less its own, :func:`tillgate.hq.counters.others_of`;
the shared ``uses`` as they are for the many tills that never counted the card). A thousand
tills pull nearly the same pages, so the first part is built once, as the JSON bytes it
is sent as, and spliced into every page that names the card at that change.

Why an entry can never be stale, with any number of ``hq serve`` processes on one
database (nothing is shared between them, nothing is ever invalidated):

* it is keyed by the card's id in the change log, read in the page's own snapshot. Every
  write to what a card shows — its row (import, block), its counted entries (push,
  quarantine, corrections), its counters — moves the card to a new id in the same
  transaction: that is the feed's own contract, as a till past the old id would never see
  the write otherwise. Ids are never handed out twice, so an id names one content for good;
* ``now`` enters only through the fold (pending lots maturing, lots expiring) and the
  day (UTC) the counters' windows end on. A state folded at ``since`` stays exact for
  every ``now`` from ``since`` until :meth:`~tillgate.hq.fold.CardState.balance_until`
  (the next instant a lot matures or expires: nothing else changes it) or midnight UTC,
  whichever comes first; that window is part of the entry, and a ``now`` outside it
  builds the part again;
* the phone's hash depends on the chain's look-up key: a process has one, and the cache
  holds it and refuses another.

One entry per card (the newest change it was read at), at most ``limit`` cards, the least
recently read going first: a process holds what the fleet is currently pulling.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import NamedTuple

from .counters import Totals

LIMIT = 20_000  # cards kept per process (a few hundred bytes each)


class Part(NamedTuple):
    """A card's part of every till's page, as read at change ``change`` and time ``since``
    (a tuple: a first start makes a million of them, a frozen dataclass's were 1 µs each)."""

    change: int
    since: datetime
    until: datetime | None  # exact while since <= now < until (None: until a change)
    body: bytes  # the card's JSON object without its closing brace
    row: bytes  # its values as a row of a compact page (``cards=rows``), without the "]"
    totals: Totals  # its counts at every till (:func:`tillgate.hq.counters.totals`)
    uses: bytes  # its ``uses`` for a till that never counted it, as JSON

    def holds_at(self, change: int, now: datetime) -> bool:
        return (
            change == self.change and self.since <= now and (self.until is None or now < self.until)
        )


class CardParts:
    """The cards' shared parts this process built (one look-up key, thread-safe)."""

    def __init__(self, lookup_key: bytes, limit: int = LIMIT) -> None:
        self.lookup_key = lookup_key
        self._limit = limit
        self._lock = threading.Lock()
        self._parts: OrderedDict[str, Part] = OrderedDict()
        self.hits = self.misses = 0  # for the benches and the tests

    def __len__(self) -> int:
        return len(self._parts)

    def get(self, number: str, change: int, now: datetime) -> Part | None:
        """The card's part at ``change`` if one made then holds at ``now``."""
        with self._lock:
            part = self._parts.get(number)
            if part is None or not part.holds_at(change, now):
                self.misses += 1
                return None
            self._parts.move_to_end(number)
            self.hits += 1
            return part

    def put(self, number: str, part: Part) -> None:
        """Keep ``part`` unless one of a later change (or a later fold of it) is kept: a
        page read in an older snapshot never replaces what a newer one read."""
        with self._lock:
            old = self._parts.get(number)
            if old is not None and (old.change, old.since) > (part.change, part.since):
                return
            self._parts[number] = part
            self._parts.move_to_end(number)
            while len(self._parts) > self._limit:
                self._parts.popitem(last=False)
