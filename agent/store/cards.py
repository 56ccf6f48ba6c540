"""Cards in the till's cache: lookup by number or phone, import, first-use registration."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import date, datetime

from tillgate.core.cardfile import CardRecord

from .ledger import ts


def _row_to_card(row: sqlite3.Row) -> CardRecord:
    return CardRecord(
        number=row["number"],
        holder=row["holder"],
        phone=row["phone"],
        birthday=date.fromisoformat(row["birthday"]) if row["birthday"] else None,
        tier=row["tier"],
        segments=tuple(json.loads(row["segments"])),
        clubs=tuple(json.loads(row["clubs"])),
        status=row["status"],
        last_birthday_bonus=row["last_birthday_bonus"],
    )


def find(
    conn: sqlite3.Connection, *, number: str | None = None, phone: str | None = None
) -> CardRecord | None:
    if number is not None:
        row = conn.execute("SELECT * FROM cards WHERE number = ?", (number,)).fetchone()
    elif phone is not None:
        rows = conn.execute(
            "SELECT * FROM cards WHERE phone = ? ORDER BY status = 'blocked',"
            " updated_at DESC LIMIT 1",
            (phone,),
        ).fetchall()
        row = rows[0] if rows else None
    else:
        return None
    return _row_to_card(row) if row else None


def upsert(
    conn: sqlite3.Connection, card: CardRecord, *, now: datetime, origin: str = "import"
) -> None:
    conn.execute(
        "INSERT INTO cards (number, holder, phone, birthday, tier, segments, clubs, status,"
        " origin, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (number) DO UPDATE SET holder = excluded.holder, phone = excluded.phone,"
        " birthday = excluded.birthday, tier = excluded.tier, segments = excluded.segments,"
        " clubs = excluded.clubs, status = excluded.status, updated_at = excluded.updated_at",
        (
            card.number,
            card.holder,
            card.phone,
            card.birthday.isoformat() if card.birthday else None,
            card.tier,
            json.dumps(list(card.segments), ensure_ascii=False),
            json.dumps(list(card.clubs), ensure_ascii=False),
            card.status,
            origin,
            ts(now),
            ts(now),
        ),
    )


def set_birthday_bonus(conn: sqlite3.Connection, number: str, year: int) -> None:
    conn.execute("UPDATE cards SET last_birthday_bonus = ? WHERE number = ?", (year, number))


def numbers(conn: sqlite3.Connection) -> Iterable[str]:
    return (r[0] for r in conn.execute("SELECT number FROM cards"))
