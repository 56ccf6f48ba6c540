"""Retention and the compact receipt: old synced receipts go, balances and lots stay, a
refund of a receipt that is gone is refused clearly; the WAL is checkpointed to nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import ANNA, CARDS, KEY, program
from tillgate.agent.api.schemas import CalculateIn
from tillgate.agent.store import facts, ledger, outbox, retention
from tillgate.agent.store.db import Database
from tillgate.agent.usecases import TillService, TillSettings
from tillgate.agent.usecases.session import CardSession
from tillgate.core import errors
from tillgate.core.clock import ManualClock
from tillgate.core.rules.coupons import CouponSigner
from tillgate.core.rules.program import parse_program

LINES = [
    {"sku": "a", "qty": 2, "price": "100.00", "category": "grocery"},
    {"sku": "b", "qty": "0.500", "price": "300.00", "category": "grocery", "weighed": True},
]


def _till(tmp_path: Path, *, chain: bool) -> tuple[TillService, ManualClock]:
    clock = ManualClock(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))
    svc = TillService(
        db=Database(tmp_path / "t.sqlite3"),
        settings=TillSettings(
            till="t1", store="s1", timezone="Europe/Moscow", chain=chain, retention_days=90
        ),
        clock=clock,
        session=CardSession(seconds=120),
        signer=CouponSigner(KEY),
    )
    svc.install_program(parse_program(program(accrual_delay_days=1, expiry_days=365)), version="v1")
    svc.import_cards(list(CARDS))
    return svc, clock


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[tuple[TillService, ManualClock]]:
    svc, clock = _till(tmp_path, chain=False)
    yield svc, clock
    svc.db.close()


def _sale(svc: TillService, rid: str) -> dict[str, object]:
    req = CalculateIn.model_validate({"receipt_id": rid, "card": ANNA, "lines": LINES})
    svc.calculate(req.to_request())
    return svc.confirm(rid)


def _state(svc: TillService, now: datetime) -> tuple[object, ...]:
    with svc.db.read() as conn:
        lots = conn.execute(
            "SELECT id, remaining, available_from, expires_at FROM lots ORDER BY id"
        ).fetchall()
        return ledger.balance(conn, ANNA, now), [tuple(r) for r in lots]


def test_a_confirmed_receipt_keeps_only_its_compact_record(standalone) -> None:
    svc, _ = standalone
    _sale(svc, "R1")
    with svc.db.read() as conn:
        request, result = conn.execute("SELECT request, result FROM receipts").fetchone()
    record = json.loads(result)
    assert request == "" and record["v"] == 2 and "facts" not in record
    assert record["lines"][1][4] is True  # weighed, as the POS said: a refund needs it
    # A weighed line returns in part, a unit line only whole (the flag came through).
    assert svc.refund("R1", refund_id="F1", lines=[(1, Decimal("0.250"))])["status"] == "refunded"
    with pytest.raises(errors.FractionalQuantity):
        svc.refund("R1", refund_id="F2", lines=[(0, Decimal("0.5"))])


def test_old_receipts_go_and_balances_stay(standalone) -> None:
    svc, clock = standalone
    first = _sale(svc, "R1")
    svc.refund("R1", refund_id="F1", lines=[(0, Decimal(1))])
    clock.advance(timedelta(days=91))
    _sale(svc, "R2")
    before = _state(svc, clock.now())
    assert svc.prune() == 1
    assert _state(svc, clock.now()) == before  # balance, pending, every lot with its dates
    with svc.db.read() as conn:
        left = [r[0] for r in conn.execute("SELECT receipt_id FROM receipts")]
        refunds = conn.execute("SELECT COUNT(*) FROM refunds").fetchone()[0]
        kept = conn.execute("SELECT id FROM facts ORDER BY id").fetchall()
    assert left == ["R2"] and refunds == 0 and [r[0] for r in kept] == ["sale:R2"]
    with pytest.raises(errors.ReceiptNotFound, match="retention_days"):
        svc.refund("R1", refund_id="F9", lines=None)
    # The receipt within retention still refunds, and its confirm still answers the same.
    assert svc.refund("R2", refund_id="F2", lines=None)["status"] == "refunded"
    assert svc.prune() == 0
    assert first["status"] == "confirmed"


def test_a_chain_till_keeps_what_head_office_has_not(tmp_path: Path) -> None:
    svc, clock = _till(tmp_path, chain=True)
    try:
        _sale(svc, "R1")
        clock.advance(timedelta(days=91))
        assert svc.prune() == 0  # old, but its entries and facts are not at head office
        with svc.db.write() as conn:
            outbox.mark_synced(
                conn, through_seq=outbox.last_seq(conn), coupons=[], cards=[], now=clock.now()
            )
            assert svc.prune() == 0  # the facts still wait
            sent = [f["id"] for f in facts.unsynced(conn, through_seq=10**9, limit=100)]
            facts.mark_synced(conn, sent, now=clock.now())
            assert facts.backlog(conn) == 0  # a synced fact is gone from the till
        assert svc.prune() == 1
        with svc.db.read() as conn:
            assert retention.pruned_before(conn) == clock.now() - timedelta(days=90)
    finally:
        svc.db.close()


def test_a_checkpoint_empties_the_wal(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.sqlite3")
    try:
        with db.write() as conn:
            conn.execute("CREATE TABLE big (x BLOB)")
            conn.executemany("INSERT INTO big VALUES (?)", [(b"x" * 4000,) for _ in range(500)])
        wal = tmp_path / "t.sqlite3-wal"
        assert wal.stat().st_size > 1_000_000
        frames, done = db.checkpoint()
        assert frames == done > 0  # copied while nobody else held the file
        db.checkpoint(truncate=True)
        assert wal.stat().st_size == 0
    finally:
        db.close()
