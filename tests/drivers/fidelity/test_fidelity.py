"""Other encoders' receipts decode to what their authors meant to print, line for line.

``corpus/*.bin`` were written by three independent ESC/POS encoders (npm receiptline,
@point-of-sale/receipt-printer-encoder, node-thermal-printer) and ``corpus/*.txt`` is the
text each receipt was meant to show; ``generate/`` rewrites both (node is not needed here).
"""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tillgate.cli import main
from tillgate.core.templates import Template
from tillgate.drivers.escpos import parse, render_text, tokenize

CORPUS = Path(__file__).resolve().parent / "corpus"
BINS = sorted(CORPUS.glob("*.bin"))
ENCODERS = ("receiptline", "receipt-printer-encoder", "node-thermal-printer")
# Epson character code tables the issue names: PC437, Katakana, PC850, WPC1252, PC866,
# PC852, PC858, WPC1251.
CODE_PAGES = {0, 1, 2, 16, 17, 18, 19, 46}


def _decoded(path: Path) -> list[str]:
    return render_text(parse(path.read_bytes())).splitlines()


def test_the_corpus_has_three_encoders_and_every_code_page() -> None:
    assert {p.stem for p in BINS} == {p.stem for p in CORPUS.glob("*.txt")}
    for encoder in ENCODERS:
        assert sum(p.name.startswith(encoder + "-") for p in BINS) >= 3, encoder
    selected = {t.raw[2] for p in BINS for t in tokenize(p.read_bytes()) if t.name == "ESC t"}
    assert selected >= CODE_PAGES


@pytest.mark.parametrize("path", BINS, ids=[p.stem for p in BINS])
def test_receipt_decodes_to_its_intended_text(path: Path) -> None:
    intended = path.with_suffix(".txt").read_text(encoding="utf-8").splitlines()
    assert _decoded(path) == intended


def test_receiptline_rules_come_out_as_box_drawing() -> None:
    lines = _decoded(CORPUS / "receiptline-cp866-ruled.bin")
    rules = [ln for ln in lines if ln.startswith(("╭", "├", "╰", "│"))]
    assert len(rules) == 7
    assert rules[0].startswith("╭───") and rules[0].endswith("╮")
    assert all("Х" not in ln or "Хлеб" in ln for ln in rules)  # not CP866's letter at 0x95


def test_double_size_total_reads_as_plain_letters() -> None:
    lines = _decoded(CORPUS / "receiptline-cp866-columns.bin")
    assert re.fullmatch(r"ИТОГО {2,}258\.90", lines[-4])
    assert not any("И Т" in ln for ln in lines)


def test_templates_read_a_positioned_receipt() -> None:
    text = render_text(parse((CORPUS / "receiptline-cp866-columns.bin").read_bytes()))
    read = Template.default().read(text)
    assert read.ok, read.problems
    assert [(ln.name, ln.amount) for ln in read.lines] == [
        ("Хлеб Бородинский", Decimal("54.90")),
        ("Кефир 1% 900 г", Decimal("75.00")),
        ("Гречка ядрица 900 г", Decimal("129.00")),
    ]
    assert (read.total, read.number) == (Decimal("258.90"), "2207")


def test_tillgate_decode_keeps_receiptlines_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", str(CORPUS / "receiptline-cp866-columns.bin")]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "Хлеб" in ln)
    # the name at column 0, the amount right-aligned in its 10-column field at 42
    assert line == "Хлеб Бородинский" + " " * 21 + "54.90"


def test_tillgate_decode_as_a_program() -> None:
    receipt = CORPUS / "receiptline-cp866-ruled.bin"
    result = subprocess.run(
        [sys.executable, "-m", "tillgate.cli", "decode", str(receipt)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    out = result.stdout.decode("utf-8")
    assert "│Хлеб Бородинский   │  1│  54.90│   54.90│" in out.splitlines()
