"""Receipt facts at head office: every till's confirmed receipts and refunds, stored once.

A till pushes the facts of a receipt (:mod:`tillgate.core.rules.facts`: the engine's
inputs and outcome, what was paid, points moved) in the same push as, or a push after,
the receipt's ledger entries. They are stored under ``(till, id)`` — ``sale:<receipt>`` or
``refund:<refund>`` — so a resend after a lost reply stores nothing twice. Analytics and
re-pricing read them from here, and a fact stored for the first time adds to the
chain-wide counters (:mod:`tillgate.hq.counters`) in the same transaction. A body is stored
as the JSON text the till sent (:attr:`tillgate.hq.wire.FactIn.text`), not encoded again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from . import counters
from .db import Tx
from .folds import among, parts
from .wire import FactIn

logger = logging.getLogger(__name__)
MAX_FACT_BYTES = 256 << 10  # one receipt's facts (1000 lines of inputs and outcome fit)


def store(
    tx: Tx, *, till: str, facts: Sequence[FactIn], now: datetime
) -> tuple[int, counters.Counted]:
    """Store the facts head office does not have yet and count them; returns how many,
    and what they counted (the caller moves it in the change feed: :class:`Counted`)."""
    new = insert_new(tx, till=till, facts=facts, now=now)
    return len(new), counters.count(tx, till=till, facts=new)


def insert_new(tx: Tx, *, till: str, facts: Sequence[FactIn], now: datetime) -> list[FactIn]:
    """Store the facts head office does not have yet; returns those it stored now.

    One look-up of which it has and one insert of the others, whatever their number: the
    push holds its till's row locked, so no other transaction stores this till's facts
    in between (and ``ON CONFLICT DO NOTHING`` would still keep each one once).
    """
    have: set[str] = set()
    ids = sorted({f.id for f in facts})
    for part in parts(tx, ids):
        named, args = among(tx, "id", part)
        have |= {
            r["id"]
            for r in tx.all(
                f"SELECT id FROM receipt_facts WHERE till = ? AND {named}", [till, *args]
            )
        }
    new: list[FactIn] = []
    rows = []
    received = now.isoformat()
    for fact in facts:
        if fact.id in have:
            continue
        have.add(fact.id)  # a fact sent twice in one push is stored once
        body = fact.text  # as the till sent it: no second encoding of 2 MB a push
        if len(body) > MAX_FACT_BYTES:
            # Kept as a marker, never refused: a refusal would block the till's push for good.
            logger.warning("till %s: facts %s over %d bytes not kept", till, fact.id, len(body))
            body = json.dumps({"dropped": f"over {MAX_FACT_BYTES} bytes"})
        card = fact.body.get("card")
        rows.append(
            (
                till,
                fact.id,
                fact.kind,
                fact.receipt_id,
                card if isinstance(card, str) else None,
                fact.after_seq,
                body,
                fact.created_at.isoformat(),
                received,
            )
        )
        new.append(fact)
    tx.values(
        "INSERT INTO receipt_facts (till, id, kind, receipt_id, card, after_seq, body,"
        " created_at, received_at) VALUES ? ON CONFLICT (till, id) DO NOTHING",
        rows,
        ("text",) * 5 + ("bigint",) + ("text",) * 3,
    )
    return new


def of_till(tx: Tx, till: str, *, limit: int = 1000) -> list[dict[str, Any]]:
    """A till's facts in the order they were made (oldest first)."""
    rows = tx.all(
        "SELECT id, kind, receipt_id, card, after_seq, body, created_at FROM receipt_facts"
        " WHERE till = ? ORDER BY after_seq, created_at, id LIMIT ?",
        (till, limit),
    )
    return [{**r, "body": json.loads(r["body"])} for r in rows]
