"""Receipts and refunds in the till's data file: the ``receipts``, ``refunds`` and
``refund_lines`` tables, and the record a calculation leaves for confirm and refund.

A receipt row carries the last calculation of the receipt as a :class:`Calculation`: a
typed, versioned, compact record of what confirm and refund need (the paid amount of each
line, promotion uses, stamps, coupons to mark, what to print), never the whole API
response. Rows written before the record existed hold the old response with its
``_internal`` keys; :func:`upgrade_legacy` (the schema's migration 3) rewrites them, so a
receipt calculated before an upgrade can still be confirmed and refunded after it.

Size (issue 15: ≤ 2 KB a receipt once synced): the record is written as arrays, not
objects (version 2); once confirmed a receipt keeps only its lines (the receipt's facts
are in the ``facts`` table from then on, the confirm's answer in ``response``); the request
is not kept (the one thing a refund needs of it,
weighed or not per line, is in the record's lines). :func:`compact` (migration 9) brings
rows written before down to that.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from tillgate.core.frozen import quick_init

from .ledger import ts

_encode = msgspec.json.Encoder().encode

# A receipt whose sale went through: confirmed, or since returned in full.
DONE = ("confirmed", "refunded")

RECORD_VERSION = 2


@quick_init
@dataclass(frozen=True, kw_only=True)
class PaidLine:
    """A line as the calculation left it: sold quantity, paid kopecks, earns points."""

    index: int
    qty: str
    paid: int
    eligible: bool
    weighed: bool | None = None  # as the POS said (None: it did not; see returns.py)


@dataclass(frozen=True, kw_only=True)
class Calculation:
    """What a receipt's last calculation leaves for its confirm and its refunds."""

    card_source: str | None = None  # "request" | "session": where the card came from
    lines: tuple[PaidLine, ...] = ()
    uses: tuple[str, ...] = ()  # promotions that had an effect (limits count them)
    stamps: dict[str, int] = field(default_factory=dict)  # promotion → the card's new count
    budget: dict[str, int] = field(default_factory=dict)  # promotion → points from its budget
    birthday_points: int = 0
    birthday_year: int | None = None
    coupons_used: dict[str, str] = field(default_factory=dict)  # code → promotion
    printed: tuple[dict[str, Any], ...] = ()  # print items (coupons with their codes)
    subtotal: str = "0.00"
    discount: str = "0.00"
    total: str = "0.00"
    redeemed_amount: str = "0.00"
    # The receipt's facts for head office (engine inputs and outcome, program version,
    # offline or not: tillgate.core.rules.facts); None for receipts calculated before.
    facts: dict[str, Any] | None = None

    def to_json(self) -> str:
        """Version 2: lines as ``[index, qty, paid, eligible, weighed]``, the fields left at
        their defaults left out, no spaces (``dataclasses.asdict`` would deep-copy the facts
        and the print items first, on every calculate's clock); encoded by msgspec, the
        text ``json.dumps(…, ensure_ascii=False, separators=(",", ":"))`` gives, in a
        tenth of its time."""
        body: dict[str, Any] = {"v": RECORD_VERSION}
        for name, value in vars(self).items():
            if name == "lines":
                body[name] = [[ln.index, ln.qty, ln.paid, ln.eligible, ln.weighed] for ln in value]
            elif value != _DEFAULTS[name]:
                body[name] = list(value) if isinstance(value, tuple) else value
        return _encode(body).decode()

    def confirmed(self) -> Calculation:
        """The record a confirmed receipt keeps: its lines, all its refunds read. The rest
        served the confirm (its facts are in the ``facts`` table from then on, and a retried
        confirm answers the stored response)."""
        return Calculation(lines=self.lines)

    @classmethod
    def from_json(cls, text: str) -> Calculation:
        data = json.loads(text)
        if "v" not in data:  # a response stored before the record (see upgrade_legacy)
            return cls.from_legacy(data, request=None)
        if data["v"] == RECORD_VERSION:
            return cls(
                **{k: v for k, v in data.items() if k not in ("v", "lines")},
                lines=tuple(
                    PaidLine(index=i, qty=q, paid=p, eligible=e, weighed=w)
                    for i, q, p, e, w in data.get("lines", ())
                ),
            )._typed()
        if data["v"] != 1:
            raise ValueError(f"calculation record version {data['v']} is not understood")
        return cls(
            card_source=data["card_source"],
            lines=tuple(PaidLine(**ln) for ln in data["lines"]),
            uses=tuple(data["uses"]),
            stamps=dict(data["stamps"]),
            budget=dict(data["budget"]),
            birthday_points=data["birthday_points"],
            birthday_year=data["birthday_year"],
            coupons_used=dict(data["coupons_used"]),
            printed=tuple(data["printed"]),
            subtotal=data["subtotal"],
            discount=data["discount"],
            total=data["total"],
            redeemed_amount=data["redeemed_amount"],
            facts=data.get("facts"),
        )

    @classmethod
    def from_legacy(
        cls, result: Mapping[str, Any], *, request: Mapping[str, Any] | None
    ) -> Calculation:
        """The record of a receipt stored as a whole response with ``_internal`` keys."""
        internal = result["_internal"]
        qtys = (
            {i: str(ln["qty"]) for i, ln in enumerate(request["lines"])}
            if request is not None
            else {ln["index"]: ln["qty"] for ln in result.get("lines", [])}
        )
        return cls(
            card_source=result.get("_card_source"),
            lines=tuple(
                PaidLine(
                    index=x["index"], qty=qtys[x["index"]], paid=x["paid"], eligible=x["eligible"]
                )
                for x in internal["lines"]
            ),
            uses=tuple(internal["uses"]),
            stamps=dict(internal["stamps"]),
            budget=dict(internal["budget"]),
            birthday_points=internal["birthday_points"],
            birthday_year=internal.get("birthday_year"),
            coupons_used=dict(internal["coupons_used"]),
            printed=tuple(result["print"]),
            subtotal=result["subtotal"],
            discount=result["discount"],
            total=result["total"],
            redeemed_amount=result["redeemed"]["amount"],
        )

    def _typed(self) -> Calculation:
        # JSON brought lists where the record has tuples.
        return replace(self, uses=tuple(self.uses), printed=tuple(self.printed))

    def qtys(self) -> dict[int, Decimal]:
        return {ln.index: Decimal(ln.qty) for ln in self.lines}


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Calculation)} | {
    "stamps": {},
    "budget": {},
    "coupons_used": {},
}


@dataclass(frozen=True, kw_only=True)
class Receipt:
    """A receipt row."""

    receipt_id: str
    status: str
    card: str | None
    calc: Calculation
    hold_entry: str | None
    hold_points: int
    hold_expires_at: str | None
    accrued: int
    redeemed: int
    response: str | None  # the confirm response, once confirmed (answered again on retry)
    # What the confirm said, as it was stored (a retry must say the same).
    paid: str | None = None
    fiscal_id: str | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE


def get(conn: sqlite3.Connection, receipt_id: str) -> Receipt | None:
    row = conn.execute("SELECT * FROM receipts WHERE receipt_id = ?", (receipt_id,)).fetchone()
    if row is None:
        return None
    return Receipt(
        receipt_id=row["receipt_id"],
        status=row["status"],
        card=row["card"],
        calc=Calculation.from_json(row["result"]),
        hold_entry=row["hold_entry"],
        hold_points=row["hold_points"],
        hold_expires_at=row["hold_expires_at"],
        accrued=row["accrued"],
        redeemed=row["redeemed"],
        response=row["response"],
        paid=row["paid"],
        fiscal_id=row["fiscal_id"],
    )


def line_kinds(calc: Calculation) -> dict[int, bool | None]:
    """What the POS said of each line of the receipt's last calculation: weighed (True), sold
    by the unit (False), or nothing (None: then a fractional quantity means weighed)."""
    return {ln.index: ln.weighed for ln in calc.lines}


def save_calculation(
    conn: sqlite3.Connection,
    *,
    receipt_id: str,
    card: str | None,
    calc: Calculation,
    hold_entry: str | None,
    hold_points: int,
    hold_expires_at: str | None,
    accrued: int,
    redeemed: int,
    paid_kop: int,
    now: datetime,
) -> None:
    """Insert or replace the receipt's last calculation (status ``calculated``)."""
    conn.execute(
        "INSERT INTO receipts (receipt_id, status, card, request, result, hold_entry,"
        " hold_points, hold_expires_at, accrued, redeemed, paid_kop, created_at,"
        " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (receipt_id) DO UPDATE SET card = excluded.card,"
        " request = excluded.request, result = excluded.result,"
        " hold_entry = excluded.hold_entry, hold_points = excluded.hold_points,"
        " hold_expires_at = excluded.hold_expires_at, accrued = excluded.accrued,"
        " redeemed = excluded.redeemed, paid_kop = excluded.paid_kop,"
        " updated_at = excluded.updated_at",
        (
            receipt_id,
            "calculated",
            card,
            "",  # the request is not kept (see the module's docstring)
            calc.to_json(),
            hold_entry,
            hold_points,
            hold_expires_at,
            accrued,
            redeemed,
            paid_kop,
            ts(now),
            ts(now),
        ),
    )


def mark_confirmed(
    conn: sqlite3.Connection,
    receipt_id: str,
    *,
    calc: Calculation,
    paid: str | None,
    fiscal_id: str | None,
    response: Mapping[str, Any],
    now: datetime,
) -> None:
    conn.execute(
        "UPDATE receipts SET status = 'confirmed', hold_entry = NULL, hold_points = 0,"
        " hold_expires_at = NULL, result = ?, paid = ?, fiscal_id = ?, response = ?,"
        " confirmed_at = ?, updated_at = ? WHERE receipt_id = ?",
        (
            calc.confirmed().to_json(),  # what refunds need, no more
            paid,
            fiscal_id,
            json.dumps(response, ensure_ascii=False, separators=(",", ":")),
            ts(now),
            ts(now),
            receipt_id,
        ),
    )


def mark_cancelled(conn: sqlite3.Connection, receipt_id: str, *, now: datetime) -> None:
    conn.execute(
        "UPDATE receipts SET status = 'cancelled', hold_entry = NULL,"
        " hold_points = 0, hold_expires_at = NULL, updated_at = ?"
        " WHERE receipt_id = ?",
        (ts(now), receipt_id),
    )


# ---------------------------------------------------------------- refunds


RefundLines = tuple[tuple[int, Decimal], ...]


@dataclass(frozen=True, kw_only=True)
class Refund:
    """A refund made under its id: its receipt, the lines it asked for (index, quantity;
    None: the rest of the receipt) and the answer it gave."""

    receipt_id: str
    lines: RefundLines | None
    response: dict[str, Any]


def refund_done(conn: sqlite3.Connection, refund_id: str) -> Refund | None:
    """The refund already made under ``refund_id``, if any."""
    row = conn.execute(
        "SELECT receipt_id, request, response FROM refunds WHERE refund_id = ?", (refund_id,)
    ).fetchone()
    if row is None:
        return None
    lines = json.loads(row["request"]).get("lines")
    return Refund(
        receipt_id=row["receipt_id"],
        lines=None if lines is None else tuple((int(i), Decimal(q)) for i, q in lines),
        response=dict(json.loads(row["response"])),
    )


def returned(conn: sqlite3.Connection, receipt_id: str) -> dict[int, Decimal]:
    """Quantity returned so far of each line of the receipt (cumulative)."""
    return {
        r[0]: Decimal(r[1])
        for r in conn.execute(
            "SELECT line_index, returned_qty FROM refund_lines WHERE receipt_id = ?",
            (receipt_id,),
        )
    }


def save_returns(
    conn: sqlite3.Connection,
    *,
    receipt_id: str,
    returned_now: Mapping[int, Decimal],
    amount_returned: int,
    in_full: bool,
    now: datetime,
) -> None:
    """The receipt's cumulative returns after a refund, and its state."""
    for index, qty in returned_now.items():
        conn.execute(
            "INSERT INTO refund_lines (receipt_id, line_index, returned_qty)"
            " VALUES (?,?,?) ON CONFLICT (receipt_id, line_index)"
            " DO UPDATE SET returned_qty = excluded.returned_qty",
            (receipt_id, index, str(qty)),
        )
    conn.execute(
        "UPDATE receipts SET returned_kop = ?, updated_at = ?, status = ? WHERE receipt_id = ?",
        (amount_returned, ts(now), "refunded" if in_full else "confirmed", receipt_id),
    )


def save_refund(
    conn: sqlite3.Connection,
    *,
    receipt_id: str,
    refund_id: str,
    lines: list[tuple[int, Decimal]] | None,
    response: Mapping[str, Any],
    now: datetime,
) -> None:
    """One refund under its id, with the answer to repeat if it is asked again."""
    conn.execute(
        "INSERT INTO refunds (refund_id, receipt_id, request, response, created_at)"
        " VALUES (?,?,?,?,?)",
        (
            refund_id,
            receipt_id,
            json.dumps({"lines": None if lines is None else [[i, str(q)] for i, q in lines]}),
            json.dumps(response, ensure_ascii=False),
            ts(now),
        ),
    )


# ---------------------------------------------------------------- migration 3


@contextmanager
def damaged(receipt_id: str) -> Iterator[None]:
    """A record a migration cannot read becomes a :class:`ValueError` naming its receipt
    (json, ``KeyError`` and ``TypeError`` alike), which the data file turns into a clear
    error with the file left as it was before that migration (agent/store/db.py)."""
    try:
        yield
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(
            f"receipt {receipt_id!r} has a damaged calculation record ({type(exc).__name__}: {exc})"
        ) from exc


def upgrade_legacy(conn: sqlite3.Connection) -> None:
    """Rewrite receipts stored as a whole response (``_internal``) as :class:`Calculation`."""
    rows = conn.execute("SELECT receipt_id, request, result FROM receipts").fetchall()
    for receipt_id, request, result in rows:
        with damaged(receipt_id):
            data = json.loads(result)
            if "v" in data:
                continue
            calc = Calculation.from_legacy(data, request=json.loads(request))
        conn.execute(
            "UPDATE receipts SET result = ? WHERE receipt_id = ?", (calc.to_json(), receipt_id)
        )


# ---------------------------------------------------------------- migration 9


def compact(conn: sqlite3.Connection) -> None:
    """Rewrite every receipt's record as version 2: the request's weighed flags moved into
    the lines, the request dropped, a confirmed receipt's record cut to its lines and a
    cancelled one's facts dropped; synced facts go (head office has them)."""
    rows = conn.execute("SELECT receipt_id, status, request, result FROM receipts").fetchall()
    for receipt_id, status, request, result in rows:
        with damaged(receipt_id):
            calc = Calculation.from_json(result)
            asked = json.loads(request).get("lines") if request else None
            if isinstance(asked, list):
                kinds = {i: ln.get("weighed") for i, ln in enumerate(asked) if isinstance(ln, dict)}
                lines = tuple(replace(ln, weighed=kinds.get(ln.index)) for ln in calc.lines)
                calc = replace(calc, lines=lines)
        if status in DONE:
            calc = calc.confirmed()
        elif status == "cancelled":
            calc = replace(calc, facts=None)
        conn.execute(
            "UPDATE receipts SET request = '', result = ? WHERE receipt_id = ?",
            (calc.to_json(), receipt_id),
        )
    conn.execute("DELETE FROM facts WHERE synced_at IS NOT NULL")
