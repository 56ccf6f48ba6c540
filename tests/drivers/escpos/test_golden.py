"""Golden ESC/POS streams: each ``golden/*.bin`` must decode to exactly its ``*.txt``.

``UPDATE_GOLDEN=1`` rewrites the ``.txt`` files from the current output (read the diff);
without it any difference fails.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

from tillgate.drivers.escpos import parse, render_text, tokenize

GOLDEN = Path(__file__).resolve().parent / "golden"
BINS = sorted(GOLDEN.glob("*.bin"))


def _make_golden() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_golden_files() -> None:
    assert len(BINS) >= 10


@pytest.mark.parametrize("path", BINS, ids=[p.stem for p in BINS])
def test_golden_text(path: Path) -> None:
    data = path.read_bytes()
    text = render_text(parse(data))
    expected = path.with_suffix(".txt")
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected.write_text(text, encoding="utf-8")
    assert expected.exists(), f"{expected.name} missing: run with UPDATE_GOLDEN=1"
    assert text == expected.read_text(encoding="utf-8")
    assert b"".join(t.raw for t in tokenize(data)) == data


def test_hand_written_streams_match_their_script() -> None:
    # The .bin files are what make_golden.py writes: nobody edited one by hand. (The
    # python-escpos one is left out: a new python-escpos may write other, equally good bytes.)
    for name, data in _make_golden().hand_written().items():
        assert (GOLDEN / f"{name}.bin").read_bytes() == data, name


def test_python_escpos_output_still_decodes_the_same() -> None:
    # Whatever bytes the installed python-escpos writes for the sample receipt, they must read
    # back as the same receipt.
    fresh = _make_golden().with_python_escpos()["python_escpos"]
    expected = (GOLDEN / "python_escpos.txt").read_text(encoding="utf-8")
    assert render_text(parse(fresh)) == expected
