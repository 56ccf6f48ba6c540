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


def test_a_phone_hash_is_kept_as_its_32_bytes_and_found_by_the_phone(tmp_path: Path) -> None:
    from tillgate.core.cards import phone_lookup_hash

    db = Database(tmp_path / "till.sqlite3")
    key = "cd" * 16
    hashed = phone_lookup_hash(bytes.fromhex(key), "+79161234567")
    card = card_store.ChainCard("2900000000011", "Анна", hashed, None, None, [], [], "active")
    with db.write() as conn:
        card_store.put_lookup_key(conn, key)
        card_store.upsert_chain(conn, [card], now=NOW)
        card_store.upsert_chain_rows(conn, [card._replace(number="2900000000028")], now=NOW)
    with db.read() as conn:
        kept = conn.execute("SELECT phone_hash FROM cards ORDER BY number").fetchall()
        found = card_store.find(conn, phone="+79161234567")
    assert [r[0] for r in kept] == [bytes.fromhex(hashed)] * 2
    assert found is not None and found.number in ("2900000000011", "2900000000028")
    db.close()


def test_hashes_stored_as_hex_digits_become_their_bytes(tmp_path: Path) -> None:
    """V11: a till's data file from before keeps its cards' hashes, as bytes now; a value
    that is no hash (never written by a till) is forgotten, the card found by number."""
    import sqlite3

    from tillgate.agent.store import schema
    from tillgate.agent.store.schema import MIGRATIONS

    path = tmp_path / "till.sqlite3"
    Database(path).close()
    conn = sqlite3.connect(path)
    at = "2026-12-07T06:00:00.000000+00:00"
    values = [("1", HASH), ("2", "zz" * 32), ("3", "ab"), ("4", None), ("5", "AB" * 32)]
    conn.executemany(
        "INSERT INTO cards (number, phone_hash, origin, created_at, updated_at)"
        " VALUES (?, ?, 'hq', ?, ?)",
        [(n, h, at, at) for n, h in values],
    )
    conn.execute(f"PRAGMA user_version = {MIGRATIONS.index(schema.V11)}")
    conn.commit()
    conn.close()
    db = Database(path)  # migrates
    assert db.schema_version == len(MIGRATIONS)
    with db.read() as conn:
        got = conn.execute("SELECT number, phone_hash FROM cards ORDER BY number").fetchall()
    ab = bytes.fromhex(HASH)
    assert [tuple(r) for r in got] == [("1", ab), ("2", None), ("3", None), ("4", None), ("5", ab)]
    db.close()


def test_the_phone_index_holds_only_cards_with_a_phone_and_finds_them(tmp_path: Path) -> None:
    """V12: a chain's cards (no phone) are not in it; a shop's own card is found by it."""
    db = Database(tmp_path / "till.sqlite3")
    own = CardRecord(number="2900000000011", holder="Анна", phone="+79161234567")
    chain = card_store.ChainCard("2900000000028", "Борис", HASH, None, None, [], [], "active")
    with db.write() as conn:
        card_store.upsert(conn, own, now=NOW)
        card_store.upsert_chain(conn, [chain], now=NOW)
    with db.read() as conn:
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'cards_phone'").fetchone()
        indexed = conn.execute("SELECT COUNT(*) FROM cards INDEXED BY cards_phone WHERE phone = ?",
                               ("+79161234567",)).fetchone()[0]  # fmt: skip
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM cards WHERE phone = ? OR phone_hash = ?", ("p", b"")
        ).fetchall()
        found = card_store.find(conn, phone="+79161234567")
    assert sql.endswith("WHERE phone IS NOT NULL") and indexed == 1
    assert any("cards_phone (phone=?)" in str(r[-1]) for r in plan), plan
    assert found is not None and found.number == own.number
    db.close()
