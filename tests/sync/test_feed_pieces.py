"""A page of the change feed read and written in pieces (issue 15): the same result as whole.

A calculate must never wait for a whole page: the page's JSON is parsed a list item at a
time (sync/jsonpieces.py), its plain cards checked without a model each (sync/wire.py),
and its cards written a bounded chunk per transaction (sync/feed.py). These tests check
the structure and that each shortcut gives what the long way gives; the waits themselves
are measured by bench/firststart.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tillgate.agent.store import meta, syncstate
from tillgate.agent.store.db import Database
from tillgate.core.errors import HqBadReply
from tillgate.sync import feed, jsonpieces
from tillgate.sync.wire import CardChange, ChangePage, parse

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
KEY = "ab" * 16


def plain(i: int, **more: Any) -> dict[str, Any]:
    """A card as head office sends it, with a lot, a birthday and a phone hash."""
    return {
        "number": f"29{i:011d}",
        "holder": f"Анна {i % 7}.",
        "phone_hash": f"{i:064x}",
        "birthday": "--03-14",
        "tier": "gold",
        "segments": ["vip"],
        "clubs": [],
        "status": "active",
        "balance": 100 + i,
        "pending": 5,
        "lots": [
            {
                "points": 100 + i,
                "available_from": "2026-11-01T00:00:00.000000+00:00",
                "expires_at": "2027-11-01T00:00:00Z",
            }
        ],
        "through_seq": 3,
        "held": 0,
        "uses": {},
    } | more


def test_a_plain_card_is_what_the_model_makes_of_it() -> None:
    cards = [
        plain(1),
        plain(2, birthday=None, phone_hash=None, tier=None, lots=[], segments=[]),
        plain(3, uses={"visits": 2, "spend": [["2026-11-20", 5000]]}),  # the model's way
        plain(4, birthday="1990-03-14"),  # an older head office's whole date: the model's way
        plain(5, extra="ignored"),
    ]
    page = parse(ChangePage, {"cursor": 5, "cards": cards}, what="change page")
    for got, sent in zip(page.cards, cards, strict=True):
        want = CardChange.model_validate(sent)
        assert got == want
        assert got.model_dump() == want.model_dump()
        assert got.model_fields_set <= want.model_fields_set | set(CardChange.model_fields)
    assert page.cards[2].uses.visits == 2


@pytest.mark.parametrize(
    ("card", "field"),
    [
        (plain(1, balance=2**63), "cards.0.balance"),
        (plain(1, pending=-1), "cards.0.pending"),
        (plain(1, status="gone"), "cards.0.status"),
        (plain(1, birthday="--02-30"), "cards.0.birthday"),
        (plain(1, phone_hash="XYZ"), "cards.0.phone_hash"),
        (plain(1, number=""), "cards.0.number"),
        (plain(1, lots=[{"points": 1, "available_from": "2026-11-01T00:00:00"}]), "lots.0"),
        (plain(1, lots=[{"points": 1}]), "cards.0.lots.0.available_from"),
        (plain(1, segments=[1]), "cards.0.segments.0"),
    ],
)
def test_a_bad_card_is_named_as_the_model_names_it(card: dict[str, Any], field: str) -> None:
    with pytest.raises(HqBadReply, match=field.replace(".", r"\.")):
        parse(ChangePage, {"cursor": 1, "cards": [card]}, what="change page")


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        ' { "cursor" : 7 , "cards" : [ {"a": [1, {"b": []}]} , [] , 3 ] , "more": true } ',
        '{"cards": [], "cards": [1]}',  # a repeated key: the last one, as json.loads
        '{"ключ": ["значение"], "n": null}',
        '[1, {"a": [2]}]',
        '"text"',
    ],
)
def test_pieces_give_what_json_gives(text: str) -> None:
    for body in (text.encode(), text.encode("utf-16")):
        assert jsonpieces.loads(body) == json.loads(body)


@pytest.mark.parametrize(
    "text",
    ["", "{", '{"a": 1,}', '{"a": [1,]}', '{"a": [1 2]}', '{"a": 1} x', '{"a" 1}', "{a: 1}",
     '{"a": [1, 2}', '{"a": 1 "b": 2}'],
)  # fmt: skip
def test_pieces_refuse_what_json_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        jsonpieces.loads(text.encode())


def test_a_page_goes_in_a_chunk_per_transaction_and_its_cursor_with_the_last(
    tmp_path: Path,
) -> None:
    """1,000 cards: four transactions of WRITE_CHUNK cards, each short; the cursor last."""
    db = Database(tmp_path / "till.sqlite3")
    n = 4 * feed.WRITE_CHUNK
    page = parse(
        ChangePage,
        {"cursor": n, "lookup_key": KEY, "cards": [plain(i) for i in range(n)]},
        what="change page",
    )
    statements: list[str] = []
    with db.read() as conn:
        conn.set_trace_callback(statements.append)
    applied = feed.apply(db, page, till="till-1", cursor=0, now=NOW)
    with db.read() as conn:
        conn.set_trace_callback(None)

    writes: list[list[str]] = []
    for sql in statements:
        if sql == "BEGIN IMMEDIATE":
            writes.append([])
        elif writes and sql != "COMMIT":
            writes[-1].append(sql)
    cards_per_write = [sum(s.startswith("INSERT INTO cards ") for s in w) for w in writes]
    assert cards_per_write == [feed.WRITE_CHUNK] * 4
    cursor_writes = [i for i, w in enumerate(writes) if any(syncstate.CURSOR in s for s in w)]
    assert cursor_writes == [3]
    assert applied.cards == n
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM cards").fetchone()[0] == n
        assert conn.execute("SELECT COUNT(*) FROM hq_cards").fetchone()[0] == n
        assert int(meta.get(conn, syncstate.CURSOR) or 0) == n
        row = conn.execute(
            "SELECT balance, lots, uses FROM hq_cards WHERE number = ?", (plain(7)["number"],)
        ).fetchone()
    assert row["balance"] == 107
    assert json.loads(row["lots"]) == [
        [107, "2026-11-01T00:00:00.000000+00:00", "2027-11-01T00:00:00.000000+00:00"]
    ]
    assert json.loads(row["uses"]) == {"visits": 0, "spend": [], "uses": {}, "stamps": {}}
    db.close()


def test_a_page_with_a_program_the_till_cannot_use_writes_none_of_its_cards(
    tmp_path: Path,
) -> None:
    """The program is checked before the first chunk: a refused page leaves nothing."""
    db = Database(tmp_path / "till.sqlite3")
    n = 3 * feed.WRITE_CHUNK
    bad = {"version": "9", "body": {"program": {"name": ""}, "promotions": "x"}}
    page = parse(
        ChangePage,
        {"cursor": n, "cards": [plain(i) for i in range(n)], "program": bad},
        what="change page",
    )
    with pytest.raises(HqBadReply, match="program this till cannot use"):
        feed.apply(db, page, till="till-1", cursor=0, now=NOW)
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM cards").fetchone()[0] == 0
        assert meta.get(conn, syncstate.CURSOR) is None
    db.close()
