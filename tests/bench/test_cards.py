"""Smoke run of bench/cards.py at a tiny scale: it measures every row it owns.

The bench runs in a process of its own, from the repository root, as it is run by hand
(its servers and their memory figures stay apart from pytest's process).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SMOKE = (
    "import dataclasses, json; from bench.cards import run; out = run(scale=0.00002); "
    "print(json.dumps({'rows': [dataclasses.asdict(r) for r in out.rows], "
    "'detail': out.detail}))"
)


def test_the_cards_bench_produces_its_rows() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SMOKE], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    whats = [row["what"] for row in out["rows"]]
    assert whats[:2] == [
        "agent RSS peak while loading a 1M-card CSV",
        "standalone restart on an unchanged 1M-card CSV",
    ]
    assert "`hq cards import` 1M cards: SQLite" in whats
    assert whats[-1] == "`hq cards import` 1M cards: peak RSS"
    assert all(row["measured"] for row in out["rows"])
    assert "20 cards" in out["detail"]
