"""Smoke run of bench/ingest.py at a tiny scale: it pushes through real hq serve processes
and produces its rows (the targets are the bench's business, not CI's).

Run as ``python -m bench.ingest`` from the repository: under pytest the name ``bench`` is
this test folder's package, not the benches'.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ingest_bench_produces_its_rows() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.ingest", "0.0005", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    names = [row["what"] for row in result["rows"]]
    assert names[0] == "head office ingest, 1,000-entry pushes: SQLite"
    pg = os.environ.get("TILLGATE_BENCH_PG") or os.environ.get("TILLGATE_TEST_PG")
    if pg:
        assert names[1] == "head office ingest, 1,000-entry pushes: PostgreSQL"
        assert "PostgreSQL x4" in result["detail"]
    assert all(row["measured"].endswith("entries/s") for row in result["rows"])
    assert "| SQLite, no receipt facts |" in result["detail"]
