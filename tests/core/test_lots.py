"""The lot rules of core/lots.py: FIFO with creation-order ties, give-backs, releases, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tillgate.core.lots import (
    Lot,
    Plan,
    expired,
    plan_consume,
    plan_give_back,
    plan_release,
    plan_take,
    settle,
    spending_order,
    still_owed,
    tally,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def lot(
    id: str,
    remaining: int,
    *,
    seq: int,
    available: int = 0,
    expires: int | None = 30,
) -> Lot:
    return Lot(
        id=id,
        remaining=remaining,
        available_from=T0 + available * DAY,
        expires_at=T0 + expires * DAY if expires is not None else None,
        seq=seq,
    )


def test_spending_takes_the_lot_that_expires_first() -> None:
    lots = [lot("late", 100, seq=1, expires=300), lot("soon", 100, seq=2, expires=100)]
    plan = plan_consume(lots, 120, T0)
    assert plan == Plan(moves=(("soon", -100), ("late", -20)), short=0)


def test_lots_expiring_together_go_in_order_of_creation_not_of_id() -> None:
    # "zzz" was created first (seq 1): it goes first though its id sorts last.
    lots = [lot("aaa", 10, seq=2), lot("zzz", 10, seq=1), lot("mmm", 10, seq=3)]
    assert [x.id for x in spending_order(lots, T0)] == ["zzz", "aaa", "mmm"]
    assert plan_consume(lots, 15, T0).moves == (("zzz", -10), ("aaa", -5))


def test_the_entry_id_breaks_a_tie_of_seq_from_different_tills() -> None:
    lots = [lot("b", 10, seq=4), lot("a", 10, seq=4)]
    assert [x.id for x in spending_order(lots, T0)] == ["a", "b"]


def test_never_expiring_lots_go_last_and_available_dates_do_not_break_ties() -> None:
    lots = [
        lot("forever", 10, seq=1, expires=None),
        lot("later-available", 10, seq=2, available=-1, expires=5),
        lot("sooner-available", 10, seq=3, available=-3, expires=5),
    ]
    assert [x.id for x in spending_order(lots, T0)] == [
        "later-available",
        "sooner-available",
        "forever",
    ]


def test_pending_and_expired_lots_are_not_spent_unless_a_reversal_reaches_pending() -> None:
    lots = [
        lot("pending", 50, seq=1, available=2, expires=10),
        lot("gone", 50, seq=2, available=-10, expires=0),
        lot("here", 20, seq=3, expires=40),
    ]
    assert plan_consume(lots, 30, T0) == Plan(moves=(("here", -20),), short=10)
    reversal = plan_consume(lots, 30, T0, include_pending=True)
    # Spendable lots first, then pending ones; an expired lot never.
    assert reversal == Plan(moves=(("here", -20), ("pending", -10)), short=0)


def test_first_lots_are_drained_first_up_to_their_cap_whatever_their_state() -> None:
    lots = [
        lot("soon", 50, seq=1, expires=10),
        lot("held", 30, seq=2, expires=-1),  # expired since a hold set it aside
    ]
    plan = plan_consume(lots, 40, T0, first=[("held", 25), ("unknown", 5)])
    assert plan == Plan(moves=(("held", -25), ("soon", -15)), short=0)
    # A first lot also takes part in FIFO with what its cap left in it.
    again = plan_consume([lot("a", 50, seq=1)], 40, T0, first=[("a", 10)])
    assert again == Plan(moves=(("a", -40),), short=0)


def test_nothing_to_take_is_no_plan() -> None:
    assert plan_consume([lot("a", 5, seq=1)], 0, T0) == Plan()
    assert plan_consume([lot("a", 5, seq=1)], -3, T0) == Plan()


def test_plan_take_spends_exactly_what_a_hold_set_aside() -> None:
    lots = [lot("a", 10, seq=1), lot("b", 3, seq=2)]
    plan = plan_take(lots, {"a": 7, "b": 5, "missing": 2})
    assert plan == Plan(moves=(("a", -7), ("b", -3)), short=4)
    assert plan.moved == 10


def test_a_release_puts_back_exactly_what_was_set_aside() -> None:
    assert plan_release({"a": 7, "b": 3}) == Plan(moves=(("a", 7), ("b", 3)), short=0)
    assert plan_release({"a": 7, "b": 3}, 8) == Plan(moves=(("a", 7), ("b", 1)), short=0)
    assert plan_release({"a": 2}, 5) == Plan(moves=(("a", 2),), short=3)


def test_give_back_refills_the_latest_expiring_lots_first_never_more_than_owed() -> None:
    lots = [
        lot("soon", 0, seq=1, expires=10),
        lot("late", 0, seq=2, expires=50),
        lot("tie-old", 0, seq=3, expires=50),
        lot("forever", 0, seq=4, expires=None),
        lot("not-taken", 0, seq=5, expires=99),
    ]
    owed = still_owed(
        {"soon": 40, "late": 20, "tie-old": 20, "forever": 5}, {"forever": 5, "late": 5}
    )
    assert owed == {"soon": 40, "late": 15, "tie-old": 20, "forever": 0}
    plan = plan_give_back(lots, owed, 50)
    # Latest expiry first; of two expiring together the later created one first.
    assert plan == Plan(moves=(("tie-old", 20), ("late", 15), ("soon", 15)), short=0)
    assert plan_give_back(lots, owed, 100).short == 25


def test_expired_lots_with_points_left_come_soonest_first_then_by_creation() -> None:
    lots = [
        lot("b", 5, seq=3, expires=2),
        lot("a", 5, seq=4, expires=1),
        lot("empty", 0, seq=1, expires=1),
        lot("c", 5, seq=2, expires=2),
        lot("live", 5, seq=5, expires=4),
        lot("forever", 5, seq=6, expires=None),
    ]
    assert [x.id for x in expired(lots, T0 + 3 * DAY)] == ["a", "c", "b"]
    assert expired(lots, T0) == []


def test_a_debt_is_paid_before_a_lot_is_filled() -> None:
    assert settle(30, 100) == (30, 70)
    assert settle(30, 10) == (10, 0)
    assert settle(0, 10) == (0, 10)


def test_tally_sorts_points_by_state() -> None:
    lots = [
        lot("spendable", 10, seq=1),
        lot("pending", 20, seq=2, available=1),
        lot("gone", 40, seq=3, available=-5, expires=-1),
        lot("empty", 0, seq=4),
    ]
    t = tally(lots, T0)
    assert (t.spendable, t.pending, t.expired) == (10, 20, 40)


# ---------------------------------------------------------------- properties

lots_st = st.lists(
    st.builds(
        lambda i, remaining, available, expires: lot(
            f"l{i}", remaining, seq=i, available=available, expires=expires
        ),
        st.integers(0, 10**6),
        st.integers(0, 50),
        st.integers(-3, 3),
        st.one_of(st.none(), st.integers(-2, 6)),
    ),
    max_size=8,
    unique_by=lambda x: x.id,
)


@settings(max_examples=300, deadline=None)
@given(lots_st, st.integers(0, 300), st.booleans())
def test_a_consumption_takes_what_it_can_from_usable_lots_in_order(
    lots: list[Lot], points: int, include_pending: bool
) -> None:
    plan = plan_consume(lots, points, T0, include_pending=include_pending)
    by_id = {x.id: x for x in lots}
    order = [x.id for x in spending_order(lots, T0, include_pending=include_pending)]
    usable = sum(by_id[i].remaining for i in order)
    assert plan.moved + plan.short == points
    assert plan.short == max(0, points - usable)
    assert all(n < 0 and -n <= by_id[i].remaining for i, n in plan.moves)
    # FIFO: the lots taken are a prefix of the order, all but the last emptied.
    taken = [i for i, _ in plan.moves]
    assert taken == order[: len(taken)]
    assert all(-n == by_id[i].remaining for i, n in plan.moves[:-1])
