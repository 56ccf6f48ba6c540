"""The till's use cases: calculate, confirm, cancel, refund and card lookup.

This is where the pure rules core meets the SQLite cache: each call runs in one write
transaction (``BEGIN IMMEDIATE``), so two tills' worth of concurrent POS calls on one
card are serialized, a hold placed by one calculate is seen by the next, and a confirm is
either entirely in the ledger or not at all. The HTTP layer (:mod:`.api.app`) only
translates JSON to these calls and errors to status codes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from tillgate.core import errors
from tillgate.core.cards import CardRef, identify, mask
from tillgate.core.clock import Clock, local
from tillgate.core.money import fmt
from tillgate.core.rules import model as m
from tillgate.core.rules.coupons import CouponSigner, canonical, promotion_tag, serial_for
from tillgate.core.rules.engine import Catalog, effective_tier, evaluate
from tillgate.core.rules.program import Program, ProgramFile
from tillgate.core.rules.refunds import PaidLine, state

from . import responses
from .api.schemas import CalculateIn
from .events import EventBus
from .session import CardSession
from .store import cards as card_store
from .store import ledger, points, receipts, syncstate
from .store.db import Database

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TillSettings:
    till: str
    store: str
    timezone: str
    language: Literal["ru", "en"] = "ru"
    hold_seconds: int = 900
    max_lines: int = 1000
    chain: bool = False  # True: the till syncs with a head office (see tillgate.sync)


# A receipt whose sale went through: confirmed, or since returned in full.
DONE = ("confirmed", "refunded")

_OFFLINE_WHY = {
    "max_hours": "no sync for longer than program.offline.max_hours",
    "per_card": "program.offline.redeem_per_card for this card",
    "per_till": "program.offline.redeem_per_till for this till",
}


def _registers_on_first_use(program: Program, ref: CardRef) -> bool:
    """Whether an unknown card becomes a new card of the program when it is used."""
    return ref.kind == "number" and program.register_unknown_cards


class CouponAlreadyUsed(errors.ApiError):
    status, code = 409, "coupon_already_used"


class TillService:
    """Everything the POS API does, over one :class:`Database`."""

    def __init__(
        self,
        *,
        db: Database,
        settings: TillSettings,
        clock: Clock,
        session: CardSession,
        signer: CouponSigner,
        events: EventBus | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.session = session
        self.signer = signer
        self._catalog: Catalog | None = None
        self._catalog_version: str | None = None
        self.offline = False  # the sync layer sets this; a standalone till is never offline
        self.events = events or EventBus()
        # Where confirmed receipts' coupons and prompts go to be printed (the device layer
        # queues them); None: nothing is printed by the agent.
        self.print_sink: Callable[[str, list[dict[str, Any]]], None] | None = None
        # Hints about devices (printer out of paper, card reader offline) for each receipt.
        self.device_hints: Callable[[], list[dict[str, Any]]] | None = None

    # ------------------------------------------------------------ program

    def install_program(self, program: ProgramFile, *, version: str) -> bool:
        """Put a validated program in force; returns False if that version is already in."""
        with self.db.write() as conn:
            row = conn.execute("SELECT version FROM program WHERE id = 1").fetchone()
            if row and row[0] == version:
                self._load_catalog(conn)
                return False
            conn.execute(
                "INSERT INTO program (id, version, body, loaded_at) VALUES (1, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET version = excluded.version,"
                " body = excluded.body, loaded_at = excluded.loaded_at",
                (version, program.model_dump_json(by_alias=True), ledger.ts(self.clock.now())),
            )
            self._catalog = Catalog.build(program)
            self._catalog_version = version
        logger.info(
            "program %r version %s in force (%d promotions)",
            program.program.name,
            version,
            len(program.promotions),
        )
        return True

    def _load_catalog(self, conn: sqlite3.Connection) -> Catalog:
        # Called several times per POS request: read the program body only when its
        # version changed, not on every call.
        row = conn.execute("SELECT version FROM program WHERE id = 1").fetchone()
        if row is None:
            raise errors.StoreError("no loyalty program is loaded on this till")
        if self._catalog is None or self._catalog_version != row["version"]:
            body = conn.execute("SELECT body FROM program WHERE id = 1").fetchone()["body"]
            self._catalog = Catalog.build(ProgramFile.model_validate_json(body))
            self._catalog_version = row["version"]
        return self._catalog

    @property
    def program_version(self) -> str | None:
        return self._catalog_version

    def catalog(self) -> Catalog:
        with self.db.read() as conn:
            return self._load_catalog(conn)

    def import_cards(self, records: list[card_store.CardRecord]) -> int:
        """Put cards into the cache; an opening balance is credited once per card."""
        now = self.clock.now()
        with self.db.write() as conn:
            program = self._load_catalog(conn).program
            for rec in records:
                card_store.upsert(conn, rec, now=now)
                if rec.opening_balance > 0:
                    seen = conn.execute(
                        "SELECT 1 FROM ledger WHERE card = ? AND kind = 'adjust'"
                        " AND note = 'opening balance'",
                        (rec.number,),
                    ).fetchone()
                    if not seen:
                        points.credit(
                            conn,
                            till=self.settings.till,
                            card=rec.number,
                            kind="adjust",
                            points=rec.opening_balance,
                            now=now,
                            delay_days=0,
                            expiry_days=program.expiry_days,
                            note="opening balance",
                        )
        return len(records)

    # ------------------------------------------------------------ helpers

    def _now(self) -> tuple[datetime, datetime]:
        now = self.clock.now()
        return now, local(now, self.settings.timezone)

    def _sweep(self, conn: sqlite3.Connection, now: datetime, card: str | None) -> None:
        points.sweep(
            conn, till=self.settings.till, now=now, card=card, expire=not self.settings.chain
        )

    def _customer(
        self,
        conn: sqlite3.Connection,
        rec: card_store.CardRecord,
        *,
        now: datetime,
        now_local: datetime,
        catalog: Catalog,
        own_hold: int = 0,
    ) -> m.Customer:
        return points.customer(
            conn,
            rec,
            now=now,
            now_local=now_local,
            window_days=catalog.program.window_days,
            own_hold=own_hold,
        )

    def sweep(self) -> None:
        """Periodic housekeeping: timed-out holds and expired lots of every card."""
        now = self.clock.now()
        with self.db.write() as conn:
            self._sweep(conn, now, None)

    def _resolve_card(
        self, conn: sqlite3.Connection, raw: str, *, now: datetime, register: bool
    ) -> card_store.CardRecord:
        program = self._load_catalog(conn).program
        ref = identify(raw, number_pattern=program.card_number_pattern)
        if ref.kind == "phone":
            rec = card_store.find(conn, phone=ref.value)
        else:
            rec = card_store.find(conn, number=ref.value)
        if rec is None:
            if register and _registers_on_first_use(program, ref):
                rec = card_store.CardRecord(number=ref.value, status="new")
                card_store.upsert(conn, rec, now=now, origin="till")
                logger.info("card %s registered on first use", mask(ref.value))
                return rec
            raise errors.CardNotFound(f"card {mask(ref.value)} is not known to this till")
        return rec

    def _card_after(
        self,
        conn: sqlite3.Connection,
        card: str | None,
        *,
        now: datetime,
        now_local: datetime,
        source: str | None,
    ) -> dict[str, Any] | None:
        """The card object as it stands after a receipt's entries are written."""
        if not card:
            return None
        catalog = self._load_catalog(conn)
        rec = card_store.find(conn, number=card)
        if rec is None:  # pragma: no cover - a card with entries is never deleted
            raise errors.StoreError(f"card {mask(card)} has ledger entries but no card record")
        customer = self._customer(conn, rec, now=now, now_local=now_local, catalog=catalog)
        tier = effective_tier(catalog.program, rec.tier, customer.rolling_spend)
        return responses.card_out(
            customer, tier=tier, held=ledger.open_held(conn, card), source=source
        )

    def _coupons(
        self, conn: sqlite3.Connection, codes: list[str], catalog: Catalog
    ) -> tuple[list[m.Coupon], list[dict[str, str]]]:
        accepted: list[m.Coupon] = []
        rejected: list[dict[str, str]] = []
        by_tag = {
            promotion_tag(pid): pid
            for pid, p in catalog.by_id.items()
            if p.reward.kind == "coupon" or p.when.coupon
        }
        for raw in codes:
            try:
                code = canonical(raw)
                signed = self.signer.verify(code)
            except errors.TillgateError:
                rejected.append({"code": raw, "reason": "invalid"})
                continue
            promo = by_tag.get(signed.promotion_tag)
            if promo is None:
                rejected.append({"code": code, "reason": "unknown_promotion"})
            elif conn.execute("SELECT 1 FROM coupons_revoked WHERE code = ?", (code,)).fetchone():
                rejected.append({"code": code, "reason": "revoked"})
            elif conn.execute("SELECT 1 FROM coupons_used WHERE code = ?", (code,)).fetchone():
                rejected.append({"code": code, "reason": "used"})
            else:
                accepted.append(
                    m.Coupon(code=code, promotion_id=promo, valid_until=signed.valid_until)
                )
        return accepted, rejected

    # ------------------------------------------------------------ calculate

    def calculate(self, req: CalculateIn, *, money_off: bool = True) -> dict[str, Any]:
        """Price a basket for ``req`` (a :class:`~.api.schemas.CalculateIn`); may place a hold."""
        if len(req.lines) > self.settings.max_lines:
            raise errors.PayloadTooLarge(
                f"the basket has {len(req.lines)} lines; at most {self.settings.max_lines} "
                "are accepted (pos_api.max_lines)"
            )
        now, now_local = self._now()
        with self.db.write() as conn:
            catalog = self._load_catalog(conn)
            row = conn.execute(
                "SELECT * FROM receipts WHERE receipt_id = ?", (req.receipt_id,)
            ).fetchone()
            if row is not None and row["status"] in DONE:
                raise errors.ReceiptAlreadyConfirmed(
                    f"receipt {req.receipt_id} is already confirmed; use refund to change it"
                )
            if row is not None and row["status"] == "cancelled":
                raise errors.ReceiptCancelled(f"receipt {req.receipt_id} was cancelled")

            # Which card: the request's, else this receipt's earlier one, else the session's.
            source: str | None = None
            raw_card: str | None = req.card
            if raw_card is not None:
                source = "request"
            elif row is not None and row["card"]:
                prev = json.loads(row["result"]).get("_card_source")
                raw_card, source = row["card"], prev or "request"
            else:
                presented = self.session.current(now)
                if presented is not None:
                    raw_card, source = presented.raw, "session"
            rec = None
            if raw_card is not None:
                rec = self._resolve_card(conn, raw_card, now=now, register=True)
                if rec.status == "blocked":
                    raise errors.CardBlocked(f"card {mask(rec.number)} is blocked")
            self._sweep(conn, now, rec.number if rec else None)
            # The sweep may have released this receipt's own timed-out hold: read it again.
            row = conn.execute(
                "SELECT * FROM receipts WHERE receipt_id = ?", (req.receipt_id,)
            ).fetchone()
            own_hold = 0
            if row is not None and row["hold_entry"] and rec and row["card"] == rec.number:
                own_hold = row["hold_points"]
            customer = (
                self._customer(
                    conn, rec, now=now, now_local=now_local, catalog=catalog, own_hold=own_hold
                )
                if rec
                else None
            )
            coupons, rejected = self._coupons(conn, list(req.coupons), catalog)
            lines = tuple(
                m.Line(
                    index=i,
                    sku=ln.sku,
                    name=ln.name,
                    qty=ln.qty,
                    price=ln.price,
                    category=ln.category,
                    tags=tuple(ln.tags),
                    no_discount=ln.no_discount,
                    is_weighed=ln.weighed,
                )
                for i, ln in enumerate(req.lines)
            )
            cap = None
            if self.offline and rec is not None:
                cap = syncstate.offline_cap(
                    conn,
                    policy=catalog.program.offline,
                    card=rec.number,
                    receipt_id=req.receipt_id,
                    now=now,
                )
            context = m.Context(
                now=now_local,
                store=self.settings.store,
                till=self.settings.till,
                language=self.settings.language,
                budget_used=points.budgets_used(
                    conn, [p.id for p in catalog.by_id.values() if p.limits.budget_points]
                ),
                redeem_cap=cap.points if cap is not None else None,
            )
            result = evaluate(
                catalog,
                m.Request(
                    lines=lines,
                    customer=customer,
                    coupons=tuple(coupons),
                    redeem=req.redeem,
                    money_off=money_off,
                ),
                context,
            )
            if (
                cap is not None
                and isinstance(req.redeem, int)
                and req.redeem > result.redeem_max
                and req.redeem > cap.points
            ):
                raise errors.OfflineLimit(
                    f"{req.redeem} points asked, but offline this till may spend at most "
                    f"{cap.points} now ({_OFFLINE_WHY[cap.reason]})",
                    details={"redeemable": result.redeem_max, "limit": cap.reason},
                )
            if isinstance(req.redeem, int) and req.redeem > result.redeem_max:
                raise errors.InsufficientPoints(
                    f"{req.redeem} points asked, at most {result.redeem_max} can be spent on "
                    "this receipt",
                    details={"redeemable": result.redeem_max},
                )

            # Hold the points this receipt would spend, replacing any earlier hold of it.
            hold_entry = row["hold_entry"] if row is not None else None
            hold_points = row["hold_points"] if row is not None else 0
            hold_expires = row["hold_expires_at"] if row is not None else None
            want = result.redeemed_points if rec else 0
            if hold_entry and (want != hold_points or row["card"] != (rec.number if rec else None)):
                points.release(
                    conn,
                    till=self.settings.till,
                    card=row["card"],
                    hold_entry=hold_entry,
                    points=hold_points,
                    receipt_id=req.receipt_id,
                    now=now,
                    note="basket changed",
                )
                hold_entry, hold_points, hold_expires = None, 0, None
            if want and rec and not hold_entry:
                hold_entry = points.hold(
                    conn,
                    till=self.settings.till,
                    card=rec.number,
                    points=want,
                    receipt_id=req.receipt_id,
                    now=now,
                )
                hold_points = want
            if hold_entry:
                hold_expires = ledger.ts(now + timedelta(seconds=self.settings.hold_seconds))

            response = responses.calculation(
                req,
                result,
                # every open hold on the card counts, this receipt's included
                card=responses.card_out(
                    customer,
                    tier=result.tier,
                    source=source,
                    held=ledger.open_held(conn, rec.number) if rec else 0,
                ),
                rejected=rejected,
                prints=self._prints(req.receipt_id, result, now_local.date()),
                available_from=(
                    now_local.date() + timedelta(days=catalog.program.accrual_delay_days)
                    if result.accrued_points
                    else None
                ),
                offline=self.offline,
            )
            if cap is not None:
                response["hints"] = [self._offline_hint(cap), *response["hints"]]
            stored = dict(response)
            stored["_internal"] = responses.internal(result, coupons)
            stored["_card_source"] = source
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
                    req.receipt_id,
                    "calculated",
                    rec.number if rec else None,
                    req.model_dump_json(),
                    json.dumps(stored, ensure_ascii=False),
                    hold_entry,
                    hold_points,
                    hold_expires,
                    result.accrued_points,
                    result.redeemed_points,
                    result.total,
                    ledger.ts(now),
                    ledger.ts(now),
                ),
            )
        if self.device_hints is not None:
            # "Printer out of paper: coupons are queued" belongs on the cashier's screen.
            response["hints"] = [*response["hints"], *self.device_hints()]
        self._announce(response | {"status": "calculated"})
        self.events.publish(
            "hints",
            {
                "receipt_id": response["receipt_id"],
                "card": response["card"],
                "hints": response["hints"],
            },
        )
        return response

    def _offline_hint(self, cap: syncstate.OfflineCap) -> dict[str, Any]:
        """Why points are limited: the cashier must be able to tell the customer."""
        ru = self.settings.language == "ru"
        if cap.reason == "max_hours":
            text = (
                f"Нет связи с офисом более {cap.policy.max_hours} ч: списание баллов недоступно"
                if ru
                else f"No head-office sync for over {cap.policy.max_hours} h: "
                "points cannot be spent"
            )
        else:
            text = (
                f"Нет связи с офисом: можно списать не более {cap.points} баллов"
                if ru
                else f"Offline: at most {cap.points} points can be spent"
            )
        return {"kind": "offline", "text": text, "promotion": None}

    def _prints(self, receipt_id: str, result: m.Result, today: date) -> list[dict[str, Any]]:
        """What will be printed; coupons get their signed code (the same for the same receipt)."""
        out: list[dict[str, Any]] = []
        for item in result.print:
            if item.kind == "coupon":
                valid_until = item.valid_until or today
                code = self.signer.issue(
                    promotion_id=item.promotion,
                    serial=serial_for(self.settings.till, receipt_id, item.promotion),
                    valid_until=valid_until,
                )
                out.append(responses.coupon_print(item, code=code, valid_until=valid_until))
            else:
                out.append(responses.message_print(item))
        return out

    # ------------------------------------------------------------ confirm / cancel

    def confirm(
        self,
        receipt_id: str,
        *,
        paid: str | None = None,
        fiscal_id: str | None = None,
        print_items: bool = True,
    ) -> dict[str, Any]:
        """Commit the last calculation of a receipt to the ledger (idempotent).

        What the receipt prints (coupons, prompts) goes to :attr:`print_sink` once, when the
        receipt is first confirmed, unless ``print_items`` is false (interception prints it
        inside the POS's own receipt instead).
        """
        now, now_local = self._now()
        presented = self.session.current(now)
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT * FROM receipts WHERE receipt_id = ?", (receipt_id,)
            ).fetchone()
            if row is None:
                raise errors.ReceiptNotFound(f"receipt {receipt_id} was never calculated")
            if row["status"] in DONE:
                return dict(json.loads(row["response"]))
            if row["status"] == "cancelled":
                raise errors.ReceiptCancelled(f"receipt {receipt_id} was cancelled")
            catalog = self._load_catalog(conn)
            program = catalog.program
            calc = json.loads(row["result"])
            internal = calc["_internal"]
            card = row["card"]
            till = self.settings.till
            accrued: dict[str, Any] = {"points": 0, "available_from": None}
            redeemed_points = row["redeemed"] if card else 0
            if card:
                self._sweep(conn, now, card)
                row = conn.execute(
                    "SELECT * FROM receipts WHERE receipt_id = ?", (receipt_id,)
                ).fetchone()
                if redeemed_points:
                    if row["hold_entry"]:
                        points.release(
                            conn,
                            till=self.settings.till,
                            card=card,
                            hold_entry=row["hold_entry"],
                            points=row["hold_points"],
                            receipt_id=receipt_id,
                            now=now,
                            note="confirmed",
                        )
                    else:
                        # The hold timed out: spend only if the points are still there.
                        bal = ledger.balance(conn, card, now)
                        if bal.redeemable < redeemed_points:
                            raise errors.InsufficientPoints(
                                f"the hold on {redeemed_points} points timed out and only "
                                f"{bal.redeemable} are spendable now; calculate again"
                            )
                    entry = ledger.append(
                        conn,
                        till=till,
                        card=card,
                        kind="redeem",
                        points=-redeemed_points,
                        at=now,
                        receipt_id=receipt_id,
                        ref=row["hold_entry"],
                    )
                    taken = 0
                    if row["hold_entry"]:
                        # Spend the very lots the hold set aside, even if one expired since.
                        taken = ledger.spend_reserved(
                            conn, redeem_entry=entry, hold_entry=row["hold_entry"]
                        )
                    if redeemed_points > taken:
                        ledger.consume(
                            conn, entry_id=entry, card=card, points=redeemed_points - taken, now=now
                        )
                if row["accrued"] > 0:
                    _, available = points.credit(
                        conn,
                        till=self.settings.till,
                        card=card,
                        kind="accrue",
                        points=row["accrued"],
                        now=now,
                        delay_days=program.accrual_delay_days,
                        expiry_days=program.expiry_days,
                        receipt_id=receipt_id,
                    )
                    accrued = {
                        "points": row["accrued"],
                        "available_from": local(available, self.settings.timezone)
                        .date()
                        .isoformat(),
                    }
                for pid, count in internal["stamps"].items():
                    receipts.set_stamps(conn, card=card, promotion_id=pid, count=count)
                if internal["birthday_points"] and internal.get("birthday_year"):
                    card_store.set_birthday_bonus(conn, card, internal["birthday_year"])
            receipts.record_uses(
                conn,
                receipt_id=receipt_id,
                card=card,
                day=now_local.date().isoformat(),
                uses=internal["uses"],
                budget=internal["budget"],
            )
            used = receipts.record_coupons(
                conn,
                receipt_id=receipt_id,
                card=card,
                now=now,
                used=internal["coupons_used"],
                issued=[p for p in calc["print"] if p["kind"] == "coupon"],
            )
            if used is not None:
                raise CouponAlreadyUsed(
                    f"coupon {used} was used on another receipt meanwhile; calculate again"
                )
            response = {
                "receipt_id": receipt_id,
                "status": "confirmed",
                "card": self._card_after(
                    conn, card, now=now, now_local=now_local, source=calc.get("_card_source")
                ),
                "accrued": accrued,
                "redeemed": {
                    "points": redeemed_points,
                    "amount": calc["redeemed"]["amount"] if card else "0.00",
                },
                "printed": calc["print"],
                "offline": self.offline,
            }
            conn.execute(
                "UPDATE receipts SET status = 'confirmed', hold_entry = NULL, hold_points = 0,"
                " hold_expires_at = NULL, paid = ?, fiscal_id = ?, response = ?,"
                " confirmed_at = ?, updated_at = ? WHERE receipt_id = ?",
                (
                    paid,
                    fiscal_id,
                    json.dumps(response, ensure_ascii=False),
                    ledger.ts(now),
                    ledger.ts(now),
                    receipt_id,
                ),
            )
        if paid is not None and paid != calc["total"]:
            logger.warning(
                "receipt %s confirmed with paid=%s but calculated total %s",
                receipt_id,
                paid,
                calc["total"],
            )
        if presented is not None and calc.get("_card_source") == "session":
            self.session.clear(presented)
        # The screen shows what was paid: the confirm response has no totals, the calculation
        # it committed has.
        self._announce(response | {k: calc[k] for k in ("subtotal", "discount", "total")})
        if print_items and response.get("printed") and self.print_sink is not None:
            # After the commit: a printer fault never undoes a sale (the sink only queues).
            self.print_sink(receipt_id, list(response["printed"]))
        return response

    def cancel(self, receipt_id: str) -> dict[str, Any]:
        """Abandon a calculated receipt and release its hold (idempotent)."""
        now = self.clock.now()
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT * FROM receipts WHERE receipt_id = ?", (receipt_id,)
            ).fetchone()
            if row is None:
                raise errors.ReceiptNotFound(f"receipt {receipt_id} was never calculated")
            if row["status"] in DONE:
                raise errors.ReceiptAlreadyConfirmed(
                    f"receipt {receipt_id} is confirmed; use refund to return it"
                )
            if row["status"] == "calculated":
                if row["hold_entry"]:
                    points.release(
                        conn,
                        till=self.settings.till,
                        card=row["card"],
                        hold_entry=row["hold_entry"],
                        points=row["hold_points"],
                        receipt_id=receipt_id,
                        now=now,
                        note="cancelled",
                    )
                conn.execute(
                    "UPDATE receipts SET status = 'cancelled', hold_entry = NULL,"
                    " hold_points = 0, hold_expires_at = NULL, updated_at = ?"
                    " WHERE receipt_id = ?",
                    (ledger.ts(now), receipt_id),
                )
        response = {"receipt_id": receipt_id, "status": "cancelled", "offline": self.offline}
        self._announce(response)
        return response

    # ------------------------------------------------------------ refund

    def refund(
        self, receipt_id: str, *, refund_id: str, lines: list[tuple[int, Decimal]] | None
    ) -> dict[str, Any]:
        """Return some or all of a confirmed receipt (idempotent by ``refund_id``)."""
        now, now_local = self._now()
        with self.db.write() as conn:
            done = conn.execute(
                "SELECT receipt_id, response FROM refunds WHERE refund_id = ?", (refund_id,)
            ).fetchone()
            if done is not None:
                if done["receipt_id"] != receipt_id:
                    raise errors.InvalidRequest(
                        f"refund_id {refund_id} was already used for another receipt"
                    )
                return dict(json.loads(done["response"]))
            row = conn.execute(
                "SELECT * FROM receipts WHERE receipt_id = ?", (receipt_id,)
            ).fetchone()
            if row is None or row["status"] == "calculated":
                raise errors.ReceiptNotFound(f"no confirmed receipt {receipt_id}")
            if row["status"] == "cancelled":
                raise errors.ReceiptCancelled(f"receipt {receipt_id} was cancelled")
            calc = json.loads(row["result"])
            request = json.loads(row["request"])
            qtys = {i: Decimal(str(ln["qty"])) for i, ln in enumerate(request["lines"])}
            paid_lines = [
                PaidLine(
                    index=x["index"], qty=qtys[x["index"]], paid=x["paid"], eligible=x["eligible"]
                )
                for x in calc["_internal"]["lines"]
            ]
            before = {
                r[0]: Decimal(r[1])
                for r in conn.execute(
                    "SELECT line_index, returned_qty FROM refund_lines WHERE receipt_id = ?",
                    (receipt_id,),
                )
            }
            after = dict(before)
            if lines is None:
                after = dict(qtys)
                if all(before.get(i, Decimal(0)) >= q for i, q in qtys.items()):
                    raise errors.RefundExceedsReceipt(
                        f"receipt {receipt_id} has already been returned in full"
                    )
            else:
                for index, qty in lines:
                    if index not in qtys:
                        raise errors.InvalidRequest(
                            f"receipt {receipt_id} has no line {index} (it has {len(qtys)} lines)"
                        )
                    after[index] = after.get(index, Decimal(0)) + qty
                    if after[index] > qtys[index]:
                        raise errors.RefundExceedsReceipt(
                            f"line {index}: {after[index]} returned in total but only "
                            f"{qtys[index]} were sold"
                        )
            prev = state(paid_lines, before, accrued=row["accrued"], redeemed=row["redeemed"])
            new = state(paid_lines, after, accrued=row["accrued"], redeemed=row["redeemed"])
            reversed_now = new.points_reversed - prev.points_reversed
            returned_now = new.points_returned - prev.points_returned
            amount_now = new.amount_returned - prev.amount_returned
            card = row["card"]
            till = self.settings.till
            if card and reversed_now > 0:
                points.reverse_accrual(
                    conn,
                    till=till,
                    card=card,
                    receipt_id=receipt_id,
                    refund_id=refund_id,
                    points=reversed_now,
                    now=now,
                )
            if card and returned_now > 0:
                points.return_redeemed(
                    conn,
                    till=till,
                    card=card,
                    receipt_id=receipt_id,
                    refund_id=refund_id,
                    points=returned_now,
                    now=now,
                )
            for index, qty in after.items():
                conn.execute(
                    "INSERT INTO refund_lines (receipt_id, line_index, returned_qty)"
                    " VALUES (?,?,?) ON CONFLICT (receipt_id, line_index)"
                    " DO UPDATE SET returned_qty = excluded.returned_qty",
                    (receipt_id, index, str(qty)),
                )
            conn.execute(
                "UPDATE receipts SET returned_kop = ?, updated_at = ?, status = ?"
                " WHERE receipt_id = ?",
                (
                    new.amount_returned,
                    ledger.ts(now),
                    "refunded"
                    if all(after.get(i, 0) >= q for i, q in qtys.items())
                    else "confirmed",
                    receipt_id,
                ),
            )
            if card:
                self._sweep(conn, now, card)
            response = {
                "receipt_id": receipt_id,
                "refund_id": refund_id,
                "status": "refunded",
                "points_reversed": reversed_now if card else 0,
                "points_returned": returned_now if card else 0,
                "amount_returned": fmt(amount_now),
                "card": self._card_after(conn, card, now=now, now_local=now_local, source=None),
                "offline": self.offline,
            }
            conn.execute(
                "INSERT INTO refunds (refund_id, receipt_id, request, response, created_at)"
                " VALUES (?,?,?,?,?)",
                (
                    refund_id,
                    receipt_id,
                    json.dumps({"lines": [[i, str(q)] for i, q in lines] if lines else None}),
                    json.dumps(response, ensure_ascii=False),
                    ledger.ts(now),
                ),
            )
        self._announce(response | {"status": "refunded"})
        return response

    # ------------------------------------------------------------ cards, session, status

    def _announce(self, response: dict[str, Any]) -> None:
        """Tell the cashier's screen what happened to a receipt (after it is committed)."""
        self.events.publish("receipt", responses.receipt_event(response))

    def card_lookup(self, raw: str) -> dict[str, Any]:
        """A card with its balance, hints and recent history."""
        now, now_local = self._now()
        with self.db.read() as conn:
            catalog = self._load_catalog(conn)
            rec = self._resolve_card(conn, raw, now=now, register=False)
            customer = self._customer(conn, rec, now=now, now_local=now_local, catalog=catalog)
            result = evaluate(
                catalog,
                m.Request(lines=(), customer=customer),
                m.Context(
                    now=now_local,
                    store=self.settings.store,
                    till=self.settings.till,
                    language=self.settings.language,
                ),
            )
            held = ledger.open_held(conn, rec.number)
            history = ledger.entries(conn, rec.number, limit=20)
        out = responses.card_out(customer, tier=result.tier, held=held, source="request")
        assert out is not None
        out["hints"] = [
            {"kind": h.kind, "text": h.text, "promotion": h.promotion} for h in result.hints
        ]
        out["history"] = [
            {
                "kind": e.kind,
                "points": e.points,
                "receipt_id": e.receipt_id,
                "created_at": e.created_at,
            }
            for e in history
        ]
        out["offline"] = self.offline
        return out

    def present(self, raw: str, *, source: str) -> dict[str, Any]:
        """A card presented at the till (reader, scanner or API): starts the card session."""
        now = self.clock.now()
        with self.db.read() as conn:
            try:
                rec = self._resolve_card(conn, raw, now=now, register=False) if raw else None
            except errors.CardNotFound:
                # A new plastic card the program registers on first use still starts the
                # session: the receipt it is used on registers it.
                program = self._load_catalog(conn).program
                ref = identify(raw, number_pattern=program.card_number_pattern)
                if not _registers_on_first_use(program, ref):
                    raise
                rec = None
        self.session.present(raw, source=source, at=now)
        if rec is not None:
            shown = self.card_lookup(rec.number)
            shown["source"] = source
            card = {k: v for k, v in shown.items() if k not in ("history", "hints")}
            self.events.publish("card", card | {"hints": shown["hints"]})
            self.events.publish(
                "hints", {"receipt_id": None, "card": card, "hints": shown["hints"]}
            )
        return {
            "card": mask(rec.number) if rec else None,
            "source": source,
            "expires_in": self.session.seconds,
        }

    def status(self) -> dict[str, Any]:
        with self.db.read() as conn:
            unsynced = conn.execute(
                "SELECT COUNT(*) FROM ledger WHERE synced_at IS NULL"
            ).fetchone()[0]
            row = conn.execute("SELECT version FROM program WHERE id = 1").fetchone()
            sync = syncstate.status(conn) if self.settings.chain else {}
        return {
            "unsynced_entries": unsynced,
            "promotions_version": row[0] if row else None,
            **sync,
        }
