"""The till's store and memory (issue 15): RSS over a receipt soak, the WAL, bytes per receipt.

Two real runs over HTTP on loopback, 10-line receipts (calculate + confirm, each on a random
card of the shop's):

- a standalone ``tillgate run --config config.example.toml`` (the sample shop) takes
  30,000 × scale receipts; its RSS is sampled every 1,000 (steady value: the median of the
  last third; flat: the last third's median against the first third's), the WAL file's
  size at each sample (its largest);
- a till enrolled at a real ``tillgate hq serve`` (SQLite) takes 5,000 × scale receipts and
  syncs them; bytes per receipt are the growth of the data file's used pages (page count
  less free pages, WAL included: a read of the live file) over those receipts, once every
  entry and fact has reached head office.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, Scaled, free_port, main, rss_mib, spawn
from bench.holds import start_hq
from bench.latency import card_number, write_cards

LINES = [{"sku": f"s{i}", "qty": 2, "price": "99.90", "category": "grocery"} for i in range(10)]
CARD = "2900000012345"  # the sample cards file's
# A shop's customers, not one card: 30,000 receipts on one card made each receipt walk a
# history no real card has (≈ 5,000 sales), and the soak measured that instead of the till.
SOAK_CARDS = 10_000
SYNCED_CARDS = 1_000
RSS_TARGET_MIB = 80.0
BYTES_TARGET = 2048
WAL_TARGET_MIB = 64.0


def _sale(pos: Any, rid: str, card: str) -> None:
    body = {"receipt_id": rid, "card": card, "lines": LINES}
    r = pos.post("/v1/receipts/calculate", json=body)
    assert r.status_code == 200, r.text
    r = pos.post(f"/v1/receipts/{rid}/confirm")
    assert r.status_code == 200, r.text


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _used_bytes(db: Path) -> int:
    """Bytes of the live data file's pages in use (WAL included; free pages left out)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)
    finally:
        conn.close()


def _unsent(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(
            conn.execute(
                "SELECT (SELECT COUNT(*) FROM ledger WHERE synced_at IS NULL)"
                " + (SELECT COUNT(*) FROM facts WHERE synced_at IS NULL)"
            ).fetchone()[0]
        )
    finally:
        conn.close()


def soak(n: int, every: int) -> dict[str, Any]:
    """The standalone sample shop: RSS and WAL samples over ``n`` receipts."""
    import httpx

    tmp = Path(tempfile.mkdtemp(prefix="bench-tillstore-"))
    try:
        for name in ("config.example.toml", "program.example.toml"):
            shutil.copy(ROOT / name, tmp / name)
        write_cards(tmp / "cards.example.csv", SOAK_CARDS)
        rng = random.Random(5)
        port = free_port()
        args = ["--config", str(tmp / "config.example.toml"), "--port", str(port)]
        with ExitStack() as stack:
            pos = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}"))
            up = lambda: pos.get("/v1/status").status_code == 200  # noqa: E731
            proc = spawn(stack, tmp / "till.log", "run", *args, "--log-level", "WARNING", ready=up)
            db = tmp / "var" / "tillgate" / "tillgate.sqlite3"
            wal = db.with_name(db.name + "-wal")
            rss, wal_max = [rss_mib(proc.pid)], _size(wal)
            t0 = time.perf_counter()
            for i in range(n):
                _sale(pos, f"S{i}", card_number(rng.randrange(SOAK_CARDS)))
                wal_max = max(wal_max, _size(wal))
                if (i + 1) % every == 0:
                    rss.append(rss_mib(proc.pid))
            seconds = time.perf_counter() - t0
            file_bytes = _size(db)
            used = _used_bytes(db)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    third = max(1, len(rss) // 3)
    return {
        "rss": rss,
        "first": statistics.median(rss[1 : third + 1] or rss),
        "steady": statistics.median(rss[-third:]),
        "wal_max": wal_max,
        "file": file_bytes,
        "used": used,
        "seconds": seconds,
    }


def synced(n: int, tmp: Path) -> dict[str, Any]:
    """A till enrolled at head office (SQLite): its data file's growth per synced receipt."""
    import httpx

    with ExitStack() as stack:
        url, admin = start_hq(stack, "", tmp, timeout=60)
        toml = (ROOT / "program.example.toml").read_text("utf-8")
        assert admin.post("/v1/admin/program", json={"toml": toml}).status_code == 200
        csv = f"number,tier,status,balance\n{CARD},gold,active,1000\n" + "".join(
            f"{card_number(i)},silver,active,100\n" for i in range(SYNCED_CARDS)
        )
        r = admin.post("/v1/admin/cards/import", content=csv, headers={"Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        code = admin.post("/v1/admin/enroll-codes", json={"store": "bench", "till": "t1"})
        config = tmp / "till.toml"
        config.write_text(
            f'[till]\nid = "t1"\nstore = "bench"\ndata_dir = "till"\n[hq]\nurl = "{url}"\n'
            'credential_file = "till/credential.json"\n[sync]\ninterval_seconds = 2\n'
            '[logging]\nlevel = "WARNING"\n',
            encoding="utf-8",
        )
        args = ["--config", str(config)]
        cmd = [sys.executable, "-m", "tillgate.cli", "enroll", code.json()["code"], *args]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60, cwd=tmp)
        port = free_port()
        pos = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30))
        last = card_number(SYNCED_CARDS - 1)  # the feed's last page is in too
        ready = lambda: all(  # noqa: E731
            pos.get(f"/v1/cards/{c}").json().get("balance") for c in (CARD, last)
        )
        spawn(stack, tmp / "till.log", "run", *args, "--port", str(port), ready=ready)
        db = tmp / "till" / "tillgate.sqlite3"
        _sale(pos, "warm", CARD)  # the first receipt's one-off rows (first purchase, ...)
        _wait_synced(db)
        before = _used_bytes(db)
        rng = random.Random(6)
        for i in range(n):
            _sale(pos, f"R{i}", card_number(rng.randrange(SYNCED_CARDS)))
        _wait_synced(db)
        after = _used_bytes(db)
    return {"per_receipt": (after - before) / n, "before": before, "after": after}


def _wait_synced(db: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while _unsent(db):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{_unsent(db)} entries and facts still unsent after {timeout} s")
        time.sleep(0.5)


def run(scale: float = 1.0) -> Scaled:
    n = max(30, int(30_000 * scale))
    every = max(1, min(1000, n // 30))
    s = soak(n, every)
    m = max(20, int(5_000 * scale))
    with tempfile.TemporaryDirectory(prefix="bench-tillstore-hq-") as tmp:
        y = synced(m, Path(tmp))
    flat = s["steady"] <= s["first"] * 1.05 + 2
    wal_mib = s["wal_max"] / 2**20
    rows = [
        Row(
            what="agent RSS, steady over a 30k-receipt soak",
            measured=f"{s['steady']:.0f} MiB (first third {s['first']:.0f}, "
            f"{'flat' if flat else 'growing'})",
            target=f"≤ {RSS_TARGET_MIB:.0f} MiB, flat",
            met=s["steady"] <= RSS_TARGET_MIB and flat,
        ),
        Row(
            what="SQLite size per confirmed receipt (10 lines)",
            measured=f"{y['per_receipt']:,.0f} B after sync",
            target=f"≤ {BYTES_TARGET:,} B",
            met=y["per_receipt"] <= BYTES_TARGET,
        ),
        Row(
            what="SQLite WAL, largest over the soak",
            measured=f"{wal_mib:.1f} MiB",
            target=f"≤ {WAL_TARGET_MIB:.0f} MiB",
            met=wal_mib <= WAL_TARGET_MIB,
        ),
    ]
    samples = ", ".join(f"{v:.0f}" for v in s["rss"])
    detail = f"""\
Method: a standalone `tillgate run --config config.example.toml` (the sample shop, with a
cards file of {SOAK_CARDS:,} cards) took {n:,} receipts of 10 lines (calculate + confirm on a
random one of those cards) over HTTP from one client in
{s["seconds"]:.0f} s; RSS (VmRSS) sampled every {every:,} receipts: {samples} MiB. Steady
(median of the last third) {s["steady"]:.1f} MiB, first third {s["first"]:.1f} MiB. The WAL
file was at most {wal_mib:.1f} MiB; the data file ended at {s["file"] / 2**20:.1f} MiB
({s["used"] / n:,.0f} B of used pages per receipt, facts unsynced: a standalone till has no
head office to send them to).

A till enrolled at a `tillgate hq serve` on SQLite (with {SYNCED_CARDS:,} cards) took {m:,} more
receipts, each on a random card, and synced them:
its data file's used pages grew from {y["before"] / 2**20:.2f} to {y["after"] / 2**20:.2f} MiB,
**{y["per_receipt"]:,.0f} B per synced receipt**.
"""
    return Scaled(rows=rows, detail=detail)


if __name__ == "__main__":
    main(run)
