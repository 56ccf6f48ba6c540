"""What every use case of the till works with: its collaborators and a few shared steps.

A :class:`TillContext` holds the data file, the settings, the clock, the card session,
the coupon signer, the event bus and the ports (connectivity, print queue, device hints),
all handed in when it is made. The steps here are the ones several use cases share:
reading the program in force, resolving a card, describing a customer to the engine,
sweeping timed-out holds and expired lots, and shaping the card a response shows.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from tillgate.core import errors
from tillgate.core.cardfile import CardRecord
from tillgate.core.cards import CardRef, display_name, identify, mask
from tillgate.core.clock import Clock, local
from tillgate.core.rules import model as m
from tillgate.core.rules.coupons import CouponSigner
from tillgate.core.rules.engine import Catalog, effective_tier
from tillgate.core.rules.program import Program, ProgramFile

from ..store import cards as card_store
from ..store import ledger, points
from ..store import program as store_program
from ..store.db import Database
from . import responses
from .events import EventBus
from .ports import (
    AlwaysOnline,
    Connectivity,
    DeviceHints,
    NoDevices,
    NoPrinter,
    NoReservations,
    PrintQueue,
    Reservations,
)
from .session import CardSession

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
    retention_days: int = 90  # receipts kept this long (store/retention.py)


def registers_on_first_use(program: Program, ref: CardRef) -> bool:
    """Whether an unknown card becomes a new card of the program when it is used."""
    return ref.kind == "number" and program.register_unknown_cards


class _Catalogs:
    """The catalog of the program in force, rebuilt only when its version changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.catalog: Catalog | None = None
        self.version: str | None = None

    def put(self, catalog: Catalog, version: str) -> None:
        with self._lock:
            self.catalog, self.version = catalog, version

    def load(self, conn: sqlite3.Connection) -> Catalog:
        # Called several times per POS request: read the program body only when its
        # version changed, not on every call.
        version = store_program.version(conn)
        if version is None:
            raise errors.StoreError("no loyalty program is loaded on this till")
        with self._lock:
            if self.catalog is not None and self.version == version:
                return self.catalog
        body = store_program.body(conn)
        assert body is not None
        catalog = Catalog.build(ProgramFile.model_validate_json(body))
        self.put(catalog, version)
        return catalog


@dataclass(kw_only=True, eq=False)
class TillContext:
    """The till's collaborators, handed in at construction, and the shared steps."""

    db: Database
    settings: TillSettings
    clock: Clock
    session: CardSession
    signer: CouponSigner
    events: EventBus = field(default_factory=EventBus)
    connectivity: Connectivity = field(default_factory=AlwaysOnline)
    printer: PrintQueue = field(default_factory=NoPrinter)
    devices: DeviceHints = field(default_factory=NoDevices)
    reservations: Reservations = field(default_factory=NoReservations)
    catalogs: _Catalogs = field(default_factory=_Catalogs, repr=False)

    @property
    def offline(self) -> bool:
        return self.connectivity.offline

    @property
    def program_version(self) -> str | None:
        return self.catalogs.version

    def now(self) -> tuple[datetime, datetime]:
        """The instant (UTC) and the same instant on the till's wall clock."""
        now = self.clock.now()
        return now, local(now, self.settings.timezone)

    def catalog_in(self, conn: sqlite3.Connection) -> Catalog:
        return self.catalogs.load(conn)

    def sweep_in(self, conn: sqlite3.Connection, now: datetime, card: str | None) -> frozenset[str]:
        """Release timed-out holds; expire lots (a chain's till leaves expiry to HQ). The
        receipts whose holds were released."""
        return points.sweep(
            conn, till=self.settings.till, now=now, card=card, expire=not self.settings.chain
        )

    def customer(
        self,
        conn: sqlite3.Connection,
        rec: CardRecord,
        *,
        now: datetime,
        now_local: datetime,
        catalog: Catalog,
        own_hold: int = 0,
    ) -> m.Customer:
        """What the engine knows of the card (``own_hold``: this receipt's own hold).

        The holder is named by the display name (``Анна И.``) in every response, hint and
        event, whatever the card row holds (a standalone shop's file has the full name).
        """
        return points.customer(
            conn,
            replace(rec, holder=display_name(rec.holder)),
            now=now,
            now_local=now_local,
            window_days=catalog.program.window_days,
            own_hold=own_hold,
        )

    def resolve_card(
        self,
        conn: sqlite3.Connection,
        raw: str,
        *,
        now: datetime,
        register: bool,
        catalog: Catalog | None = None,
    ) -> CardRecord:
        """The card ``raw`` names (number, track, QR, phone); may register a new one.
        ``catalog``: the one in force, when the caller has it already."""
        program = (catalog or self.catalog_in(conn)).program
        ref = identify(raw, number_pattern=program.card_number_pattern)
        if ref.kind == "phone":
            rec = card_store.find(conn, phone=ref.value)
        else:
            rec = card_store.find(conn, number=ref.value)
        if rec is None:
            if register and registers_on_first_use(program, ref):
                rec = CardRecord(number=ref.value, status="new")
                card_store.upsert(conn, rec, now=now, origin="till")
                logger.info("card %s registered on first use", mask(ref.value))
                return rec
            raise errors.CardNotFound(f"card {mask(ref.value)} is not known to this till")
        return rec

    def card_after(
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
        catalog = self.catalog_in(conn)
        rec = card_store.find(conn, number=card)
        if rec is None:  # pragma: no cover - a card with entries is never deleted
            raise errors.StoreError(f"card {mask(card)} has ledger entries but no card record")
        customer = self.customer(conn, rec, now=now, now_local=now_local, catalog=catalog)
        tier = effective_tier(catalog.program, rec.tier, customer.rolling_spend)
        return responses.card_out(
            customer,
            tier=tier,
            held=ledger.held(conn, card),
            source=source,
            program=catalog.program,
            language=self.settings.language,
        )

    def announce(self, response: dict[str, Any]) -> None:
        """Tell the cashier's screen what happened to a receipt (after it is committed)."""
        self.events.publish("receipt", responses.receipt_event(response))
