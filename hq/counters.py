"""Chain-wide counters: what every till counted of a card and of a budget, from its facts.

Per-card promotion limits, budgets, stamp cards and the visits and rolling spend behind
tiers are counted over the whole chain. Head office counts them from the receipt facts
(:mod:`tillgate.hq.facts`) **per till**: ``card_counters(card, till, name, day, value)``
with ``name`` one of

* ``visit`` — a sale with the card;
* ``spend`` — kopecks paid (a refund takes its money back on its sale's day);
* ``use:<promotion>`` — a sale on which the promotion applied;
* ``stamp:<promotion>`` — a sale that added a stamp to the card;

and ``day`` the receipt's local day at its till; ``budget_counters(promotion_id, till,
points)`` holds the points each budgeted promotion gave. A fact is counted once, in the
transaction that first stores it, so a resend after a lost reply counts nothing twice.

Each till is sent the counts of every *other* till (:func:`others_of`, :func:`budgets`) and
adds its own, which it knows better and sooner: nothing is counted twice however the
pushes and pulls interleave. The shape on the wire is in docs/sync-protocol.md
("Chain-wide counters").

A fact body is what a till wrote: a field this module cannot read is skipped (logged,
card numbers masked), never a reason to refuse the push that carries it.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from tillgate.core.cards import mask
from tillgate.core.money import to_kop
from tillgate.core.rules.bounds import CEILING_RECEIPT_TOTAL, MAX_RECEIPT_POINTS

from .db import Pending, Tx
from .folds import among, parts
from .wire import FactIn

logger = logging.getLogger(__name__)

VISIT, SPEND, USE, STAMP = "visit", "spend", "use:", "stamp:"
# Days of spend sent to a till: the longest spend window a program may set (3660 days,
# Program.spend_window_days) and a day either side, as a till's local day may be a day
# off head office's UTC one.
SPEND_DAYS = 3662
# Days of per-day promotion uses sent to a till: its "today" is within a day of UTC's in
# every time zone (UTC-12 ... UTC+14); one more day either side for a clock that is off.
USE_DAYS = 2
# The most promotions a card's counts name on the wire; a till refuses a reply with more
# (sync/wire.py, MAX_PROMOTIONS: the two must agree). A card would need a new promotion
# every day for 27 years to get there; past it the ones sorting last are left out.
MAX_PROMOTIONS = 10_000
# What one fact may count at most: promotions named on one receipt, its money, its points.
MAX_FACT_PROMOTIONS = 1_000
MAX_RECEIPT_KOP = to_kop(CEILING_RECEIPT_TOTAL)
_PROMOTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")  # program.Ident
_CARD = re.compile(r"^[0-9A-Za-z]{1,40}$")  # wire.CardNumber
_MONEY = re.compile(r"^\d{1,12}(\.\d{1,2})?$")


@dataclass
class _Deltas:
    """What a batch of facts adds, summed: (card, name, day) → value; promotion → points."""

    cards: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    budgets: dict[str, int] = field(default_factory=lambda: defaultdict(int))


# ---------------------------------------------------------------- reading a fact body


def _card(body: Mapping[str, Any]) -> str | None:
    card = body.get("card")
    return card if isinstance(card, str) and _CARD.match(card) else None


def _day(value: object) -> str | None:
    """The calendar day of an ISO time as written (a till's local wall clock stays local)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).date().isoformat()
    except ValueError:
        return None


def _kopecks(value: object) -> int | None:
    """A money string (``"123.45"``) within one receipt's ceiling, in kopecks."""
    if not isinstance(value, str) or not _MONEY.match(value):
        return None
    try:
        kop = to_kop(Decimal(value))
    except (InvalidOperation, ValueError):
        return None
    return kop if kop <= MAX_RECEIPT_KOP else None


def _promotions(
    value: object, what: str, where: str, *, of: type[list[Any] | dict[Any, Any]]
) -> list[str]:
    """The promotion ids in a list (``of`` list) or an object's keys (``of`` dict);
    unreadable ones left out."""
    if value is None:
        return []  # a fact written before the counters: nothing to count
    if not isinstance(value, of):
        logger.warning("%s: %s is not a %s; not counted", where, what, of.__name__)
        return []
    valid = [p for p in value if isinstance(p, str) and _PROMOTION.match(p)]
    if len(valid) < len(value):
        logger.warning("%s: %s holds promotion ids that are not; those not counted", where, what)
    ids = sorted(set(valid))  # a receipt uses a promotion once
    if len(ids) > MAX_FACT_PROMOTIONS:
        logger.warning("%s: %s names %d promotions; not counted", where, what, len(ids))
        return []
    return ids


def _budget(value: object, where: str) -> dict[str, int]:
    out: dict[str, int] = {}
    if not isinstance(value, dict):
        if value is not None:
            logger.warning("%s: budget is not an object; not counted", where)
        return out
    for pid in _promotions(value, "budget", where, of=dict):
        points = value[pid]
        if type(points) is int and 0 <= points <= MAX_RECEIPT_POINTS:  # bool is no count
            out[pid] = points
            continue
        logger.warning("%s: budget of %s is not a number of points; not counted", where, pid)
    return out


def _sale_day(body: Mapping[str, Any], created_at: datetime) -> str:
    """The local day a sale is counted on: its till's wall clock, else the day it was
    recorded (UTC) for facts without a readable ``local_time``."""
    return _day(body.get("local_time")) or created_at.astimezone(UTC).date().isoformat()


def _where(till: str, fact: FactIn, card: str | None) -> str:
    return f"till {till}: fact {fact.id}" + (f" (card {mask(card)})" if card else "")


def _sale(deltas: _Deltas, till: str, fact: FactIn) -> set[str]:
    body, card = fact.body, _card(fact.body)
    where = _where(till, fact, card)
    if body.get("card") is not None and card is None:
        logger.warning("%s: card is not a card number; only budgets counted", where)
    for pid, points in _budget(body.get("budget"), where).items():
        deltas.budgets[pid] += points
    if card is None:
        return set()
    day = _sale_day(body, fact.created_at)
    deltas.cards[card, VISIT, day] += 1
    paid = _kopecks(body.get("total"))
    if paid is None:
        logger.warning("%s: total is not a money amount; spend not counted", where)
    else:
        deltas.cards[card, SPEND, day] += paid
    for pid in _promotions(body.get("uses"), "uses", where, of=list):
        deltas.cards[card, USE + pid, day] += 1
    for pid in _promotions(body.get("stamps"), "stamps", where, of=dict):
        deltas.cards[card, STAMP + pid, day] += 1
    return {card}


def _refund(tx: Tx, deltas: _Deltas, till: str, fact: FactIn) -> set[str]:
    """A refund takes its money off the rolling spend, on the day of the sale it returns."""
    body = fact.body
    sale = tx.one(
        "SELECT body, created_at FROM receipt_facts"
        " WHERE till = ? AND receipt_id = ? AND kind = 'sale'",
        (till, fact.receipt_id),
    )
    sale_body: Any = {}
    if sale is not None:
        try:
            sale_body = json.loads(sale["body"])
        except ValueError:
            sale_body = {}
    sale_body = sale_body if isinstance(sale_body, dict) else {}
    card = _card(body) or _card(sale_body)
    where = _where(till, fact, card)
    if card is None:
        return set()  # nothing was counted for a sale without a card
    # The till writes whole kopecks (agent/usecases/returns.py); a money string reads too.
    amount = body.get("amount_returned")
    if not (type(amount) is int and 0 <= amount <= MAX_RECEIPT_KOP):
        amount = _kopecks(amount)
    if amount is None:
        logger.warning("%s: amount_returned is not a money amount; not counted", where)
        return set()
    if sale is not None:
        # (A sale kept only as a marker, over MAX_FACT_BYTES, falls back to its created day
        # here though it was counted on its local day: a day's difference in the window.)
        day = _sale_day(sale_body, datetime.fromisoformat(sale["created_at"]))
    else:  # a sale head office never saw (made before facts were): the refund's own day
        day = _day(body.get("at")) or fact.created_at.astimezone(UTC).date().isoformat()
    if amount:
        deltas.cards[card, SPEND, day] -= amount
    return {card} if amount else set()


# ---------------------------------------------------------------- counting


class Counted(NamedTuple):
    """What a batch of facts counted: the cards whose counts changed and the budgets that
    grew. The caller moves them in the change feed, the cards head office knows with
    whatever else of theirs moved (a card moves once a push), at the end of its write:
    the ``change`` counter row is the last lock a write takes, held until commit."""

    cards: set[str]
    budgets: list[str]


def count(tx: Tx, *, till: str, facts: Sequence[FactIn]) -> Counted:
    """Add what ``facts`` (stored just now, for the first time) count, in ``tx``."""
    deltas = _Deltas()
    cards: set[str] = set()
    for fact in facts:
        if fact.kind == "sale":
            cards |= _sale(deltas, till, fact)
        elif fact.kind == "refund":
            cards |= _refund(tx, deltas, till, fact)
    tx.values(
        "INSERT INTO card_counters (card, till, name, day, value) VALUES ?"
        " ON CONFLICT (card, till, name, day) DO UPDATE"
        " SET value = card_counters.value + excluded.value",
        [
            (card, till, name, day, value)
            for (card, name, day), value in sorted(deltas.cards.items())
            if value
        ],
        ("text", "text", "text", "text", "bigint"),
    )
    grown = sorted(pid for pid, points in deltas.budgets.items() if points)
    tx.values(
        "INSERT INTO budget_counters (promotion_id, till, points) VALUES ?"
        " ON CONFLICT (promotion_id, till) DO UPDATE"
        " SET points = budget_counters.points + excluded.points",
        [(pid, till, deltas.budgets[pid]) for pid in grown],
        ("text", "text", "bigint"),
    )
    return Counted(cards, grown)


# ---------------------------------------------------------------- what a till is sent


@dataclass(frozen=True, kw_only=True)
class Totals:
    """A card's counts at every till, as :func:`others_of` reads them for ``today``: per name
    (spend left out) its sum over all days and how many tills counted it; per promotion
    use and day of the recent ones, the same; per day of the spend window, its sum."""

    names: dict[str, tuple[int, int]] = field(default_factory=dict)
    use_days: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    spend: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Own:
    """What one till counted of a card, in the windows of :class:`Totals`."""

    names: dict[str, int] = field(default_factory=dict)
    use_days: dict[tuple[str, str], int] = field(default_factory=dict)
    spend: dict[str, int] = field(default_factory=dict)


_NONE = Own()


def _windows(today: date) -> tuple[str, str, str]:
    """The first day of spend sent, the first of per-day uses, the last of both."""
    return (
        (today - timedelta(days=SPEND_DAYS)).isoformat(),
        (today - timedelta(days=USE_DAYS)).isoformat(),
        (today + timedelta(days=USE_DAYS)).isoformat(),
    )


def totals(tx: Tx, cards: Iterable[str], *, today: date) -> dict[str, Totals]:
    """Each card's counts at every till (a card nobody counted: empty :class:`Totals`).

    Alike for every till at one change of the card and one ``today`` (UTC): the change
    feed builds them once (:mod:`tillgate.hq.feedparts`) and takes each till's own counts
    off (:func:`mine`, :func:`others_of`)."""
    keys = sorted(set(cards))
    out = {card: Totals() for card in keys}
    first_spend, first_use, last = _windows(today)
    for part in parts(tx, keys):
        cards, args = among(tx, "card", part)
        for r in tx.all(
            "SELECT card, name, SUM(value) AS n, COUNT(DISTINCT till) AS k FROM card_counters"
            f" WHERE {cards} AND name <> 'spend' GROUP BY card, name",
            args,
        ):
            out[r["card"]].names[r["name"]] = (int(r["n"]), int(r["k"]))
        for r in tx.all(
            "SELECT card, name, day, SUM(value) AS n, COUNT(*) AS k FROM card_counters"
            f" WHERE {cards} AND name LIKE 'use:%' AND day >= ? AND day <= ?"
            " GROUP BY card, name, day",
            [*args, first_use, last],
        ):
            out[r["card"]].use_days[r["name"], r["day"]] = (int(r["n"]), int(r["k"]))
        for r in tx.all(
            "SELECT card, day, SUM(value) AS n FROM card_counters"
            f" WHERE {cards} AND name = 'spend' AND day >= ? AND day <= ?"
            " GROUP BY card, day",
            [*args, first_spend, last],
        ):
            out[r["card"]].spend[r["day"]] = int(r["n"])
    return out


def ask_mine(tx: Tx, cards: Iterable[str], *, till: str) -> list[Pending]:
    """Queue :func:`mine`'s statements (one per 500 cards), read by :func:`mine_of`: on
    PostgreSQL they go in one round trip with the page's other per-till statements."""
    asked = []
    for part in parts(tx, sorted(set(cards))):
        where, args = among(tx, "card", part)
        sql = f"SELECT card, name, day, value FROM card_counters WHERE {where} AND till = ?"
        asked.append(tx.ahead(sql, [*args, till]))
    return asked


def mine_of(asked: Iterable[Pending], *, today: date) -> dict[str, Own]:
    """The rows :func:`ask_mine` asked for, as each card's :class:`Own`."""
    first_spend, first_use, last = _windows(today)
    out: dict[str, Own] = {}
    for pending in asked:
        for r in pending.all():
            own = out.setdefault(r["card"], Own())
            name, day, n = r["name"], r["day"], int(r["value"])
            if name == SPEND:
                if first_spend <= day <= last:
                    own.spend[day] = own.spend.get(day, 0) + n
                continue
            own.names[name] = own.names.get(name, 0) + n
            if name.startswith(USE) and first_use <= day <= last:
                own.use_days[name, day] = own.use_days.get((name, day), 0) + n
    return out


def mine(tx: Tx, cards: Iterable[str], *, till: str, today: date) -> dict[str, Own]:
    """What ``till`` counted of each card, one statement per 500 cards; a card it never
    counted is left out (most of a page: a till sees a card counted at any till)."""
    return mine_of(ask_mine(tx, cards, till=till), today=today)


def others_of(card: str, total: Totals, own: Own | None = None) -> dict[str, Any] | None:
    """A card's counts at every till but the one that counted ``own`` (:func:`totals` less
    :func:`mine`), as the change feed sends them; None: no other till counted it (the feed
    sends ``{}``).

    ``{"visits": n, "spend": [[day, kopecks], ...], "uses": {promotion: {"total": n,
    "days": {day: n}}}, "stamps": {promotion: n}}``. ``spend`` holds the days from
    ``today`` − 3662 to ``today`` + 2, ``days`` those from ``today`` − 2 to ``today`` + 2
    (``today``: UTC, that of :func:`totals` and :func:`mine`).
    """
    if not total.names and not total.spend:
        return None  # most cards: no till counted them (a use has its name counted too)
    own = own or _NONE
    out: dict[str, Any] | None = None

    def of() -> dict[str, Any]:
        nonlocal out
        if out is None:
            out = {"visits": 0, "spend": [], "uses": {}, "stamps": {}}
        return out

    for name in sorted(total.names):
        n, tills = total.names[name]
        if tills - (name in own.names) <= 0:
            continue  # only this till counted it
        n -= own.names.get(name, 0)
        if name == VISIT:
            of()["visits"] = n
        elif name.startswith(USE):
            of()["uses"][name[len(USE) :]] = {"total": n, "days": {}}
        elif name.startswith(STAMP):
            of()["stamps"][name[len(STAMP) :]] = n
    for name, day in sorted(total.use_days):
        n, tills = total.use_days[name, day]
        if out is None or tills - ((name, day) in own.use_days) <= 0:
            continue
        uses = out["uses"].get(name[len(USE) :])
        if uses is not None:
            uses["days"][day] = n - own.use_days.get((name, day), 0)
    for day in sorted(total.spend):
        if n := total.spend[day] - own.spend.get(day, 0):
            of()["spend"].append([day, n])
    if out is not None:
        for key in ("uses", "stamps"):
            if len(out[key]) > MAX_PROMOTIONS:
                logger.warning(
                    "card %s: %d promotions counted, only %d sent",
                    mask(card),
                    len(out[key]),
                    MAX_PROMOTIONS,
                )
                out[key] = dict(sorted(out[key].items())[:MAX_PROMOTIONS])
    return out


def ask_budgets(tx: Tx, promotions: Iterable[str], *, till: str) -> tuple[list[str], list[Pending]]:
    """Queue :func:`budgets`' statements, read by :func:`budgets_of`."""
    keys = sorted(set(promotions))
    asked = []
    for part in parts(tx, keys):
        where, args = among(tx, "promotion_id", part)
        asked.append(
            tx.ahead(
                "SELECT promotion_id, SUM(points) AS n FROM budget_counters"
                f" WHERE {where} AND till <> ? GROUP BY promotion_id",
                [*args, till],
            )
        )
    return keys, asked


def budgets_of(asked: tuple[list[str], list[Pending]]) -> dict[str, int]:
    keys, pending = asked
    out = dict.fromkeys(keys, 0)
    for p in pending:
        for r in p.all():
            out[r["promotion_id"]] = int(r["n"])
    return out


def budgets(tx: Tx, promotions: Iterable[str], *, till: str) -> dict[str, int]:
    """Points each promotion gave from its budget at every till but ``till`` (0: none)."""
    return budgets_of(ask_budgets(tx, promotions, till=till))
