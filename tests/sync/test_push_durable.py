"""A push sends nothing a power cut could take back.

A calculate's commit does not wait for the disk (agent/store/db.py): a power cut may take
it back, and the seq of its hold entry would then be given to another entry. So the push
reads what it sends in a durable write, whose commit puts every earlier transaction on
the disk with its own, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conftest import BORIS, program
from tests.sync.realhq import Chain, ChainHq, card
from tillgate.agent.store.db import Database

DATA = program(accrual_delay_days=0, expiry_days=0, max_redeem_percent=100)


def test_what_a_push_sends_was_committed_durably_first(
    make_chain: Callable[..., Chain], hq: ChainHq, monkeypatch: pytest.MonkeyPatch
) -> None:
    till = make_chain("till-a", data=DATA)
    hq.import_cards(card(BORIS, opening_balance=1000))
    till.syncer.run_once()
    # A calculate holds points (a ledger entry with the next seq) and is left open.
    r = till.calc("R-1", "500.00", card=BORIS, redeem="max")
    assert r["redeemed"]["points"] > 0

    commits: list[tuple[bool, int]] = []  # each write of the syncer's: durable, changes
    real = Database.write

    def write(self: Database, **kw: bool) -> Any:
        if self is not till.syncer.db or self._depth:
            return real(self, **kw)
        return _recorded(real(self, **kw), kw.get("durable", True), commits)

    monkeypatch.setattr(Database, "write", write)
    sent: list[int] = []
    push = till.syncer.client.push

    def watched(body: dict[str, Any]) -> Any:
        durable, changed = commits[-1]  # the write the batch was read in
        assert durable and changed > 0, commits
        sent.append(len(body["entries"]))
        return push(body)

    monkeypatch.setattr(till.syncer.client, "push", watched)
    till.syncer.push()
    assert sent and sent[0] >= 1  # the hold entry went, after a durable commit that wrote


def _recorded(cm: Any, durable: bool, commits: list[tuple[bool, int]]) -> Any:
    """``cm`` (a write), recording whether it was durable and how many rows it changed."""

    @contextmanager
    def wrapped() -> Any:
        with cm as conn:
            before = conn.total_changes
            yield conn
            changed = conn.total_changes - before
        commits.append((durable, changed))

    return wrapped()
