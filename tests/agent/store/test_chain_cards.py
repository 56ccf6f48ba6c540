"""A chain's cards written a page at a time (``upsert_chain``) as one is (``upsert``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tillgate.agent.store import cards as card_store
from tillgate.agent.store.db import Database
from tillgate.core.cardfile import CardRecord

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
HASH = "ab" * 32


def stored(db: Database) -> list[tuple[object, ...]]:
    with db.read() as conn:
        return [tuple(r) for r in conn.execute("SELECT * FROM cards ORDER BY number")]


LEAP = date(2000, 2, 29)  # a month and day (core/rules/tiers.py MONTH_DAY_YEAR)


@pytest.mark.parametrize(
    ("birthday", "as_date"),
    [("--02-29", LEAP), (date(1984, 2, 29), date(1984, 2, 29)), ("1984-02-29", LEAP), (None, None)],
)
def test_a_page_of_cards_is_written_as_one_card_is(
    tmp_path: Path, birthday: date | str | None, as_date: date | None
) -> None:
    """Display name, phone hash, no phone, the birthday's month and day: the same rule."""
    page, one = Database(tmp_path / "page.sqlite3"), Database(tmp_path / "one.sqlite3")
    card = card_store.ChainCard(
        "2900000000011", "Анна Иванова", HASH, birthday, "gold", ["vip"], [], "active"
    )
    with page.write() as conn:
        card_store.upsert_chain(conn, [card], now=NOW)
    record = CardRecord(
        number="2900000000011",
        holder="Анна Иванова",
        phone="+79161234567",
        birthday=as_date,
        tier="gold",
        segments=("vip",),
    )
    with one.write() as conn:
        card_store.upsert(conn, record, now=NOW, origin="hq", phone_hash=HASH)
    assert stored(page) == stored(one)
    (row,) = stored(page)
    assert row[1:5] == ("Анна И.", None, "--02-29" if birthday else None, "gold")
    page.close()
    one.close()


def test_a_birthday_that_is_no_date_writes_none_of_the_page(tmp_path: Path) -> None:
    db = Database(tmp_path / "till.sqlite3")
    good = card_store.ChainCard("2900000000011", "Анна", None, "--03-14", None, [], [], "active")
    bad = good._replace(number="2900000000028", birthday="--02-30")
    with pytest.raises(ValueError), db.write() as conn:
        card_store.upsert_chain(conn, [good, bad], now=NOW)
    assert stored(db) == []
    db.close()
