"""A push's receipt facts: each body stored as the text the till sent, bad ones refused.

The push is decoded by msgspec (hq/wire.py ``parse_push``), which keeps each fact body's
text; whatever that path does not take goes through ``json`` and pydantic as before, so
the refusals read the same. Also: the JSON scan's depth is exactly a parser's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ANNA
from tests.hq.helpers import T0, HqTest, iso
from tillgate.core.errors import JsonTooDeep
from tillgate.hq import wire


def _fact_json(receipt: str, body_text: str) -> str:
    head = json.dumps(
        {
            "id": f"sale:{receipt}",
            "kind": "sale",
            "receipt_id": receipt,
            "after_seq": 0,
            "created_at": iso(T0),
        }
    )
    return head[:-1] + f', "body": {body_text}}}'


def _push(hq: HqTest, till: Any, facts: list[str]) -> Any:
    text = f'{{"till": "{till.id}", "entries": [], "facts": [{", ".join(facts)}]}}'
    return till.http.post(
        "/v1/sync/push", content=text.encode(), headers={"Content-Type": "application/json"}
    )


def test_a_fact_body_is_stored_as_the_text_the_till_sent(hq: HqTest) -> None:
    hq.cards(ANNA)
    till = hq.enroll("till-1")
    # Keys out of order, spacing, escapes and text beyond ASCII, as a till may write them.
    body = (
        '{ "total" : "12.50", "card": "' + ANNA + '",\n "note": "Ёлка \\u00e9 \\"x\\" [",'
        ' "local_time": "2026-11-23T09:00:00+03:00", "uses": ["p-1"], "n": 1.50 }'
    )
    r = _push(hq, till, [_fact_json("R-1", body)])
    assert r.status_code == 200, r.text
    assert r.json()["facts"] == ["sale:R-1"]
    with hq.hq.db.read() as tx:
        row = tx.one("SELECT body, card FROM receipt_facts WHERE id = 'sale:R-1'")
    assert row is not None
    assert row["body"] == body and row["card"] == ANNA
    # Read from the body as before: the sale counts for the card.
    with hq.hq.db.read() as tx:
        assert tx.scalar("SELECT SUM(value) FROM card_counters WHERE name = 'visit'") == 1


@pytest.mark.parametrize(
    "skipped",
    [
        '{"note": "e1000 in a string", "n": [1e99, 2.5E-300, -3e+10]}',  # finite exponents
        '{"n": 12345678901234567890}',
    ],
)
def test_a_body_is_counted_from_its_read_fields_and_stored_whole(hq: HqTest, skipped: str) -> None:
    """Fields head office does not read are skipped, not built (finite numbers of any
    exponent, strings that look like one): the sale counts, and the body is kept whole."""
    till = hq.enroll("till-1")
    hq.cards(ANNA)
    body = f'{{"card": "{ANNA}", "total": "12.50", "uses": [], "calculation": {skipped}}}'
    r = _push(hq, till, [_fact_json("R-1", body)])
    assert r.status_code == 200, r.text
    with hq.hq.db.read() as tx:
        assert tx.scalar("SELECT body FROM receipt_facts WHERE id = 'sale:R-1'") == body
        spend = tx.scalar("SELECT SUM(value) FROM card_counters WHERE name = 'spend'")
        assert spend == 1250


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ('{"card": 1e999}', 400, "number_too_large", "infinite"),
        # In a field head office does not read (msgspec skips it): refused all the same.
        ('{"card": "x", "calculation": {"n": [1E+999]}}', 400, "number_too_large", "infinite"),
        (
            '{"card": "x", "calculation": {"n": 1.5e-400, "m": 2e308}}',
            400,
            "number_too_large",
            "2e308",
        ),
        ('{"card": "x", "deep": ' + "[" * 40 + "]" * 40 + "}", 400, "json_too_deep", "32"),
        ('{"card": "x",}', 400, "invalid_request", "malformed JSON"),
        ('{"card": NaN}', 400, "invalid_request", "NaN is not a JSON number"),
        ('["not", "an", "object"]', 400, "invalid_request", "facts[1].body:"),
    ],
)
def test_a_bad_fact_body_is_refused_and_nothing_is_written(
    hq: HqTest, body: str, status: int, code: str, words: str
) -> None:
    till = hq.enroll("till-1")
    before = hq.snapshot() | {"receipt_facts": hq.count("receipt_facts")}
    r = _push(hq, till, [_fact_json("R-1", '{"card": "ok"}'), _fact_json("R-2", body)])
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and words in error["message"], error
    assert hq.snapshot() | {"receipt_facts": hq.count("receipt_facts")} == before


def test_a_fact_without_a_body_names_the_field(hq: HqTest) -> None:
    till = hq.enroll("till-1")
    head = _fact_json("R-1", "{}").replace(', "body": {}', "")
    r = _push(hq, till, [head])
    assert r.status_code == 400 and r.json()["error"]["message"] == "facts[0].body: is required"


# ---------------------------------------------------------------- the depth scan

_text = st.text(alphabet='[]{}"\\ab1', max_size=6)
_json = st.recursive(
    st.none() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=60,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(_json, st.integers(min_value=0, max_value=40))
def test_the_scan_refuses_exactly_what_is_nested_too_deep(value: Any, wraps: int) -> None:
    """Brackets, quotes and backslashes inside strings never count; any wrap that takes
    the depth past MAX_DEPTH is refused, and nothing else is."""
    for _ in range(wraps):
        value = [value, "]]", {"}": "[\\"}]
    body = json.dumps(value).encode()
    if _depth(value) > wire.MAX_DEPTH:
        with pytest.raises(JsonTooDeep):
            wire.check_json(body)
    else:
        wire.check_json(body)
