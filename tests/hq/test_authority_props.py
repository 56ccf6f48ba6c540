"""Property: whatever a till's credential pushes, nothing wedges and only a till's own kind counts.

Hypothesis draws batches of entries — every kind a till makes and some it does not, points
from nothing to far beyond any bound and of either sign, known and unknown cards, times in
the past and ahead of head office's clock — and pushes them through head office's real
storage (``hq.ledger.push`` on a SQLite file). After every push:

* the push is stored whole (``through_seq`` is the batch's last seq): nothing wedges;
* an entry is quarantined exactly when a simple model of the rules says so;
* the card's balance + pending is the sum of the entries that count (holds and releases
  aside, as the sync protocol says), so no quarantined point is spendable.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hq.helpers import T0, entry
from tillgate.hq import ledger
from tillgate.hq.db import Database, open_database
from tillgate.hq.tills import TillId
from tillgate.hq.wire import PushIn, ts

KNOWN, UNKNOWN = "known", "unknown"
SIGN = {"accrue": 1, "release": 1, "return": 1, "redeem": -1, "hold": -1, "reverse": -1}
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def db(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path = tmp_path_factory.mktemp("props") / "hq.sqlite3"
    shutil.copyfile(sqlite_template, path)
    database = open_database(f"sqlite:///{path}", data_dir=path.parent)
    yield database
    database.close()


def counts(e: dict[str, Any], now_offset: timedelta) -> bool:
    """The model: a till's kind, within ±10^9 and of its sign, not ahead by > 300 s, a known
    card; a return with no receipt gives back nothing, so only 0 points of it count."""
    sign = SIGN.get(e["kind"])
    if sign is None or abs(e["points"]) > 10**9 or e["points"] * sign < 0:
        return False
    if now_offset > timedelta(seconds=300) or e["card"] != KNOWN:
        return False
    return not (e["kind"] == "return" and e["points"] > 0)


one_entry = st.tuples(
    st.sampled_from([*SIGN, "adjust", "expire", "gift"]),
    st.one_of(
        st.integers(-1000, 1000),
        st.sampled_from([10**9, 10**9 + 1, -(10**9) - 1, 10**12, 2**63 - 1, -(2**63 - 1)]),
    ),
    st.sampled_from([KNOWN, KNOWN, KNOWN, UNKNOWN]),
    st.sampled_from([-86400 * 30, -60, 0, 299, 301, 3600, 86400 * 365 * 50]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(one_entry, min_size=1, max_size=12), min_size=1, max_size=3))
def test_nothing_wedges_and_only_what_a_till_makes_counts(
    db: Database, batches: list[list[tuple[str, int, str, int]]]
) -> None:
    n = next(_ids)
    till, known, unknown = f"till-{n}", f"29{n:011d}", f"39{n:011d}"
    cards = {KNOWN: known, UNKNOWN: unknown}
    with db.write() as tx:
        # Enrolled, as far as a push is concerned.
        tx.execute("INSERT INTO tills (id, store) VALUES (?, 's')", (till,))
        tx.execute(
            "INSERT INTO cards (number, origin, created_at, updated_at) VALUES (?, 'import', ?, ?)",
            (known, ts(T0), ts(T0)),
        )
    seq, counted = 0, 0
    for batch in batches:
        sent, expected = [], []
        for kind, points, card, offset in batch:
            seq += 1
            e = entry(till, seq, cards[card], kind, points, at=T0 + timedelta(seconds=offset))
            # Lots spendable at once, for a plain sum: the model is about what counts.
            e["available_from"] = e["created_at"] if kind == "accrue" else None
            sent.append(e)
            model = dict(e, card=card)
            expected.append(counts(model, timedelta(seconds=offset)))
        with db.write() as tx:
            reply = ledger.push(tx, TillId(id=till, store="s"), PushIn(till=till, entries=sent), T0)
        assert (reply["through_seq"], reply["stored"]) == (seq, len(sent))
        flagged = {q["seq"] for q in reply["quarantined"]}
        assert flagged == {e["seq"] for e, ok in zip(sent, expected, strict=True) if not ok}
        counted += sum(
            e["points"]
            for e, ok in zip(sent, expected, strict=True)
            if ok and e["kind"] not in ("hold", "release")
        )
        with db.read() as tx:
            state = ledger.card_states(tx, [known, unknown], T0)
        assert state[known].balance + state[known].pending == counted
        assert (state[unknown].balance, state[unknown].pending) == (0, 0)
