"""HQ's fold of a card's entries: FIFO lots, refunds, debt, expiry — and its invariant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tillgate.hq.fold import CardState, FoldEntry, FoldState, fold, replay, state_at

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def e(kind: str, points: int, day: float = 0, **kw: Any) -> FoldEntry:
    kw.setdefault("id", f"{kind}{points}@{day}")
    kw.setdefault("till", "t1")
    return FoldEntry(kind=kind, points=points, created_at=T0 + day * DAY, **kw)


def accrue(points: int, day: float = 0, *, delay: int = 0, expiry: int | None = None, **kw: Any):
    return e(
        "accrue",
        points,
        day,
        available_from=T0 + (day + delay) * DAY,
        expires_at=T0 + (day + delay + expiry) * DAY if expiry else None,
        **kw,
    )


def test_spending_takes_the_lot_that_expires_first() -> None:
    late = accrue(100, expiry=300, id="late")
    soon = accrue(100, expiry=100, id="soon")
    state = fold([late, soon, e("redeem", -120, 1)], T0 + 2 * DAY)
    assert state.balance == 80
    assert [(lot.source, lot.points) for lot in state.lots] == [("late", 80)]


def test_pending_points_are_not_spendable_but_a_reversal_takes_them() -> None:
    pending = accrue(100, delay=14, id="a", receipt_id="R-1")
    state = fold([pending, e("redeem", -30, 1)], T0 + 2 * DAY)
    assert (state.balance, state.pending, state.debt) == (-30, 100, 30)
    state = fold([pending, e("reverse", -40, 1, receipt_id="R-1")], T0 + 2 * DAY)
    assert (state.balance, state.pending) == (0, 60)


def test_a_reversal_takes_its_own_receipts_lot_first() -> None:
    entries = [
        accrue(50, expiry=10, id="other", receipt_id="R-0"),
        accrue(50, expiry=100, id="own", receipt_id="R-1"),
        e("reverse", -20, 1, receipt_id="R-1"),
    ]
    state = fold(entries, T0 + 2 * DAY)
    assert {lot.source: lot.points for lot in state.lots} == {"other": 50, "own": 30}


def test_receipts_of_different_tills_do_not_mix() -> None:
    entries = [
        accrue(50, id="mine", receipt_id="R-1", till="t1"),
        accrue(50, id="theirs", receipt_id="R-1", till="t2", expiry=5),
        e("reverse", -20, 1, receipt_id="R-1", till="t2"),
    ]
    state = fold(entries, T0 + 2 * DAY)
    assert {lot.source: lot.points for lot in state.lots} == {"mine": 50, "theirs": 30}


def test_a_return_refills_the_redeemed_lots_with_their_expiry() -> None:
    entries = [
        accrue(100, expiry=30, id="a"),
        accrue(100, expiry=60, id="b"),
        e("redeem", -150, 1, receipt_id="R-1"),
        e("return", 60, 2, receipt_id="R-1"),
        e("return", 100, 3, receipt_id="R-1"),  # more than is still owed: a lasting lot
    ]
    state = fold(entries, T0 + 4 * DAY)
    assert state.balance == 210
    by = {lot.source: (lot.points, lot.expires_at) for lot in state.lots}
    assert by["a"] == (100, T0 + 30 * DAY) and by["b"] == (100, T0 + 60 * DAY)
    assert by["return100@3"] == (10, None)


def test_release_puts_back_what_its_hold_took() -> None:
    entries = [
        accrue(100, expiry=30, id="a"),
        e("hold", -70, 1, id="h"),
        e("release", 70, 1.5, ref="h"),
        e("redeem", -70, 1.5, ref="h"),
    ]
    counted = fold(entries, T0 + 2 * DAY, count_holds=True)
    skipped = fold(entries, T0 + 2 * DAY)
    assert counted.balance == skipped.balance == 30
    # An open hold reserves points only when holds are counted.
    assert fold(entries[:2], T0 + 2 * DAY, count_holds=True).balance == 30
    assert fold(entries[:2], T0 + 2 * DAY).balance == 100


def test_debt_is_paid_by_the_next_points() -> None:
    entries = [accrue(10), e("redeem", -50, 1), accrue(100, 2, expiry=5, id="new")]
    state = fold(entries, T0 + 3 * DAY)
    assert (state.balance, state.debt) == (60, 0)
    # So the points that paid the debt never expire.
    later = fold(entries, T0 + 30 * DAY)
    assert [(lot.points, lot.source) for lot in later.expired_due] == [(60, "new")]


def test_expired_lots_are_due_and_an_expire_entry_writes_them_off() -> None:
    entries = [accrue(100, expiry=10, id="a"), accrue(5, id="b")]
    state = fold(entries, T0 + 11 * DAY)
    assert (state.balance, [lot.source for lot in state.expired_due]) == (5, ["a"])
    assert state.next_expiry is None
    written = [*entries, e("expire", -100, 11, ref="a", till="hq")]
    after = fold(written, T0 + 11 * DAY)
    assert (after.balance, after.expired_due) == (5, ())


def test_a_lot_that_expired_before_a_debit_is_not_spent() -> None:
    entries = [accrue(100, expiry=10), e("redeem", -30, 12)]
    state = fold(entries, T0 + 13 * DAY)
    assert (state.balance, state.debt, sum(lot.points for lot in state.expired_due)) == (
        -30,
        30,
        100,
    )


# ---------------------------------------------------------------- properties

KINDS = ["accrue", "adjust", "redeem", "hold", "release", "reverse", "return", "expire"]


@st.composite
def ledgers(draw: st.DrawFn) -> list[FoldEntry]:
    n = draw(st.integers(min_value=0, max_value=30))
    out: list[FoldEntry] = []
    for i in range(n):
        kind = draw(st.sampled_from(KINDS))
        day = draw(st.integers(min_value=0, max_value=60))
        till = draw(st.sampled_from(["t1", "t2", "hq"]))
        receipt = draw(st.sampled_from([None, "R-1", "R-2"]))
        ref = draw(st.sampled_from([None, *[x.id for x in out[-5:]]]))
        magnitude = draw(st.integers(min_value=0, max_value=500))
        sign = 1 if kind in ("accrue", "release", "return") else -1
        if kind == "adjust":
            sign = draw(st.sampled_from([1, -1]))
        delay = draw(st.integers(min_value=0, max_value=20))
        expiry = draw(st.sampled_from([None, 5, 30, 365]))
        out.append(
            FoldEntry(
                id=f"e{i}",
                till=till,
                kind=kind,
                points=sign * magnitude,
                created_at=T0 + day * DAY,
                receipt_id=receipt,
                ref=ref,
                available_from=T0 + (day + delay) * DAY if kind == "accrue" else None,
                expires_at=T0 + (day + delay + expiry) * DAY
                if kind == "accrue" and expiry
                else None,
            )
        )
    return out


def _counted(entries: list[FoldEntry], count_holds: bool) -> int:
    return sum(x.points for x in entries if count_holds or x.kind not in ("hold", "release"))


def _check(state: CardState, now: datetime) -> None:
    assert state.debt >= 0
    assert all(lot.points > 0 for lot in (*state.lots, *state.expired_due))
    assert all(lot.expires_at is None or lot.expires_at > now for lot in state.lots)
    assert all(lot.expires_at is not None and lot.expires_at <= now for lot in state.expired_due)
    assert state.pending == sum(lot.points for lot in state.lots if lot.available_from > now)
    spendable = sum(lot.points for lot in state.lots if lot.available_from <= now)
    assert state.balance == spendable - state.debt


@settings(max_examples=150, deadline=None)
@given(ledgers(), st.integers(min_value=0, max_value=500), st.booleans())
def test_points_add_up_whatever_the_entries(
    entries: list[FoldEntry], day: int, count_holds: bool
) -> None:
    now = T0 + day * DAY
    state = fold(entries, now, count_holds=count_holds)
    _check(state, now)
    expired = sum(lot.points for lot in state.expired_due)
    assert _counted(entries, count_holds) == state.balance + state.pending + expired


@settings(max_examples=100, deadline=None)
@given(ledgers(), st.integers(min_value=0, max_value=500))
def test_writing_off_expired_lots_changes_no_balance(entries: list[FoldEntry], day: int) -> None:
    now = T0 + day * DAY
    state = fold(entries, now)
    written = entries + [
        FoldEntry(
            id=f"x{i}", till="hq", kind="expire", points=-lot.points, created_at=now, ref=lot.source
        )
        for i, lot in enumerate(state.expired_due)
    ]
    after = fold(written, now)
    assert after.expired_due == ()
    assert (after.balance, after.pending, after.lots) == (state.balance, state.pending, state.lots)
    assert _counted(written, False) == after.balance + after.pending


@settings(max_examples=200, deadline=None)
@given(ledgers(), st.data(), st.integers(min_value=0, max_value=500), st.booleans())
def test_folding_new_entries_onto_a_kept_state_equals_a_whole_replay(
    entries: list[FoldEntry], data: st.DataObject, day: int, count_holds: bool
) -> None:
    """Head office keeps each card's fold state as text and folds only the new entries
    onto it, push after push: the result is the replay of the whole history."""
    now = T0 + day * DAY
    cuts = sorted(data.draw(st.lists(st.integers(0, len(entries)), max_size=3)))
    kept = FoldState().dump()
    start = 0
    for cut in [*cuts, len(entries)]:
        state = replay(entries[start:cut], count_holds=count_holds, onto=FoldState.load(kept))
        kept, start = state.dump(), cut
        whole = fold(entries[:cut], now, count_holds=count_holds)
        assert state_at(FoldState.load(kept), now) == whole
        assert state_at(state, now) == whole  # state_at leaves the state as it was
        assert state_at(state, now) == whole
