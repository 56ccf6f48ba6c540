"""Online holds: head office reserves, for an open receipt at an online till, the points it
will redeem and the coupon codes it applies, so that no other till can spend them too.

One hold per receipt of a till (``holds``), made in the calculate's one round trip
(``POST /v1/holds``) and replaced by the next calculate of the same receipt. Head office
grants at most what is **available** chain-wide: the card's balance (every counted entry
of every till, hold and release entries left out) minus what the other open receipts
reserved. A hold then lives through these states:

* ``active``: its ``points`` are reserved until ``expires_at`` (the till's request, capped
  by ``[program.holds] max_seconds``); past it they count no more (``expired``);
* ``confirmed``: the till confirmed the receipt; the points it ``redeemed`` stay reserved,
  whatever the time, until the till's ``redeem`` entry of that receipt arrives in a push;
* ``settled``: that entry arrived, so the balance counts the points (same transaction);
* ``released``: cancelled at the till, or released by it after it priced the receipt
  offline (no answer in time).

Confirm, cancel and release reach head office once each way: straight after the till's own
commit (``POST /v1/holds/{receipt_id}/resolve``) or, when that got no answer, in the next
push's ``holds``. Resolving a hold that is no longer active changes nothing and answers
its state, so a retry never resolves twice. A ``redeem`` entry settles its hold even if
the resolution never came.

Coupon codes are reserved in ``coupon_holds`` (one receipt per code): refused at every other
receipt while the receipt is open; a confirmed receipt's codes stay reserved until the
push brings their use (``coupons_used``), after which they are used for good.

Concurrency: a grant locks the card's row (PostgreSQL ``FOR UPDATE``; SQLite serializes
every writer), as every push that stores entries of the card does, so two grants and a
push on one card happen one after another. Resolutions only ever lower what is reserved,
so a grant that reads before one commits errs on the safe side.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tillgate.core.cards import mask

from .authority import Policy
from .db import Database, Pending, Tx, marks
from .folds import among, parts
from .ledger import (
    FOREVER,
    add_changes,
    spendable,
)  # FOREVER: a used code's hold waits for its push
from .ledger import canonical_or as _code
from .tills import TillId
from .wire import HoldIn, HoldResolutionIn, PushIn, ts

logger = logging.getLogger(__name__)

ACTIVE, CONFIRMED, SETTLED, RELEASED, EXPIRED = (
    "active",
    "confirmed",
    "settled",
    "released",
    "expired",
)


def _hold_row(tx: Tx, till: str, receipt_id: str) -> Pending:
    """The receipt's hold, its row locked until commit (PostgreSQL); sent ahead."""
    lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
    return tx.ahead(
        f"SELECT * FROM holds WHERE till = ? AND receipt_id = ?{lock}", (till, receipt_id)
    )


# A coupon code's hold past its time is let go once its till has pulled since (or is revoked).
_TILL_CAUGHT_UP = (
    "EXISTS (SELECT 1 FROM tills t WHERE t.id = coupon_holds.till"
    " AND (t.revoked_at IS NOT NULL OR t.last_pull >= coupon_holds.expires_at))"
)

# Whether a hold reserves anything now. A confirmed one does until its redeem entry settles
# it. An active one past its time still does while its till has not pulled since (it may
# have confirmed the receipt while cut off, its redeem entry not yet here), unless the till
# is revoked. One parameter: now.
_LIVE = (
    "(h.status = 'confirmed' OR (h.status = 'active' AND t.revoked_at IS NULL"
    " AND (h.expires_at > ? OR t.last_pull IS NULL OR t.last_pull < h.expires_at)))"
)
_COUNTS = (
    f"CASE WHEN NOT {_LIVE} THEN 0 WHEN h.status = 'confirmed' THEN h.redeemed ELSE h.points END"
)


def reserved(tx: Tx, card: str, now: datetime, *, besides: tuple[str, str]) -> Pending:
    """Points of ``card`` that other open receipts hold than ``besides``; sent ahead.

    On PostgreSQL this runs after the statement that locked the card, whose lock every
    hold on the card takes first: it sees every hold committed before it got the lock.
    """
    return tx.ahead(
        f"SELECT COALESCE(SUM({_COUNTS}), 0) FROM holds h JOIN tills t ON t.id = h.till"
        " WHERE h.card = ? AND h.status IN ('active', 'confirmed')"
        " AND NOT (h.till = ? AND h.receipt_id = ?)",
        (ts(now), card, *besides),
    )


def ask_held_elsewhere(tx: Tx, cards: Sequence[str], till: str, now: datetime) -> list[Pending]:
    """Queue :func:`held_elsewhere`'s statements (one per 500 cards), read by
    :func:`held_of`: on PostgreSQL in one round trip with the page's other ones."""
    asked = []
    for part in parts(tx, sorted(set(cards))):
        where, args = among(tx, "h.card", part)
        asked.append(
            tx.ahead(
                f"SELECT h.card, SUM({_COUNTS}) AS n FROM holds h JOIN tills t ON t.id = h.till"
                f" WHERE {where} AND h.till <> ?"
                " AND h.status IN ('active', 'confirmed') GROUP BY h.card",
                [ts(now), *args, till],
            )
        )
    return asked


def held_of(asked: Sequence[Pending]) -> dict[str, int]:
    return {r["card"]: int(r["n"]) for p in asked for r in p.all() if int(r["n"] or 0)}


def held_elsewhere(tx: Tx, cards: Sequence[str], till: str, now: datetime) -> dict[str, int]:
    """Points of each card other tills' open receipts hold (the change feed sends them, so
    a till that goes offline does not spend them from its cache)."""
    return held_of(ask_held_elsewhere(tx, cards, till, now))


def _locked_card(tx: Tx, card: str) -> Pending:
    """The card's status and kept balance, its row locked until commit (PostgreSQL); sent
    ahead."""
    lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
    return tx.ahead(
        f"SELECT status, balance, balance_until FROM cards WHERE number = ?{lock}", (card,)
    )


@dataclass(frozen=True)
class Asked:
    """What a hold reads, asked ahead (:func:`ask`): the receipt's hold, then the card's
    row (locked: its status and kept balance), then what other receipts hold of it."""

    key: tuple[str, str]  # (till, receipt)
    card: str | None
    hold: Pending
    card_row: Pending | None
    others: Pending | None


def ask(tx: Tx, till: str, req: HoldIn, now: datetime) -> Asked:
    """Queue a hold's reads. A hold is on the calculate's clock, and on PostgreSQL each
    round trip wakes the server: they go in one, run in that order (with the credential's
    check before them, when the till is known: ``KnownTills``)."""
    key = (till, req.receipt_id)
    card = req.card
    return Asked(
        key=key,
        card=card,
        hold=_hold_row(tx, *key),
        card_row=_locked_card(tx, card) if card is not None else None,
        others=reserved(tx, card, now, besides=key) if card is not None else None,
    )


def reserve(
    tx: Tx, till: TillId, req: HoldIn, now: datetime, policy: Policy, *, asked: Asked | None = None
) -> dict[str, Any]:
    """Grant a receipt up to the points it asks for and the coupon codes that are free.

    Replaces the receipt's earlier hold. ``exact`` and not enough available: nothing
    changes (the till refuses the basket's redemption as it would offline). ``asked``:
    this hold's :func:`ask`, if queued already.
    """
    seconds = min(req.seconds, policy.hold_seconds)
    expires = now + timedelta(seconds=seconds)
    key = (till.id, req.receipt_id)
    if asked is None or asked.key != key or asked.card != req.card:
        asked = ask(tx, till.id, req, now)
    card_ask, others = asked.card_row, asked.others
    before = asked.hold.one()
    if before is not None and before["status"] in (CONFIRMED, SETTLED):
        return _reply(req.receipt_id, granted=0, free=0, seconds=0, expires=now) | {
            "refused": "receipt_confirmed",
            "coupons": [],
        }
    free = 0
    card = card_ask.one() if card_ask is not None else None
    if req.card and others is not None and card is not None and card["status"] != "blocked":
        free = max(0, spendable(tx, req.card, now, row=card) - int(others.scalar()))
    if req.exact and req.points > free:
        return _reply(req.receipt_id, granted=0, free=free, seconds=0, expires=now) | {
            "refused": "insufficient_points",
            "coupons": [],
        }
    granted = min(req.points, free) if req.card is not None else 0
    held_before = before is not None and bool(json.loads(before["coupons"] or "[]"))
    verdicts = _reserve_codes(
        tx, till.id, req.receipt_id, req.coupons, now, expires, held_before=held_before
    )
    held = [v["code"] for v in verdicts if v["status"] == "reserved"]
    status = ACTIVE if granted or held else RELEASED
    upsert = (
        "INSERT INTO holds (till, receipt_id, card, points, redeemed, coupons, status,"
        " created_at, updated_at, expires_at, resolved_at, resolution)"
        " VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, NULL, NULL)"
        " ON CONFLICT (till, receipt_id) DO UPDATE SET card = excluded.card,"
        " points = excluded.points, redeemed = 0, coupons = excluded.coupons,"
        " status = excluded.status, updated_at = excluded.updated_at,"
        " expires_at = excluded.expires_at, resolved_at = NULL, resolution = NULL",
        (
            till.id,
            req.receipt_id,
            req.card,
            granted,
            json.dumps(held),
            status,
            ts(now),
            ts(now),
            ts(expires),
        ),
    )
    # Every till's cache learns what this receipt holds (a till cut off later must not
    # spend it from there): the card moves in the change feed when that changed.
    moved = {c for c in (req.card, before["card"] if before is not None else None) if c}
    if before is None or before["card"] != req.card or int(before["points"]) != granted:
        add_changes(tx, "card", moved, now, along=upsert)
    else:
        tx.later(*upsert)
    if granted < req.points and req.card is not None:
        logger.info(
            "hold for %s receipt %s: %d of %d points of card %s granted",
            till.id,
            req.receipt_id,
            granted,
            req.points,
            mask(req.card),
        )
    return _reply(req.receipt_id, granted=granted, free=free, seconds=seconds, expires=expires) | {
        "refused": None,
        "coupons": verdicts,
    }


def _reply(
    receipt_id: str, *, granted: int, free: int, seconds: int, expires: datetime
) -> dict[str, Any]:
    return {
        "receipt_id": receipt_id,
        "granted": granted,
        "available": free,
        "seconds": seconds,
        "expires_at": ts(expires),
    }


def _reserve_codes(
    tx: Tx,
    till: str,
    receipt_id: str,
    codes: Sequence[str],
    now: datetime,
    expires: datetime,
    *,
    held_before: bool,
) -> list[dict[str, str]]:
    """Reserve each free code for this receipt; the receipt's other codes are let go
    (``held_before``: the receipt's earlier hold, if any, held codes)."""
    wanted = sorted({_code(c) for c in codes})
    if not wanted and not held_before:
        return []  # nothing asked, nothing of this receipt's to let go
    mine = [
        r["code"]
        for r in tx.all(
            "SELECT code FROM coupon_holds WHERE till = ? AND receipt_id = ?", (till, receipt_id)
        )
    ]
    gone = [c for c in mine if c not in wanted]
    if gone:
        tx.execute(
            f"DELETE FROM coupon_holds WHERE till = ? AND receipt_id = ? AND code IN"
            f" ({marks(len(gone))})",
            [till, receipt_id, *gone],
        )
    return [
        {"code": code, "status": _reserve_code(tx, till, receipt_id, code, now, expires)}
        for code in wanted
    ]


def _reserve_code(
    tx: Tx, till: str, receipt_id: str, code: str, now: datetime, expires: datetime
) -> str:
    if tx.scalar("SELECT 1 FROM coupons_revoked WHERE code = ?", (code,)):
        return "revoked"
    used = tx.one("SELECT till, receipt_id FROM coupons_used WHERE code = ?", (code,))
    if used is not None and (used["till"], used["receipt_id"]) != (till, receipt_id):
        return "used"
    # One statement takes the code if it is free, expired, or this receipt's already: two
    # tills asking at once meet on the primary key, and the second sees the first's row.
    tx.execute(
        "INSERT INTO coupon_holds (code, till, receipt_id, reserved_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (code) DO UPDATE SET till = excluded.till,"
        " receipt_id = excluded.receipt_id, reserved_at = excluded.reserved_at,"
        " expires_at = excluded.expires_at"
        f" WHERE (coupon_holds.expires_at <= ? AND {_TILL_CAUGHT_UP})"
        " OR (coupon_holds.till = excluded.till AND coupon_holds.receipt_id = excluded.receipt_id)",
        (code, till, receipt_id, ts(now), ts(expires), ts(now)),
    )
    holder = tx.one("SELECT till, receipt_id FROM coupon_holds WHERE code = ?", (code,))
    if holder is not None and (holder["till"], holder["receipt_id"]) == (till, receipt_id):
        return "reserved"
    return "in_use"


def resolve(tx: Tx, till: str, res: HoldResolutionIn, now: datetime) -> str:
    """End a receipt's hold as the till says (once); returns the hold's state after it.

    ``unknown``: head office never granted this receipt a hold (the till's request did not
    arrive); there is nothing to resolve.
    """
    row = _hold_row(tx, till, res.receipt_id).one()
    if row is None:
        return "unknown"
    status = str(row["status"])
    if status != ACTIVE:
        return status  # resolved before: a retry changes nothing
    if res.resolution == "confirmed":
        redeemed = res.redeemed
        if redeemed and _redeem_stored(tx, till, res.receipt_id):
            redeemed = 0  # the push brought the redemption first: the balance has it
        new = CONFIRMED if redeemed else SETTLED
        used = sorted({_code(c) for c in res.coupons} & set(json.loads(row["coupons"])))
        if used:
            tx.execute(
                f"UPDATE coupon_holds SET expires_at = ? WHERE till = ? AND receipt_id = ?"
                f" AND code IN ({marks(len(used))})",
                [FOREVER, till, res.receipt_id, *used],  # held until the use arrives
            )
        _drop_codes(tx, till, res.receipt_id, keep=used)
    else:
        new, redeemed = RELEASED, 0
        _drop_codes(tx, till, res.receipt_id, keep=[])
    update = (
        "UPDATE holds SET status = ?, redeemed = ?, resolution = ?, resolved_at = ?,"
        " updated_at = ? WHERE till = ? AND receipt_id = ?",
        (new, redeemed, res.resolution, ts(now), ts(now), till, res.receipt_id),
    )
    if row["card"] and redeemed != int(row["points"]):
        add_changes(tx, "card", [row["card"]], now, along=update)
    else:
        tx.later(*update)
    return new


def _redeem_stored(tx: Tx, till: str, receipt_id: str) -> bool:
    return bool(
        tx.scalar(
            "SELECT 1 FROM entries WHERE till = ? AND receipt_id = ? AND kind = 'redeem'",
            (till, receipt_id),
        )
    )


def _drop_codes(tx: Tx, till: str, receipt_id: str, *, keep: Sequence[str]) -> None:
    skip = f" AND code NOT IN ({marks(len(keep))})" if keep else ""
    tx.execute(
        f"DELETE FROM coupon_holds WHERE till = ? AND receipt_id = ?{skip}",
        [till, receipt_id, *keep],
    )


def after_push(tx: Tx, till: str, batch: PushIn, through: int, now: datetime) -> list[str]:
    """What a push means for holds, in its transaction; the receipts whose resolution
    head office now holds (the till stops sending them).

    Every stored ``redeem`` entry settles its receipt's hold, every coupon use ends its
    code's hold, then the resolutions the till could not deliver at once are applied.
    """
    redeemed = sorted(
        {
            e.receipt_id
            for e in batch.entries
            if e.kind == "redeem" and e.receipt_id and e.seq <= through
        }
    )
    for part in _chunks(redeemed):
        tx.execute(
            "UPDATE holds SET status = 'settled', updated_at = ?,"
            " resolution = COALESCE(resolution, 'confirmed'),"
            " resolved_at = COALESCE(resolved_at, ?)"
            f" WHERE till = ? AND status IN ('active', 'confirmed') AND receipt_id IN"
            f" ({marks(len(part))})",
            [ts(now), ts(now), till, *part],
        )
    for use in batch.coupons_used:
        tx.execute(
            "DELETE FROM coupon_holds WHERE code = ? AND till = ? AND receipt_id = ?",
            (_code(use.code), till, use.receipt_id),
        )
    done: list[str] = []
    for res in batch.holds:
        resolve(tx, till, res, now)
        done.append(res.receipt_id)
    return done


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


KEEP_ENDED = timedelta(days=7)  # ended holds stay listed this long, then go


def expire_due(db: Database, now: datetime) -> int:
    """Mark active holds past their time expired and free their codes; how many.

    Holds that ended more than :data:`KEEP_ENDED` ago are deleted: they reserve nothing,
    and a chain makes a hold for every receipt that spends points.
    """
    with db.write() as tx:
        due = tx.all(
            "SELECT h.till, h.receipt_id, h.card FROM holds h JOIN tills t ON t.id = h.till"
            " WHERE h.status = 'active' AND h.expires_at <= ?"
            " AND (t.revoked_at IS NOT NULL OR t.last_pull >= h.expires_at)",
            (ts(now),),
        )
        for part in _chunks([f"{r['till']}\x1f{r['receipt_id']}" for r in due]):
            keys = [k.split("\x1f") for k in part]
            tx.execute(
                "UPDATE holds SET status = 'expired', resolution = 'timed out',"
                " resolved_at = ?, updated_at = ? WHERE status = 'active' AND ("
                + " OR ".join(["(till = ? AND receipt_id = ?)"] * len(keys))
                + ")",
                [ts(now), ts(now), *(v for k in keys for v in k)],
            )
        n = len(due)
        tx.execute(
            f"DELETE FROM coupon_holds WHERE expires_at <= ? AND {_TILL_CAUGHT_UP}", (ts(now),)
        )
        add_changes(tx, "card", {r["card"] for r in due if r["card"]}, now)
        tx.execute(
            "DELETE FROM holds WHERE status IN ('settled', 'released', 'expired')"
            " AND updated_at < ?",
            (ts(now - KEEP_ENDED),),
        )
    return n


def listing(
    tx: Tx, now: datetime, *, every: bool = False, card: str | None = None
) -> list[dict[str, Any]]:
    """Holds for ``GET /v1/admin/holds``: those that reserve points now, or (``every``) all."""
    where: list[str] = []
    params: list[str] = []
    if not every:
        where.append(_LIVE)
        params.append(ts(now))
    if card is not None:
        where.append("h.card = ?")
        params.append(card)
    sql = "SELECT h.* FROM holds h JOIN tills t ON t.id = h.till" + (
        f" WHERE {' AND '.join(where)}" if where else ""
    )
    return [
        {
            "till": r["till"],
            "receipt_id": r["receipt_id"],
            "card": r["card"],
            "points": int(r["points"]),
            "redeemed": int(r["redeemed"]),
            "coupons": json.loads(r["coupons"]),
            "status": r["status"],
            "created_at": r["created_at"],
            "expires_at": r["expires_at"],
            "resolution": r["resolution"],
            "resolved_at": r["resolved_at"],
        }
        for r in tx.all(sql + " ORDER BY h.created_at, h.till, h.receipt_id LIMIT 10000", params)
    ]
