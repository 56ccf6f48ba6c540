"""Smoke run of bench/firststart.py at a tiny scale: it runs end to end and gives its rows.

``bench`` is not part of the installed package: the repository's root goes on the path for
this test alone (tests/bench has no ``__init__.py``: under pytest's importlib mode it
would itself be imported as ``bench`` and hide the real one).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_first_start_bench_runs_at_a_tiny_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    firststart = importlib.import_module("bench.firststart")
    result = firststart.run(scale=0.00002)  # 20 cards
    whats = [row.what for row in result.rows]
    assert any(w.startswith(firststart.WHAT) for w in whats), whats
    assert any(w.startswith(firststart.STALL) for w in whats), whats
    assert all(row.measured for row in result.rows)
    assert "| SQLite |" in result.detail
