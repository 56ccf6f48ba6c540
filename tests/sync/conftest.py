"""Sync fixtures: a real HQ on a SQLite file on loopback, and chain tills enrolled at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import stamina

from tests.conftest import CARDS, program
from tests.sync.realhq import Chain, ChainHq, HqLink, enroll
from tillgate.agent.store import cards as card_store
from tillgate.agent.store.db import Database
from tillgate.agent.usecases import TillService, TillSettings
from tillgate.agent.usecases.ports import NoReservations
from tillgate.agent.usecases.session import CardSession
from tillgate.core.clock import ManualClock
from tillgate.core.rules.coupons import CouponSigner
from tillgate.sync.client import HqClient
from tillgate.sync.engine import OnlineState, Syncer
from tillgate.sync.holds import HqHolds


@pytest.fixture(autouse=True)
def _fast_retries() -> Iterator[None]:
    # No back-off sleeps in unit tests; still three attempts, so retrying is exercised.
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


@pytest.fixture
def hq(tmp_path: Path, clock: ManualClock) -> Iterator[ChainHq]:
    """The real head office on a fresh SQLite file, on the tills' clock."""
    server = ChainHq(tmp_path / "hq", clock).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_chain(tmp_path: Path, clock: ManualClock, hq: ChainHq) -> Iterator[Callable[..., Chain]]:
    """Chain tills of ``hq``, each with its own data file, enrolled with a one-time code.

    HQ gets the program (published when it differs from the one in force) and the test
    cards (imported once) through its admin API; the new till takes both from HQ's change
    feed with one pull, so it starts as a till whose first sync has not completed yet.
    """
    opened: list[Chain] = []

    def make(
        name: str = "till-1",
        *,
        data: dict[str, Any] | None = None,
        cards: list[card_store.CardRecord] | None = None,
        batch_size: int = 500,
        page_limit: int = 500,
        offline_after: float = 60,
        holds: bool = False,
        hold_timeout_ms: int = 300,
    ) -> Chain:
        data = data or program()
        if hq.published != data:
            hq.publish(data)
        if cards is not None or not hq.cards_loaded:
            hq.import_cards(*(CARDS if cards is None else cards))
            hq.cards_loaded = True
        cred = enroll(hq, name)
        path = tmp_path / f"{name}.sqlite3"
        link = HqLink()
        # Online holds at HQ, on the same line to it as sync (its faults hit both).
        reservations = (
            HqHolds(
                url=cred.url,
                credential=cred.credential,
                timeout_ms=hold_timeout_ms,
                transport=link,
            )
            if holds
            else NoReservations()
        )
        service = TillService(
            db=Database(path),
            settings=TillSettings(
                till=cred.till, store=cred.store, timezone="Europe/Moscow", chain=True
            ),
            clock=clock,
            session=CardSession(seconds=120),
            signer=CouponSigner(cred.key),  # the chain's key, from enrolment
            connectivity=(online := OnlineState()),
            reservations=reservations,
        )
        syncer = Syncer(
            db=Database(path),
            client=HqClient(url=cred.url, credential=cred.credential, transport=link),
            till=cred.till,
            clock=clock,
            batch_size=batch_size,
            page_limit=page_limit,
            offline_after_seconds=offline_after,
            online=online,
            events=service.events,
        )
        chain = Chain(
            service=service,
            syncer=syncer,
            hq=hq,
            link=link,
            clock=clock,
            path=path,
            credential=cred,
        )
        opened.append(chain)
        syncer.pull()
        return chain

    yield make
    for chain in opened:
        if isinstance(chain.service.reservations, HqHolds):
            chain.service.reservations.close()
        chain.syncer.close()
        chain.service.events.close()
        chain.service.db.close()
