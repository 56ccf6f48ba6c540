"""Property tests of the ledger: any sequence of POS calls keeps every invariant.

A hypothesis state machine drives the real till service over a real SQLite file:
calculate (with and without redemption), confirm, cancel, refund (partial and whole) and
the passing of time. After every step: each card's balance + pending - held equals the
sum of its ledger entries, and no receipt has returned more points than it took or
reversed more than it gave.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.conftest import ANNA, BORIS, CARDS, KEY, program
from tillgate.agent.api.schemas import CalculateIn
from tillgate.agent.store import ledger, sales
from tillgate.agent.store.db import Database
from tillgate.agent.usecases import TillService, TillSettings
from tillgate.agent.usecases.session import CardSession
from tillgate.core import errors
from tillgate.core.clock import ManualClock
from tillgate.core.rules.coupons import CouponSigner
from tillgate.core.rules.program import parse_program

PROMOS = [
    {
        "id": "dairy-10",
        "name": "d",
        "who": {"card": False},
        "when": {"items": {"categories": ["dairy"]}},
        "reward": {"kind": "percent", "value": 10, "on": "matching"},
    },
    {
        "id": "bonus",
        "name": "b",
        "reward": {"kind": "points", "value": 7},
        "when": {"min_total": "300.00"},
    },
    {
        "id": "m50",
        "name": "m",
        "stacking": "best",
        "who": {"card": False},
        "reward": {"kind": "amount", "value": "50.00", "on": "order"},
    },
]

prices = st.integers(min_value=1, max_value=50_000).map(lambda k: f"{k // 100}.{k % 100:02d}")
lines_st = st.lists(
    st.fixed_dictionaries(
        {
            "sku": st.sampled_from(["milk", "bread", "cig", "meat"]),
            "qty": st.integers(min_value=1, max_value=4),
            "price": prices,
            "category": st.sampled_from(["dairy", "bakery", "tobacco", "meat"]),
        }
    ),
    min_size=1,
    max_size=5,
)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.clock = ManualClock(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))
        self.db = Database(Path(self.dir.name) / "t.sqlite3")
        self.svc = TillService(
            db=self.db,
            settings=TillSettings(
                till="t1", store="s1", timezone="Europe/Moscow", hold_seconds=600
            ),
            clock=self.clock,
            session=CardSession(seconds=120),
            signer=CouponSigner(KEY),
        )
        self.svc.install_program(
            parse_program(
                program(*PROMOS, accrual_delay_days=1, expiry_days=30, welcome_points=20)
            ),
            version="v1",
        )
        from tillgate.agent.store.cards import CardRecord

        cards = [
            CardRecord(
                number=c.number, holder=c.holder, tier=c.tier, status=c.status, opening_balance=300
            )
            for c in CARDS
        ]
        self.svc.import_cards(cards)
        self.n = 0
        self.open: list[str] = []
        self.confirmed: dict[str, dict[str, Decimal]] = {}  # receipt → line qty left

    def teardown(self) -> None:
        self.db.close()
        self.dir.cleanup()

    @rule(
        lines=lines_st,
        card=st.sampled_from([ANNA, BORIS, None]),
        redeem=st.one_of(st.just("max"), st.integers(0, 400)),
    )
    def calculate(self, lines, card, redeem) -> None:
        self.n += 1
        rid = f"R{self.n}"
        req = CalculateIn.model_validate(
            {"receipt_id": rid, "lines": lines, "card": card, "redeem": redeem}
        )
        try:
            self.svc.calculate(req.to_request())
        except errors.InsufficientPoints:
            return
        self.open.append(rid)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def recalculate_open(self, data) -> None:
        rid = data.draw(st.sampled_from(self.open))
        lines = data.draw(lines_st)
        req = CalculateIn.model_validate({"receipt_id": rid, "lines": lines, "redeem": "max"})
        self.svc.calculate(req.to_request())

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def confirm(self, data) -> None:
        rid = data.draw(st.sampled_from(self.open))
        try:
            self.svc.confirm(rid)
        except errors.InsufficientPoints:
            return
        self.open.remove(rid)
        with self.db.read() as conn:
            row = sales.get(conn, rid)
        assert row is not None
        self.confirmed[rid] = {str(i): q for i, q in row.calc.qtys().items()}
        again = self.svc.confirm(rid)
        assert again["status"] == "confirmed"

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def cancel(self, data) -> None:
        rid = data.draw(st.sampled_from(self.open))
        self.svc.cancel(rid)
        self.open.remove(rid)

    @precondition(lambda self: self.confirmed)
    @rule(data=st.data(), whole=st.booleans())
    def refund(self, data, whole) -> None:
        rid = data.draw(st.sampled_from(sorted(self.confirmed)))
        left = self.confirmed[rid]
        self.n += 1
        if whole:
            lines = None
        else:
            idx = data.draw(st.sampled_from(sorted(left)))
            if left[idx] <= 0:
                return
            qty = data.draw(st.integers(1, int(left[idx])))
            lines = [(int(idx), Decimal(qty))]
        try:
            out = self.svc.refund(rid, refund_id=f"F{self.n}", lines=lines)
        except errors.RefundExceedsReceipt:
            return
        assert out["points_reversed"] >= 0 and out["points_returned"] >= 0
        if lines is None:
            self.confirmed[rid] = {k: Decimal(0) for k in left}
        else:
            left[str(lines[0][0])] -= lines[0][1]

    @rule(hours=st.integers(1, 24 * 20))
    def time_passes(self, hours) -> None:
        self.clock.advance(hours=hours)
        self.svc.sweep()

    @invariant()
    def balances_are_sums_of_entries(self) -> None:
        now = self.clock.now()
        with self.db.write() as conn:
            ledger.expire_due(conn, till="t1", now=now)
            for card in (ANNA, BORIS):
                b = ledger.balance(conn, card, now)
                assert b.total == b.balance + b.pending - b.held
                lots = conn.execute(
                    "SELECT COALESCE(SUM(remaining),0) FROM lots WHERE card=?", (card,)
                ).fetchone()[0]
                assert lots >= 0 or b.balance < 0

    @invariant()
    def refunds_never_over_return(self) -> None:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT r.receipt_id, r.accrued, r.redeemed,"
                " COALESCE((SELECT -SUM(points) FROM ledger WHERE receipt_id = r.receipt_id"
                "   AND kind = 'reverse'), 0),"
                " COALESCE((SELECT SUM(points) FROM ledger WHERE receipt_id = r.receipt_id"
                "   AND kind = 'return'), 0),"
                " COALESCE((SELECT SUM(points) FROM ledger WHERE receipt_id = r.receipt_id"
                "   AND kind = 'accrue'), 0),"
                " COALESCE((SELECT -SUM(points) FROM ledger WHERE receipt_id = r.receipt_id"
                "   AND kind = 'redeem'), 0)"
                " FROM receipts r WHERE status IN ('confirmed', 'refunded')"
            ).fetchall()
        for rid, _acc, _red, reversed_, returned, accrued, redeemed in rows:
            assert 0 <= reversed_ <= accrued, rid
            assert 0 <= returned <= redeemed, rid
            if rid in self.confirmed and not any(self.confirmed[rid].values()):
                # returned in full: exactly everything comes back, whatever the steps
                assert (reversed_, returned) == (accrued, redeemed), rid

    @invariant()
    def holds_resolve_once(self) -> None:
        with self.db.read() as conn:
            dup = conn.execute(
                "SELECT ref, COUNT(*) FROM ledger WHERE kind='release'"
                " GROUP BY ref HAVING COUNT(*) > 1"
            ).fetchall()
            assert not dup


LedgerMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedger = LedgerMachine.TestCase
