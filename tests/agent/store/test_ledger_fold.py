"""Retention folds the settled ledger history of the cards whose receipts it forgets: the
data file stops growing, and every balance, hold, debt and lot is what it was, also for
everything the till does afterwards (checked against a copy of the till that never folds)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ANNA, CARDS, KEY, program
from tillgate.agent.api.schemas import CalculateIn
from tillgate.agent.store import ledger, ledgerfold, outbox
from tillgate.agent.store.db import Database
from tillgate.agent.usecases import TillService, TillSettings
from tillgate.agent.usecases.session import CardSession
from tillgate.core import errors
from tillgate.core.clock import ManualClock
from tillgate.core.rules.coupons import CouponSigner
from tillgate.core.rules.program import parse_program

START = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
LINES = [
    {"sku": "a", "qty": 2, "price": "100.00", "category": "grocery"},
    {"sku": "b", "qty": "0.500", "price": "300.00", "category": "grocery", "weighed": True},
]


def _till(
    path: Path, clock: ManualClock, *, chain: bool = False, expiry_days: int = 120
) -> TillService:
    svc = TillService(
        db=Database(path),
        settings=TillSettings(
            till="t1", store="s1", timezone="Europe/Moscow", chain=chain, retention_days=90
        ),
        clock=clock,
        session=CardSession(seconds=120),
        signer=CouponSigner(KEY),
    )
    svc.install_program(
        parse_program(program(accrual_delay_days=1, expiry_days=expiry_days, min_redeem_points=1)),
        version="v1",
    )
    return svc


@pytest.fixture
def till(tmp_path: Path) -> Iterator[tuple[TillService, ManualClock]]:
    clock = ManualClock(START)
    svc = _till(tmp_path / "t.sqlite3", clock)
    svc.import_cards(list(CARDS))
    yield svc, clock
    svc.db.close()


def _sale(svc: TillService, rid: str, *, redeem: Any = 0, confirm: bool = True) -> None:
    body = {"receipt_id": rid, "card": ANNA, "lines": LINES, "redeem": redeem}
    svc.calculate(CalculateIn.model_validate(body).to_request())
    if confirm:
        svc.confirm(rid)


def _history(svc: TillService, clock: ManualClock) -> None:
    """Accruals, pending and spendable lots, redemptions through holds, a cancelled hold,
    whole and partial refunds, and lots expiring, over ten weeks."""
    for week in range(10):
        _sale(svc, f"W{week}-1")
        # A few points at a time: lots end partly spent by receipts retention forgets.
        _sale(svc, f"W{week}-2", redeem=min(7, svc.card_lookup(ANNA)["redeemable"]))
        if week % 3 == 1:
            svc.refund(f"W{week}-2", refund_id=f"F{week}", lines=[(1, Decimal("0.250"))])
        if week % 4 == 2:
            _sale(svc, f"W{week}-3", redeem="max", confirm=False)
            svc.cancel(f"W{week}-3")
        if week % 5 == 4:
            svc.refund(f"W{week}-1", refund_id=f"G{week}", lines=None)
        clock.advance(timedelta(days=7))
        svc.sweep()


def _figures(svc: TillService, at: datetime) -> tuple[Any, ...]:
    with svc.db.read() as conn:
        lots = conn.execute(
            "SELECT l.id, l.remaining, l.available_from, l.expires_at, e.seq FROM lots l"
            " JOIN ledger e ON e.id = l.entry_id WHERE l.remaining != 0 ORDER BY l.id"
        ).fetchall()
        return (
            ledger.balance(conn, ANNA, at),
            ledger.debt(conn, ANNA),
            ledger.open_held(conn, ANNA),
            [tuple(r) for r in lots],
            outbox.last_seq(conn),
        )


def _count(svc: TillService, table: str) -> int:
    with svc.db.read() as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _copy(svc: TillService, path: Path) -> None:
    with svc.db.read() as conn, sqlite3.connect(path) as dest:
        conn.backup(dest)
    dest.close()


# 120 days: most lots are spent or expired when retention comes; 365: many still hold
# points, partly spent by receipts that are forgotten (their moves go to the carry).
@pytest.mark.parametrize("expiry_days", [120, 365])
def test_a_fold_keeps_every_figure_now_and_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expiry_days: int
) -> None:
    clock = ManualClock(START)
    svc = _till(tmp_path / "t.sqlite3", clock, expiry_days=expiry_days)
    svc.import_cards(list(CARDS))
    _history(svc, clock)
    clock.advance(timedelta(days=91))
    _sale(svc, "late", redeem="max")  # a receipt within retention: its entries stay
    svc.sweep()
    _copy(svc, tmp_path / "never.sqlite3")
    before = _figures(svc, clock.now())
    entries, moves = _count(svc, "ledger"), _count(svc, "lot_moves")

    assert svc.prune() > 0
    assert _figures(svc, clock.now()) == before
    assert _count(svc, "ledger") < entries / 2 and _count(svc, "lot_moves") < moves / 2
    with svc.db.read() as conn:
        carry = conn.execute("SELECT * FROM ledger WHERE note LIKE '%folded'").fetchall()
        carried = conn.execute(
            "SELECT COUNT(*) FROM lot_moves WHERE entry_id = ?", (carry[0]["id"],)
        ).fetchone()[0]
    assert len(carry) == 1 and carry[0]["kind"] == "adjust"
    assert carried > 0  # partly spent lots kept the moves of forgotten receipts

    # A till that never folded, from the same moment, the same receipts after.
    with monkeypatch.context() as m:
        m.setattr(ledgerfold, "fold_cards", lambda *a, **k: 0)
        other_clock = ManualClock(clock.now())
        never = _till(tmp_path / "never.sqlite3", other_clock, expiry_days=expiry_days)
        try:
            assert never.prune() > 0
            for svc_, clock_ in ((svc, clock), (never, other_clock)):
                _sale(svc_, "after-1", redeem="max")
                svc_.refund("late", refund_id="FL", lines=None)
                clock_.advance(timedelta(days=expiry_days + 10))  # every lot left expires
                svc_.sweep()
                _sale(svc_, "after-2", redeem="max")
            assert _figures(svc, clock.now())[:3] == _figures(never, other_clock.now())[:3]
            assert svc.card_lookup(ANNA)["balance"] == never.card_lookup(ANNA)["balance"]
        finally:
            never.db.close()
            svc.db.close()


def test_a_second_fold_folds_the_carry_too(till: tuple[TillService, ManualClock]) -> None:
    svc, clock = till
    _history(svc, clock)
    clock.advance(timedelta(days=91))
    svc.prune()
    _history(svc, clock)
    clock.advance(timedelta(days=91))
    before = _figures(svc, clock.now())
    assert svc.prune() > 0
    assert _figures(svc, clock.now()) == before
    with svc.db.read() as conn:
        left = conn.execute(
            "SELECT e.kind, l.remaining FROM ledger e LEFT JOIN lots l ON l.entry_id = e.id"
            " WHERE e.note IS NULL OR e.note NOT LIKE '%folded'"
        ).fetchall()
        carries = conn.execute("SELECT COUNT(*) FROM ledger WHERE note LIKE '%folded'")
        assert carries.fetchone()[0] == 1  # the first carry went into the second
    # What is left is the lots that still hold points (their order is their entries').
    assert left and all(r["kind"] == "accrue" and r["remaining"] > 0 for r in left)


def test_the_ledger_is_append_only_again_after_a_fold(
    till: tuple[TillService, ManualClock],
) -> None:
    svc, clock = till
    _history(svc, clock)
    clock.advance(timedelta(days=91))
    assert svc.prune() > 0
    with pytest.raises(errors.StoreError, match="append-only"), svc.db.write() as conn:
        conn.execute("DELETE FROM ledger")
    with pytest.raises(errors.StoreError, match="append-only"), svc.db.write() as conn:
        conn.execute("UPDATE ledger SET points = 1")


def test_an_open_hold_and_an_unsynced_entry_never_fold(tmp_path: Path) -> None:
    clock = ManualClock(START)
    svc = _till(tmp_path / "t.sqlite3", clock, chain=True)
    try:
        svc.import_cards(list(CARDS))
        _history(svc, clock)
        with svc.db.write() as conn:  # head office has everything so far
            outbox.mark_synced(
                conn, through_seq=outbox.last_seq(conn), coupons=[], cards=[], now=clock.now()
            )
            conn.execute("DELETE FROM facts")
        synced = outbox.last_seq(svc.db._conn)
        _sale(svc, "unsent")  # its entries wait for the next push
        clock.advance(timedelta(days=91))
        _sale(svc, "held", redeem="max", confirm=False)  # an open hold
        before = _figures(svc, clock.now())
        assert svc.prune() > 0
        assert _figures(svc, clock.now()) == before
        with svc.db.read() as conn:
            unsent = conn.execute(
                "SELECT COUNT(*) FROM ledger WHERE synced_at IS NULL AND seq > ?", (synced,)
            ).fetchone()[0]
            assert unsent >= 2  # the unsent sale's entries and the hold, all still there
            assert ledger.open_held(conn, ANNA) > 0
    finally:
        svc.db.close()


def test_a_hold_folds_only_with_its_release(tmp_path: Path) -> None:
    """Head office has included a hold but not yet its release (``through_seq`` between
    them): the hold must not fold alone, or the release would stand as a negative hold."""
    clock = ManualClock(START)
    svc = _till(tmp_path / "t.sqlite3", clock, chain=True)
    try:
        svc.import_cards(list(CARDS))
        for i in range(4):
            _sale(svc, f"A{i}")
            clock.advance(timedelta(days=2))
        _sale(svc, "M", redeem="max")  # their lots all spent: they settle
        clock.advance(timedelta(days=2))
        # A hold, then its release and the redemption.
        _sale(svc, "H", redeem=min(5, svc.card_lookup(ANNA)["redeemable"]))
        with svc.db.write() as conn:
            hold = conn.execute(
                "SELECT seq FROM ledger WHERE kind = 'hold' AND receipt_id = 'H'"
            ).fetchone()[0]
            outbox.mark_synced(
                conn, through_seq=outbox.last_seq(conn), coupons=[], cards=[], now=clock.now()
            )
            conn.execute("DELETE FROM facts")
            conn.execute(
                "INSERT INTO hq_cards (number, balance, pending, through_seq, updated_at)"
                " VALUES (?, 0, 0, ?, ?)",
                (ANNA, hold, "2026-01-01T00:00:00.000000+00:00"),
            )
        clock.advance(timedelta(days=91))
        before = _figures(svc, clock.now())
        assert svc.prune() > 0
        assert _figures(svc, clock.now()) == before
        with svc.db.read() as conn:
            kinds = {r[0] for r in conn.execute("SELECT kind FROM ledger WHERE receipt_id = 'H'")}
            assert {"hold", "release"} <= kinds and ledger.open_held(conn, ANNA) == 0
    finally:
        svc.db.close()
