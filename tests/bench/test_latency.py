"""Smoke runs of the latency and backlog benches at tiny scale (the figures are not checked
here: targets are for ``bench/run.py`` on a quiet machine, never for CI)."""

from __future__ import annotations

import os

import pytest

from bench import backlog, latency
from bench.run import table


def test_the_latency_bench_measures_its_rows() -> None:
    result = latency.run(0.001)
    assert [r.what for r in result.rows] == [
        "engine alone, 10 lines, p99",
        "calculate over HTTP, 10 / 50 lines, p99",
        "calculate over HTTP, p50 against a trivial FastAPI endpoint",
    ]
    assert all(" ms" in r.measured for r in result.rows[:2]), result.rows
    assert "| median |" in result.detail and "calculate, 50 lines" in result.detail
    assert "| engine alone, 10 lines, p99 |" in table(result.rows)


def test_the_backlog_bench_sends_every_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite, and on PostgreSQL when the tests have one (under CI they must)."""
    pg = os.environ.get("TILLGATE_TEST_PG")
    if not pg and os.environ.get("CI"):
        pytest.fail("CI must set TILLGATE_TEST_PG (.ci/run starts PostgreSQL)")
    monkeypatch.delenv("TILLGATE_BENCH_PG", raising=False)
    result = backlog.run(0.004)  # 20 receipts
    kinds = ["SQLite", "PostgreSQL"] if pg else ["SQLite"]
    assert [r.what for r in result.rows] == [
        f"offline backlog of 20 receipts reaching head office ({k})" for k in kinds
    ]
    # The bench itself checks that the sync sent every entry the till had waiting.
    assert all("entries)" in r.measured for r in result.rows), result.rows
