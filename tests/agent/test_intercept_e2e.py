"""End to end: a POS prints through the agent while a card is swiped, on real pty ports.

A real ``tillgate run`` creates two virtual serial ports (the POS's printer port and the
card reader) and prints to a ``file://`` printer. The test plays the POS and the card
reader on the other ends of those ports, exactly as the real ones would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from escpos.printer import Dummy

from tests.conftest import ANNA, CARDS, free_port, program, spawn_agent

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pty ports are POSIX")

COUPON = {
    "id": "coffee-coupon",
    "name": "Купон на кофе",
    "who": {"card": True},
    "when": {"min_total": "100.00"},
    "reward": {
        "kind": "coupon",
        "title": "−15% на кофе",
        "valid_days": 14,
        "discount": {"kind": "percent", "value": 15, "on": "order"},
    },
}
BONUS = {
    "id": "bonus-50",
    "name": "50 баллов",
    "who": {"card": True},
    "reward": {"kind": "points", "value": 50},
}
# A money-off promotion: the POS has already priced the receipt, so it must not apply.
DAIRY = {
    "id": "dairy-10",
    "name": "Молочная неделя",
    "reward": {"kind": "percent", "value": 10, "on": "order"},
}


def pos_receipt(number: int) -> bytes:
    """A receipt as a POS makes it with python-escpos: CP866, a barcode, a QR code, a cut."""
    p = Dummy(profile="TM-T88V")
    p.hw("INIT")
    p.charcode("CP866")
    p.set(align="center", bold=True)
    p.text('ООО "Ромашка"\n')
    p.set(align="left", bold=False, normal_textsize=True)
    p.text(f"КАССОВЫЙ ЧЕК № {number}\n")
    p.text("Молоко 3,2% 1л\n")
    p.text("2 x 89.00                  =178.00\n")
    p.text("Хлеб бородинский\n")
    p.text("1 x 45.00                   =45.00\n")
    p.text("------------------------------------------\n")
    p.text("ИТОГ                       =223.00\n")
    p.text("НАЛИЧНЫМИ                  =250.00\n")
    p.barcode("4601234567893", "EAN13")
    p.qr("t=20261123T1030&s=223.00&fn=9999078900001234&i=55012", native=True)
    p.cut()
    return bytes(p.output)


def write_setup(tmp: Path) -> Path:
    (tmp / "program.json").write_text(
        json.dumps(program(COUPON, BONUS, DAIRY), ensure_ascii=False), encoding="utf-8"
    )
    rows = ["number,holder,phone,birthday,tier,segments,clubs,status,balance"]
    rows += [f"{c.number},{c.holder},,,{c.tier or ''},,,{c.status},0" for c in CARDS]
    (tmp / "cards.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = tmp / "config.toml"
    config.write_text(
        f"""
[till]
id = "till-1"
store = "store-01"
data_dir = "{tmp / "data"}"
language = "ru"

[standalone]
program_file = "program.json"
cards_file = "cards.csv"

[devices.printer]
url = "file://{tmp / "printer.bin"}"
profile = "TM-T88V"
codepage = "cp866"

[devices.card_reader]
url = "pty:{tmp / "reader"}"

[intercept]
enabled = true
pos_side = "pty:{tmp / "pos"}"
printer_side = "printer"
""",
        encoding="utf-8",
    )
    return config


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    config = write_setup(tmp_path)
    port = free_port()
    log = (tmp_path / "agent.log").open("w+")
    proc = spawn_agent(config, port=port, cwd=tmp_path, stderr=log)
    try:
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        finally:
            log.close()
    assert proc.returncode == 0, (tmp_path / "agent.log").read_text()


def wait_for(check: Any, timeout: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def open_port(path: Path) -> int:
    """The far end of an agent's pty port, opened the way a POS or reader would open it."""
    wait_for(path.exists, what=f"{path} to appear")
    import termios
    import tty

    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd, termios.TCSANOW)
    return fd


def test_pos_receipt_with_a_swiped_card_gets_a_coupon_before_its_cut(
    agent: tuple[str, Path],
) -> None:
    base, tmp = agent
    status = httpx.get(f"{base}/v1/status", timeout=5).json()
    assert status["devices"]["intercept"]["status"] == "online", status
    assert status["devices"]["card_reader"]["status"] == "online", status

    reader = open_port(tmp / "reader")
    pos = open_port(tmp / "pos")
    try:
        # Track 2 of Анна's card, as a serial MSR sends it (with a CR suffix).
        os.write(reader, f";{ANNA}=2812101?\r".encode())
        wait_for(
            lambda: httpx.get(f"{base}/v1/status", timeout=5).json().get("card_session"),
            what="the swipe to start a card session",
        )
        original = pos_receipt(1043)
        # The POS writes its receipt in small pieces, as a serial line would deliver it.
        for k in range(0, len(original), 64):
            os.write(pos, original[k : k + 64])
            time.sleep(0.002)
        cut = original.rindex(b"\x1dV")
        printed = wait_for(
            lambda: (
                data
                if (data := (tmp / "printer.bin").read_bytes()).endswith(original[cut:])
                else None
            ),
            what="the receipt and its cut to reach the printer",
        )
    finally:
        os.close(pos)
        os.close(reader)

    # Every byte of the POS's receipt, unchanged, with the agent's block before the cut.
    assert printed.startswith(original[:cut])
    block = printed[cut : len(printed) - (len(original) - cut)]
    assert block, "no block was inserted"

    card = httpx.get(f"{base}/v1/cards/{ANNA}", timeout=5).json()
    accrue = [h for h in card["history"] if h["kind"] == "accrue"]
    assert len(accrue) == 1
    # silver 3% of 223.00 (no money off: the POS priced it) = 6.69, plus 50 → 56.
    assert accrue[0]["points"] == 56
    assert accrue[0]["receipt_id"].startswith("pos-1043-")

    decoded = subprocess.run(
        [sys.executable, "-m", "tillgate.cli", "decode", str(tmp / "printer.bin")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "КАССОВЫЙ ЧЕК № 1043" in decoded
    assert "ИТОГ" in decoded
    assert "кофе" in decoded  # the coupon's title
    assert "+56" in decoded or "56" in decoded  # points earned
    assert ANNA not in decoded  # the card is masked on paper
    assert decoded.index("ИТОГ") < decoded.index("кофе")
