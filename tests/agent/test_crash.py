"""Crash consistency: ``tillgate run`` is SIGKILLed at random moments while a POS confirms.

After every restart the data file passes ``PRAGMA integrity_check`` and every receipt
whose confirm answered 200 is in the ledger exactly once (one accrual, one redemption).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, spawn_agent

PROGRAM = """
[program]
name = "Crash test"
accrual_delay_days = 0
max_redeem_percent = 50
[[program.tiers]]
name = "silver"
min_spend = "0"
accrue_percent = 5
"""
CARDS = "number,holder,tier,status,balance\n2900000000011,Анна,silver,active,100000\n"
CARD = "2900000000011"


def start_agent(tmp: Path, port: int) -> subprocess.Popen[str]:
    log = open(tmp / "agent.log", "a")  # noqa: SIM115
    return spawn_agent(tmp / "c.toml", port=port, cwd=tmp, stderr=log)


def pos_loop(url: str, prefix: str, acked: list[str], stop: threading.Event) -> None:
    """Ring up receipts as fast as possible; remember those whose confirm returned 200."""
    n = 0
    with httpx.Client(base_url=url, timeout=5) as http:
        while not stop.is_set():
            n += 1
            rid = f"{prefix}-{n}"
            try:
                r = http.post(
                    "/v1/receipts/calculate",
                    json={
                        "receipt_id": rid,
                        "card": CARD,
                        "redeem": 10,
                        "lines": [{"sku": "a", "qty": 1, "price": "100.00"}],
                    },
                )
                if r.status_code != 200:
                    continue
                if http.post(f"/v1/receipts/{rid}/confirm").status_code == 200:
                    acked.append(rid)
            except httpx.HTTPError:
                return  # the agent died under us


def check(db_path: Path, acked: list[str]) -> None:
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for rid in acked:
            kinds = [
                r[0]
                for r in conn.execute(
                    "SELECT kind FROM ledger WHERE receipt_id = ? AND kind IN ('accrue','redeem')",
                    (rid,),
                )
            ]
            assert sorted(kinds) == ["accrue", "redeem"], (rid, kinds)
            status = conn.execute(
                "SELECT status FROM receipts WHERE receipt_id = ?", (rid,)
            ).fetchone()[0]
            assert status == "confirmed"
        # no receipt anywhere has two accruals, acknowledged or not
        dup = conn.execute(
            "SELECT receipt_id FROM ledger WHERE kind = 'accrue'"
            " GROUP BY receipt_id HAVING COUNT(*) > 1"
        ).fetchall()
        assert not dup
        total = conn.execute("SELECT SUM(points) FROM ledger WHERE card = ?", (CARD,)).fetchone()[0]
        lots = conn.execute("SELECT SUM(remaining) FROM lots WHERE card = ?", (CARD,)).fetchone()[0]
        # Holds set their lots aside, so every point of the card is in exactly one lot.
        assert total == lots
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkill_during_confirms_loses_nothing(tmp_path: Path) -> None:
    (tmp_path / "program.toml").write_text(PROGRAM, encoding="utf-8")
    (tmp_path / "cards.csv").write_text(CARDS, encoding="utf-8")
    (tmp_path / "c.toml").write_text(
        '[till]\nid = "t1"\nstore = "s1"\ndata_dir = "data"\n'
        '[standalone]\nprogram_file = "program.toml"\ncards_file = "cards.csv"\n'
        '[logging]\nlevel = "WARNING"\n',
        encoding="utf-8",
    )
    rng = random.Random(int(os.environ.get("CRASH_SEED", "20261123")))
    rounds = int(os.environ.get("CRASH_ROUNDS", "12"))
    acked: list[str] = []
    for round_ in range(rounds):
        port = free_port()
        proc = start_agent(tmp_path, port)
        stop = threading.Event()
        workers = [
            threading.Thread(
                target=pos_loop, args=(f"http://127.0.0.1:{port}", f"K{round_}w{w}", acked, stop)
            )
            for w in range(2)
        ]
        for w in workers:
            w.start()
        time.sleep(rng.uniform(0.1, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        stop.set()
        for w in workers:
            w.join(timeout=10)
        check(tmp_path / "data" / "tillgate.sqlite3", acked)
    assert len(acked) > rounds  # the POS really was confirming when the kills came
