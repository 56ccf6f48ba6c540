"""Horizontal head office: two real ``tillgate hq serve`` processes on one PostgreSQL schema.

Tills push through both at once — every batch sent to both servers concurrently, then sent
again (a lost reply's retry) — and hold one card's points at once through both. Head office
must store every entry exactly once and never grant a hold more than the card has: the
processes share nothing but the database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_socket
from tests.hq.conftest import drop_schema, pg_schema_url
from tests.hq.helpers import entry

TILLS = 4
BATCHES = 3
PER_BATCH = 40
HOLD_CARDS = 4
BALANCE = 100


def _serve(stack: ExitStack, url: str, data: Path, name: str) -> str:
    """A ``tillgate hq serve`` on ``url`` (data folder ``data``), stopped with ``stack``."""
    with free_socket() as s:
        port = s.getsockname()[1]
    log = stack.enter_context((data / f"{name}.log").open("ab"))
    env = {**os.environ, "TILLGATE_HQ_TOKEN": ""}
    args = ["hq", "serve", "--db", url, "--port", str(port), "--data-dir", str(data)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tillgate.cli", *args], stdout=log, stderr=log, env=env
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)

    stack.callback(stop)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return base
        time.sleep(0.1)
    raise AssertionError(f"hq serve {name} did not start:\n{(data / f'{name}.log').read_text()}")


@pytest.fixture
def two_servers(pg_base_url: str, tmp_path: Path) -> Iterator[tuple[str, list[str], str]]:
    """Two head-office processes on one fresh schema: its URL, their URLs, the admin token."""
    url, schema = pg_schema_url(pg_base_url)
    try:
        with ExitStack() as stack:
            first = _serve(stack, url, tmp_path, "a")  # migrates
            second = _serve(stack, url, tmp_path, "b")
            token = (tmp_path / "hq-admin.token").read_text().strip()
            yield url, [first, second], token
    finally:
        drop_schema(pg_base_url, schema)


def _at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` in threads released together; their results in order."""
    start = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait()
        out[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def test_two_processes_store_every_entry_once_and_grant_no_hold_twice(
    two_servers: tuple[str, list[str], str], tmp_path: Path
) -> None:
    import psycopg

    url, servers, token = two_servers
    admin = httpx.Client(base_url=servers[0], headers={"Authorization": f"Bearer {token}"})
    program = (Path(__file__).parents[2] / "program.example.toml").read_text("utf-8")
    assert admin.post("/v1/admin/program", json={"toml": program}).status_code == 200
    cards = [f"2900000{i:06d}" for i in range(HOLD_CARDS + 10)]
    csv = "number,tier,status,balance\n" + "".join(
        f"{c},silver,active,{BALANCE if i < HOLD_CARDS else ''}\n" for i, c in enumerate(cards)
    )
    r = admin.post("/v1/admin/cards/import", content=csv, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text

    tills: list[tuple[str, httpx.Client, httpx.Client]] = []
    for t in range(TILLS):
        till = f"two-{t}"
        code = admin.post("/v1/admin/enroll-codes", json={"store": "s1", "till": till})
        cred = httpx.post(f"{servers[t % 2]}/v1/enroll", json={"code": code.json()["code"]})
        bearer = {"Authorization": f"Bearer {cred.json()['credential']}"}
        clients = (httpx.Client(base_url=s, headers=bearer, timeout=60) for s in servers)
        tills.append((till, *clients))

    # Every till's batches, each sent to both servers at once and then to both again.
    at = datetime.now(UTC) - timedelta(hours=1)
    sent: dict[str, list[dict[str, Any]]] = {}
    for till, *_ in tills:
        sent[till] = [
            entry(till, seq, cards[HOLD_CARDS + seq % 10], "accrue", 5, at=at, receipt_id=f"r{seq}")
            for seq in range(1, BATCHES * PER_BATCH + 1)
        ]

    def sync(till: str, a: httpx.Client, b: httpx.Client) -> list[str]:
        problems = []
        for k in range(BATCHES):
            body = {"till": till, "entries": sent[till][k * PER_BATCH : (k + 1) * PER_BATCH]}
            pair = _at_once(*(partial(c.post, "/v1/sync/push", json=body) for c in (a, b)))
            # The lost reply's retries, to each server.
            retries = [b.post("/v1/sync/push", json=body), a.post("/v1/sync/push", json=body)]
            for r in (*pair, *retries):
                if r.status_code != 200 or r.json()["conflicts"]:
                    return [f"{till} batch {k}: {r.status_code} {r.text[:200]}"]
            stored = [r.json()["stored"] for r in (*pair, *retries)]
            if sorted(stored) != [0, 0, 0, PER_BATCH]:
                problems.append(f"{till} batch {k}: stored {stored}")
            if any(r.json()["duplicates"] != PER_BATCH for r in retries):
                problems.append(f"{till} batch {k}: retries {[r.json() for r in retries]}")
        return problems

    found = _at_once(*(lambda t=t: sync(*t) for t in tills))
    assert [p for ps in found for p in ps] == []

    # Holds: every till asks for 40 of the same card's 100 at once, half through each server.
    for card in cards[:HOLD_CARDS]:
        asks = [
            lambda c=c, i=i, card=card: c.post(
                "/v1/holds",
                json={"receipt_id": f"h-{card}-{i}", "card": card, "points": 40, "seconds": 600},
            )
            for i, (_, *both) in enumerate(tills)
            for c in [both[i % 2]]
        ]
        replies = _at_once(*asks)
        assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
        granted = sorted(r.json()["granted"] for r in replies)
        assert sum(granted) == BALANCE, (card, granted)  # never more, and nothing lost
        assert granted == [0, 20, 40, 40]

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT till, seq, COUNT(*) FROM entries WHERE till LIKE 'two-%'"
            " GROUP BY till, seq HAVING COUNT(*) <> 1"
        ).fetchall()
        assert rows == []
        total = conn.execute("SELECT COUNT(*) FROM entries WHERE till LIKE 'two-%'").fetchone()
        assert total is not None and total[0] == TILLS * BATCHES * PER_BATCH
        through = conn.execute("SELECT id, through_seq FROM tills ORDER BY id").fetchall()
        assert through == [(t, BATCHES * PER_BATCH) for t, *_ in tills]
        positions = conn.execute("SELECT COUNT(DISTINCT pos), COUNT(*) FROM entries").fetchone()
        assert positions is not None and positions[0] == positions[1]
    # Each card's balance is the sum of its entries, as either server folds it.
    accrued = {c: 0 for c in cards[HOLD_CARDS:]}
    for entries in sent.values():
        for e in entries:
            accrued[e["card"]] += e["points"]
    for number, points in accrued.items():
        for server in servers:
            card = httpx.get(
                f"{server}/v1/admin/cards/{number}", headers={"Authorization": f"Bearer {token}"}
            ).json()
            assert card["balance"] == points, (number, server, card)


def test_a_card_changed_through_one_process_is_never_stale_at_the_other(
    two_servers: tuple[str, list[str], str],
) -> None:
    """Each process keeps the cards' shared page parts it built (hq/feedparts.py), keyed by
    the card's change: a change made through the other process is seen at once."""
    _, servers, token = two_servers
    admin = httpx.Client(base_url=servers[0], headers={"Authorization": f"Bearer {token}"})
    card = "2900000000001"
    r = admin.post(
        "/v1/admin/cards/import",
        content=f"number,balance\n{card},100\n",
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    clients = []
    for till in ("one", "two"):
        code = admin.post("/v1/admin/enroll-codes", json={"store": "s1", "till": till})
        cred = httpx.post(f"{servers[0]}/v1/enroll", json={"code": code.json()["code"]})
        bearer = {"Authorization": f"Bearer {cred.json()['credential']}"}
        clients.append([httpx.Client(base_url=s, headers=bearer, timeout=60) for s in servers])

    def shown(client: httpx.Client) -> tuple[int, int]:
        page = client.get("/v1/sync/changes", params={"cursor": 0}).json()
        got = next(c for c in page["cards"] if c["number"] == card)
        return got["balance"], got["held"]

    one, two = clients
    assert [shown(c) for c in (*one, *two)] == [(100, 0)] * 4  # each process built it
    pushed = two[1].post(
        "/v1/sync/push",
        json={"till": "two", "entries": [entry("two", 1, card, "redeem", -10)]},
    )
    assert pushed.status_code == 200 and pushed.json()["stored"] == 1, pushed.text
    hold = two[1].post(
        "/v1/holds", json={"receipt_id": "r-2", "card": card, "points": 30, "seconds": 600}
    )
    assert hold.status_code == 200 and hold.json()["granted"] == 30, hold.text
    assert [shown(c) for c in one] == [(90, 30), (90, 30)]
    assert [shown(c) for c in two] == [(90, 0), (90, 0)]
