"""Sync fixtures: a chain till on a real SQLite file, a fake HQ behind httpx's seam."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina

from tests.conftest import CARDS, KEY, program
from tests.sync.fakehq import HQ_URL, Chain, FakeHq
from tillgate.agent.clock import ManualClock
from tillgate.agent.rules.coupons import CouponSigner
from tillgate.agent.rules.program import parse_program
from tillgate.agent.service import TillService, TillSettings
from tillgate.agent.session import CardSession
from tillgate.agent.store import cards as card_store
from tillgate.agent.store.db import Database
from tillgate.sync.client import HqClient
from tillgate.sync.engine import Syncer


@pytest.fixture(autouse=True)
def _fast_retries() -> Iterator[None]:
    # No back-off sleeps in unit tests; still three attempts, so retrying is exercised.
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


@pytest.fixture
def hq() -> FakeHq:
    return FakeHq()


@pytest.fixture
def make_chain(tmp_path: Path, clock: ManualClock, hq: FakeHq) -> Iterator[Callable[..., Chain]]:
    opened: list[Chain] = []

    def make(
        name: str = "till-1",
        *,
        data: dict[str, Any] | None = None,
        cards: list[card_store.CardRecord] | None = None,
        batch_size: int = 500,
        page_limit: int = 500,
        offline_after: float = 60,
        transport: httpx.BaseTransport | None = None,
    ) -> Chain:
        path = tmp_path / f"{name}.sqlite3"
        service = TillService(
            db=Database(path),
            settings=TillSettings(
                till=name, store="store-01", timezone="Europe/Moscow", chain=True
            ),
            clock=clock,
            session=CardSession(seconds=120),
            signer=CouponSigner(KEY),
        )
        service.install_program(parse_program(data or program()), version="v1")
        service.import_cards(list(CARDS if cards is None else cards))
        client = HqClient(
            url=HQ_URL,
            credential="secret",
            transport=transport or httpx.MockTransport(hq.handle),
        )
        syncer = Syncer(
            db=Database(path),
            client=client,
            till=name,
            clock=clock,
            batch_size=batch_size,
            page_limit=page_limit,
            offline_after_seconds=offline_after,
            service=service,
        )
        chain = Chain(service=service, syncer=syncer, hq=hq, clock=clock, path=path)
        opened.append(chain)
        return chain

    yield make
    for chain in opened:
        chain.syncer.close()
        chain.service.events.close()
        chain.service.db.close()
