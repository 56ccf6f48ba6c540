"""Smoke run of bench/tillstore.py at a tiny scale: it produces its rows (not the targets)."""

from __future__ import annotations

from bench.tillstore import run


def test_the_tillstore_bench_produces_its_rows() -> None:
    out = run(0.001)
    assert [r.what for r in out.rows] == [
        "agent RSS, steady over a 30k-receipt soak",
        "SQLite size per confirmed receipt (10 lines)",
        "SQLite WAL, largest over the soak",
    ]
    assert all(r.measured for r in out.rows) and "per synced receipt" in out.detail
