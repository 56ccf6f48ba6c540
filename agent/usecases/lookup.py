"""Cards at the till: look one up, present one (the card session), and the till's status."""

from __future__ import annotations

import sqlite3
from typing import Any

from tillgate.core import errors
from tillgate.core.cards import identify, mask
from tillgate.core.rules import model as m
from tillgate.core.rules.engine import evaluate

from ..store import ledger, outbox, productmisses, products, syncstate
from ..store import program as store_program
from . import responses
from .context import TillContext, registers_on_first_use


def card_lookup(ctx: TillContext, raw: str) -> dict[str, Any]:
    """A card with its balance, hints and recent history."""
    now, now_local = ctx.now()
    with ctx.db.read() as conn:
        catalog = ctx.catalog_in(conn)
        rec = ctx.resolve_card(conn, raw, now=now, register=False)
        customer = ctx.customer(conn, rec, now=now, now_local=now_local, catalog=catalog)
        result = evaluate(
            catalog,
            m.Request(lines=(), customer=customer),
            m.Context(
                now=now_local,
                store=ctx.settings.store,
                till=ctx.settings.till,
                language=ctx.settings.language,
            ),
        )
        held = ledger.held(conn, rec.number)
        history = ledger.entries(conn, rec.number, limit=20)
    out = responses.card_out(
        customer,
        tier=result.tier,
        held=held,
        source="request",
        program=catalog.program,
        language=ctx.settings.language,
    )
    assert out is not None
    out["hints"] = [
        {"kind": h.kind, "text": h.text, "promotion": h.promotion} for h in result.hints
    ]
    out["history"] = [
        {"kind": e.kind, "points": e.points, "receipt_id": e.receipt_id, "created_at": e.created_at}
        for e in history
    ]
    out["offline"] = ctx.offline
    return out


def present(ctx: TillContext, raw: str, *, source: str) -> dict[str, Any]:
    """A card presented at the till (reader, scanner or API): starts the card session."""
    now = ctx.clock.now()
    with ctx.db.read() as conn:
        try:
            rec = ctx.resolve_card(conn, raw, now=now, register=False) if raw else None
        except errors.CardNotFound:
            # A new plastic card the program registers on first use still starts the
            # session: the receipt it is used on registers it.
            program = ctx.catalog_in(conn).program
            ref = identify(raw, number_pattern=program.card_number_pattern)
            if not registers_on_first_use(program, ref):
                raise
            rec = None
    ctx.session.present(raw, source=source, at=now)
    if rec is not None:
        shown = card_lookup(ctx, rec.number)
        shown["source"] = source
        card = {k: v for k, v in shown.items() if k not in ("history", "hints")}
        ctx.events.publish("card", card | {"hints": shown["hints"]})
        ctx.events.publish("hints", {"receipt_id": None, "card": card, "hints": shown["hints"]})
    return {
        "card": mask(rec.number) if rec else None,
        "source": source,
        "expires_in": ctx.session.seconds,
    }


def status(ctx: TillContext) -> dict[str, Any]:
    """The till's part of ``/v1/status``: sync backlog, program version, sync state."""
    with ctx.db.read() as conn:
        unsynced = outbox.backlog(conn)
        version = store_program.version(conn)
        sync = syncstate.status(conn) if ctx.settings.chain else {}
        goods = _products(conn)
    return {
        "unsynced_entries": unsynced,
        "promotions_version": version,
        # A standalone till adds its program file, and why that file is not in force.
        "program": {"version": version},
        **sync,
        "products": goods,
    }


def _products(conn: sqlite3.Connection) -> dict[str, Any]:
    """The product list in force and the line names it (and the rules) still miss."""
    version = products.SqliteProducts(conn).version
    return {
        "version": version,
        "count": products.count(conn),
        **productmisses.counts(conn, version),
    }
