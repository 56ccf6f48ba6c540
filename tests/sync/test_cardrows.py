"""A compact change page's cards (sync/cardrows.py): the same cards, checks and writes as
a page of card objects, whatever order or extra columns head office sends them in."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tillgate.agent.store.db import Database
from tillgate.core.errors import HqBadReply
from tillgate.sync import cardrows, feed, jsonpieces
from tillgate.sync.wire import CardChange, ChangePage, parse

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
KEY = "ab" * 16
LOT = {"points": 7, "available_from": "2026-11-01T00:00:00Z", "expires_at": None}


def card(i: int, **more: Any) -> dict[str, Any]:
    """A card as head office sends it: plain unless ``more`` gives it lots or counts."""
    return {
        "number": f"29{i:011d}",
        "holder": f"Анна {'АБВ'[i % 3]}.",
        "phone_hash": f"{i:064x}",
        "birthday": "--02-29" if i % 2 else None,
        "tier": "gold",
        "segments": ["vip"] if i % 3 == 0 else [],
        "clubs": [],
        "status": "active",
        "balance": 100 + i,
        "pending": 5,
        "lots": [],
        "through_seq": 3,
        "uses": {},
        "held": i % 4,
    } | more


def compact(cards: list[dict[str, Any]], columns: tuple[str, ...] = cardrows.COLUMNS) -> Any:
    rows = [[c.get(name) for name in columns] for c in cards]
    return {"cursor": 9, "lookup_key": KEY, "card_columns": list(columns), "card_rows": rows}


CARDS = [
    card(1),
    card(2, phone_hash=None, tier=None, segments=["a", "b"], clubs=["c"], status="blocked"),
    card(3, lots=[LOT]),  # the model's way
    card(4, uses={"visits": 2, "spend": [["2026-11-20", 5000]]}),  # the model's way
    card(5, balance=-(2**63), held=2**63 - 1),
]


def test_plain_rows_stay_rows_and_the_others_are_the_models_cards() -> None:
    page = cardrows.change_page(compact(CARDS))
    assert [row[0] for row in page.plain] == [CARDS[i]["number"] for i in (0, 1, 4)]
    assert page.cards == [CardChange.model_validate(CARDS[i]) for i in (2, 3)]
    assert page.size == len(CARDS) and page.cursor == 9 and page.lookup_key == KEY
    for row in page.plain:
        sent = next(c for c in CARDS if c["number"] == row[0])
        assert row == tuple(sent[name] for name in cardrows.COLUMNS)


def _stored(tmp_path: Path, name: str, page: ChangePage) -> list[Any]:
    db = Database(tmp_path / f"{name}.sqlite3")
    feed.apply(db, page, till="till-1", cursor=0, now=NOW, chunk=2)
    with db.read() as conn:
        got = [
            tuple(r)
            for table in ("cards", "hq_cards")
            for r in conn.execute(f"SELECT * FROM {table} ORDER BY number").fetchall()
        ]
    db.close()
    return got


def test_a_compact_page_is_written_as_the_same_page_of_objects(tmp_path: Path) -> None:
    objects = parse(ChangePage, {"cursor": 9, "lookup_key": KEY, "cards": CARDS}, what="page")
    rows = cardrows.change_page(compact(CARDS))
    assert _stored(tmp_path, "rows", rows) == _stored(tmp_path, "objects", objects)


def test_columns_are_read_by_name_unknown_ones_skipped_missing_ones_defaulted() -> None:
    columns = ("later", "held", "number", "status", "holder", "number")
    page = cardrows.change_page(compact([card(1) | {"later": {"x": 1}}], columns))
    (row,) = page.plain
    default = cardrows.change_page(compact([{"number": card(1)["number"]}], ("number",)))
    assert row == (card(1)["number"], "Анна Б.", None, None, None, [], [], "active", 0, 0, [],
                   0, {}, 1)  # fmt: skip
    assert default.plain == [(card(1)["number"], "", None, None, None, [], [], "active", 0, 0,
                              [], 0, {}, 0)]  # fmt: skip


def test_a_head_office_from_before_sends_objects_and_they_still_go_in() -> None:
    page = cardrows.change_page({"cursor": 9, "cards": CARDS})
    assert page.plain == [] and len(page.cards) == len(CARDS)


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (card(7, number=""), "card_rows.1 (number)"),
        (card(7, number="9" * 65), "card_rows.1 (number)"),
        (card(7, holder=None), "card_rows.1 (holder)"),
        (card(7, phone_hash="AB" * 32), "card_rows.1 (phone_hash)"),
        (card(7, phone_hash="a" * 63 + "\n"), "card_rows.1 (phone_hash)"),
        (card(7, birthday="--02-30"), "card_rows.1 (birthday): '--02-30' is no --MM-DD"),
        (card(7, birthday="1990-03-14"), "card_rows.1 (birthday)"),  # rows: month and day
        (card(7, segments=["a", 1]), "card_rows.1 (segments)"),
        (card(7, status="gone"), "card_rows.1 (status)"),
        (card(7, balance=2**63), "card_rows.1 (balance)"),
        (card(7, balance=True), "card_rows.1 (balance)"),
        (card(7, pending=-1), "card_rows.1 (pending)"),
        (card(7, through_seq=1.5), "card_rows.1 (through_seq)"),
        (card(7, held="1"), "card_rows.1 (held)"),
        (card(7, lots=[LOT | {"points": "x"}]), "card_rows.1 (lots.0.points)"),
        (card(7, uses={"visits": -1}), "card_rows.1 (uses.visits)"),
    ],
)
def test_a_bad_row_refuses_the_page_naming_its_row_and_column(bad: Any, named: str) -> None:
    with pytest.raises(HqBadReply, match="bad change page") as exc:
        cardrows.change_page(compact([card(1), bad]))
    assert named in str(exc.value)
    assert bad["number"] not in str(exc.value) or not bad["number"]  # no card number shown


@pytest.mark.parametrize(
    ("page", "named"),
    [
        ({"cursor": 1, "card_rows": []}, "card_columns"),
        ({"cursor": 1, "card_columns": ["holder"], "card_rows": []}, "card_columns"),
        ({"cursor": 1, "card_columns": "number", "card_rows": []}, "card_columns"),
        ({"cursor": 1, "card_columns": ["number"], "card_rows": {}}, "card_rows"),
        ({"cursor": 1, "card_columns": ["number"], "card_rows": [["1", "2"]]}, "card_rows.0"),
        ({"cursor": 1, "card_columns": ["number", "x"], "card_rows": [["1"]]}, "card_rows.0"),
        ({"cursor": 1, "card_columns": ["number", "x"], "card_rows": [7]}, "card_rows.0"),
        ({"cursor": -1, "card_columns": ["number"], "card_rows": []}, "cursor"),
    ],
)
def test_a_bad_compact_page_is_refused(page: Any, named: str) -> None:
    with pytest.raises(HqBadReply, match=named):
        cardrows.change_page(page)


def test_the_columns_are_head_offices() -> None:
    from tillgate.hq.feed import CARD_COLUMNS

    assert cardrows.COLUMNS == CARD_COLUMNS


def _body(page: Any) -> bytes:
    return json.dumps(page, ensure_ascii=False, separators=(",", ":")).encode()


def test_a_compact_body_is_decoded_and_checked_in_one_pass_as_it_is_in_two() -> None:
    for columns in (cardrows.COLUMNS, ("held", "number", "later", *cardrows.COLUMNS[1:-1])):
        body = _body(compact([c | {"later": 1} for c in CARDS], columns))
        once = cardrows.change_page(cardrows.loads(body))
        twice = cardrows.change_page(jsonpieces.loads(body))
        assert (once.plain, once.cards, once.cursor) == (twice.plain, twice.cards, twice.cursor)
        assert once.model_dump() == twice.model_dump() and len(once.plain) == 3


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (card(7, number=""), "card_rows.1 (number)"),
        (card(7, balance=2**63), "card_rows.1 (balance)"),
        (card(7, balance=2**70), "card_rows.1 (balance)"),  # beyond msgspec: json's way
        (card(7, birthday="--13-01"), "card_rows.1 (birthday)"),
        (card(7, phone_hash="g" * 64), "card_rows.1 (phone_hash)"),
    ],
)
def test_a_bad_row_in_a_compact_body_is_named(bad: Any, named: str) -> None:
    with pytest.raises(HqBadReply, match="bad change page") as exc:
        cardrows.change_page(cardrows.loads(_body(compact([card(1), bad]))))
    assert named in str(exc.value)


@pytest.mark.parametrize(
    "body", [b"[1, 2]", b'{"cursor": 1e999}', b'{"cursor": NaN}', b'{"cursor": 1,}', b"\xff"]
)
def test_what_msgspec_does_not_take_goes_the_usual_way(body: bytes) -> None:
    try:
        want: Any = jsonpieces.loads(body)
    except ValueError as exc:
        with pytest.raises(type(exc)):
            cardrows.loads(body)
    else:
        assert cardrows.loads(body) == want or want != want
