"""Retention and the compact receipt: old synced receipts go, balances and lots stay, a
refund of a receipt that is gone is refused clearly; the WAL is checkpointed to nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

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


def _till(
    tmp_path: Path, *, chain: bool, promotions: tuple[dict[str, Any], ...] = (), **program_keys: Any
) -> tuple[TillService, ManualClock]:
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
    body = program(*promotions, accrual_delay_days=1, expiry_days=365, **program_keys)
    svc.install_program(parse_program(body), version="v1")
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


def _counted(svc: TillService, rid: str) -> dict[str, Any]:
    """A calculate of a fixed basket on the card (then cancelled): what the card's counts
    decide (tier, welcome bonus, first-purchase and per-card limits), bar the receipt id."""
    req = CalculateIn.model_validate({"receipt_id": rid, "card": ANNA, "lines": LINES})
    out = svc.calculate(req.to_request())
    svc.cancel(rid)
    return {k: v for k, v in out.items() if k != "receipt_id"}


def _budget(svc: TillService) -> tuple[dict[str, int], dict[str, int]]:
    """Each budget's points used: the running total, and summed over the uses anew."""
    with svc.db.read() as conn:
        kept = dict(conn.execute("SELECT promotion_id, points FROM budget_points").fetchall())
        summed = conn.execute(
            "SELECT promotion_id, SUM(points) FROM promotion_uses WHERE points != 0"
            " GROUP BY promotion_id"
        ).fetchall()
    return {k: v for k, v in kept.items() if v}, dict(summed)


def test_forgotten_receipts_still_count_for_tiers_limits_and_first_purchases(
    tmp_path: Path,
) -> None:
    """A card's visits, its spend in the program's rolling window (365 days, past the 90
    of retention) and its uses of each promotion are what the rules count: retention
    keeps them when it forgets the receipts. (It took them away: a gold card fell to
    silver, and a card's first purchase and welcome bonus came round again.)"""
    promos = (
        {
            "id": "hello",
            "name": "Первая покупка",
            "who": {"card": True, "first_purchase": True},
            "reward": {"kind": "percent", "value": 5, "on": "order"},
        },
        {
            "id": "twice",
            "name": "Дважды на карту",
            "reward": {"kind": "amount", "value": "10.00", "on": "order"},
            "limits": {"per_card_total": 2, "budget_points": 0},
        },
        {
            "id": "extra",
            "name": "Бонус из бюджета",
            "reward": {"kind": "points", "value": 7},
            "limits": {"per_receipt": 1, "budget_points": 100},
        },
    )
    svc, clock = _till(tmp_path, chain=False, promotions=promos, welcome_points=50)
    try:
        big = [{"sku": "tv", "qty": 1, "price": "25000.00", "category": "electronics"}]
        for rid, lines in (("R1", big), ("R2", LINES)):
            req = CalculateIn.model_validate({"receipt_id": rid, "card": ANNA, "lines": lines})
            svc.calculate(req.to_request())
            svc.confirm(rid)
        clock.advance(timedelta(days=91))
        before = _counted(svc, "R-before")
        # Gold by the first sale's spend; no welcome bonus (350 × 5 % and the budget's 7);
        # first purchase and the limit of two used up.
        assert (before["card"]["tier"], before["accrued"]["points"]) == ("gold", 24)
        assert [p["id"] for p in before["promotions"]] == ["extra"]
        budget = _budget(svc)
        assert budget == ({"extra": 14}, {"extra": 14})  # two sales' uses, in and out of SQL
        assert svc.prune() == 2
        assert _counted(svc, "R-after") == before
        assert _budget(svc) == budget
        with svc.db.read() as conn:  # the forgotten uses are one row a promotion
            folded = conn.execute(
                "SELECT promotion_id, receipt_id, uses FROM promotion_uses ORDER BY 1"
            ).fetchall()
        assert [tuple(r) for r in folded] == [
            ("extra", f"#{ANNA}", 2),
            ("hello", f"#{ANNA}", 1),
            ("twice", f"#{ANNA}", 2),
        ]
        # A later sale forgotten in turn adds to the folded rows.
        req = CalculateIn.model_validate({"receipt_id": "R3", "card": ANNA, "lines": LINES})
        svc.calculate(req.to_request())
        svc.confirm("R3")
        clock.advance(timedelta(days=91))
        assert svc.prune() == 3  # with the two calculates above, cancelled
        assert _budget(svc) == ({"extra": 21}, {"extra": 21})
        with svc.db.read() as conn:
            days = conn.execute("SELECT * FROM card_days ORDER BY day").fetchall()
            uses = conn.execute("SELECT SUM(uses) FROM promotion_uses").fetchone()[0]
        # Sold at 09:00 in Moscow: the local days.
        assert [tuple(r) for r in days] == [
            # R1: 25,000.00 less 5 % (first purchase) less 10.00; R2: 350.00 less 10.00.
            (ANNA, "2026-11-23", 2, 2_374_000 + 34_000),
            (ANNA, "2027-02-22", 1, 35_000),
        ]
        assert uses == 6
    finally:
        svc.db.close()
