"""An offline backlog reaching head office (issue 15): a chain till sells 5,000 receipts
while head office is out of reach, then one ``tillgate sync`` sends them all."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, Scaled, free_port, main, pg_schema, spawn
from bench.holds import start_hq

RECEIPTS = 5000
TARGET_S = 5.0
LINES = [{"sku": f"s{i}", "qty": 1, "price": "99.90", "category": "grocery"} for i in range(10)]


def _config(path: Path, url: str) -> None:
    path.write_text(
        f'[till]\nid = "till"\nstore = "bench"\ndata_dir = "till"\n[hq]\nurl = "{url}"\n'
        'credential_file = "till/credential.json"\n[logging]\nlevel = "WARNING"\n',
        encoding="utf-8",
    )


def _backlog(db: str, tmp: Path, receipts: int) -> tuple[float, int, float]:
    """Seconds ``tillgate sync`` took to send the backlog, the entries it sent, and the
    seconds the receipts took to sell."""
    import httpx

    with ExitStack() as stack:
        url, admin = start_hq(stack, db, tmp, timeout=120)

        def ok(path: str, **kw: Any) -> Any:
            r = admin.post(path, **kw)
            assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
            return r.json()

        cards = [f"29000{i:08d}" for i in range(100)]
        ok("/v1/admin/program", json={"toml": (ROOT / "program.example.toml").read_text("utf-8")})
        csv = "number,tier,status,balance\n" + "".join(f"{c},gold,active,500\n" for c in cards)
        ok("/v1/admin/cards/import", content=csv, headers={"Content-Type": "text/csv"})
        code = str(ok("/v1/admin/enroll-codes", json={"store": "bench", "till": "till"})["code"])
        config = tmp / "till.toml"
        _config(config, url)
        args = ["--config", str(config)]
        tillgate = [sys.executable, "-m", "tillgate.cli"]
        subprocess.run([*tillgate, "enroll", code, *args], check=True, capture_output=True)
        subprocess.run([*tillgate, "sync", *args], check=True, capture_output=True, timeout=120)

        # Head office out of reach (nothing listens there): the till sells offline.
        _config(config, f"http://127.0.0.1:{free_port()}")
        port = free_port()
        with ExitStack() as till:
            pos = till.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30))
            up = lambda: pos.get("/v1/status").status_code == 200  # noqa: E731
            spawn(till, tmp / "till.log", "run", *args, "--port", str(port), ready=up)
            t0 = time.perf_counter()
            for i in range(receipts):
                rid = f"B{i}"
                body = {"receipt_id": rid, "card": cards[i % len(cards)], "lines": LINES}
                r = pos.post("/v1/receipts/calculate", json=body)
                assert r.status_code == 200, r.text
                assert pos.post(f"/v1/receipts/{rid}/confirm").status_code == 200
            sold = time.perf_counter() - t0
            waiting = pos.get("/v1/status").json()["unsynced_entries"]
            assert waiting >= receipts, f"{waiting} entries wait for {receipts} receipts"

        _config(config, url)
        t0 = time.perf_counter()
        out = subprocess.run(
            [*tillgate, "sync", *args], check=True, capture_output=True, text=True, timeout=600
        )
        took = time.perf_counter() - t0
        sent = re.search(r"synced: (\d+) entries sent", out.stdout)
        assert sent and int(sent.group(1)) == waiting, out.stdout + out.stderr
        return took, int(sent.group(1)), sold


def run(scale: float = 1.0) -> Scaled:
    receipts = max(20, int(RECEIPTS * scale))
    pg = os.environ.get("TILLGATE_BENCH_PG") or os.environ.get("TILLGATE_TEST_PG", "")
    rows, lines = [], []
    for kind in ("SQLite", "PostgreSQL") if pg else ("SQLite",):
        with ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            db = pg_schema(stack, pg) if kind == "PostgreSQL" else ""
            took, sent, sold = _backlog(db, tmp, receipts)
        rows.append(
            Row(
                f"offline backlog of {receipts:,} receipts reaching head office ({kind})",
                f"{took:.1f} s ({sent:,} entries)",
                f"≤ {TARGET_S:.0f} s",
                took <= TARGET_S,
            )
        )
        lines.append(
            f"| {kind} | {receipts:,} | {sent:,} | {took:.2f} s | {sent / took:,.0f} | "
            f"{sold:.1f} s |"
        )
    detail = (
        f"A chain till enrolled at a real `tillgate hq serve` sells {receipts:,} receipts "
        "(10 lines, on 100 cards: an accrual each, welcome bonuses on the first) with head "
        "office out of reach; then `tillgate sync` (a process: its start is in the time) "
        "sends the backlog and takes head office's changes.\n\n"
        "| head office | receipts | entries sent | `tillgate sync` | entries/s | selling them "
        "(offline) |\n| --- | --- | --- | --- | --- | --- |\n" + "\n".join(lines)
    )
    if not pg:
        detail += "\n\nPostgreSQL not measured: set `TILLGATE_BENCH_PG`."
    return Scaled(rows, detail)


if __name__ == "__main__":
    main(run)
