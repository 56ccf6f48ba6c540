"""A real ``tillgate run`` with its devices on real ptys: printer faults, swipes, bad receipts.

The printer is a serial printer played by a test thread on a pty (it answers ``DLE EOT``
status queries); the agent reaches it through a symlink, so unplugging it is removing the
link and closing the pty, and plugging it back is a new pty behind the same link — what a
USB-serial printer's device node does.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.test_intercept_e2e import COUPON, open_port, pos_receipt, wait_for
from tests.conftest import ANNA, BLOCKED, CARDS, free_port, program, spawn_agent
from tests.drivers.fake_printer import PtyPrinter
from tillgate.drivers.escpos.model import QRCode
from tillgate.drivers.escpos.parser import parse

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pty ports are POSIX")


class Agent:
    """A running agent and its POS API."""

    def __init__(self, base: str, tmp: Path, proc: Any) -> None:
        self.base = base
        self.tmp = tmp
        self.proc = proc
        self.http = httpx.Client(base_url=base, timeout=10)

    def stop(self) -> None:
        """SIGTERM, as the service manager stops it; it must exit cleanly."""
        self.proc.terminate()
        assert self.proc.wait(timeout=15) == 0

    def status(self) -> dict[str, Any]:
        return dict(self.http.get("/v1/status").json())

    def sale(self, receipt_id: str, *, card: str | None = ANNA) -> dict[str, Any]:
        body: dict[str, Any] = {
            "receipt_id": receipt_id,
            "lines": [{"sku": "cake", "name": "Торт", "qty": 1, "price": "600.00"}],
        }
        if card:
            body["card"] = card
        calc = self.http.post("/v1/receipts/calculate", json=body)
        assert calc.status_code == 200, calc.text
        done = self.http.post(
            f"/v1/receipts/{receipt_id}/confirm", json={"paid": calc.json()["total"]}
        )
        assert done.status_code == 200, done.text
        return {"calculated": calc.json(), "confirmed": done.json()}


def plug(link: Path, printer: PtyPrinter) -> None:
    """Make the printer's device node appear (atomically, as udev does)."""
    tmp = link.with_suffix(".new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(printer.path)
    tmp.replace(link)


def unplug(link: Path, printer: PtyPrinter) -> None:
    link.unlink(missing_ok=True)
    printer.close()


def codes(data: bytes) -> list[str]:
    return [b.data for b in parse(data).blocks if isinstance(b, QRCode)]


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    procs: list[Any] = []

    def start(*, intercept: bool = False, extra: str = "", **program_keys: Any) -> Agent:
        (tmp_path / "program.json").write_text(
            json.dumps(program(COUPON, **program_keys), ensure_ascii=False), encoding="utf-8"
        )
        rows = ["number,holder,phone,birthday,tier,segments,clubs,status,balance"]
        rows += [f"{c.number},{c.holder},,,{c.tier or ''},,,{c.status},0" for c in CARDS]
        (tmp_path / "cards.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        config = tmp_path / "config.toml"
        text = f"""
[till]
id = "till-1"
store = "store-01"
data_dir = "{tmp_path / "data"}"
language = "ru"

[standalone]
program_file = "program.json"
cards_file = "cards.csv"

[devices.printer]
url = "serial://{tmp_path / "printer"}"
profile = "TM-T88V"
codepage = "cp866"
poll_seconds = 0.5

[devices.card_reader]
url = "pty:{tmp_path / "reader"}"
"""
        if intercept:
            text += f"""
[intercept]
enabled = true
pos_side = "pty:{tmp_path / "pos"}"
"""
        config.write_text(text + extra, encoding="utf-8")
        port = free_port()
        log = (tmp_path / f"agent-{len(procs)}.log").open("w+")
        proc = spawn_agent(config, port=port, cwd=tmp_path, stderr=log)
        procs.append((proc, log))
        return Agent(f"http://127.0.0.1:{port}", tmp_path, proc)

    yield start
    for proc, log in procs:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=15)
        finally:
            log.close()
        assert proc.returncode == 0, Path(log.name).read_text()


def printer_state(agent: Agent) -> str:
    return str(agent.status()["devices"]["printer"]["status"])


@pytest.fixture
def make_printer() -> Iterator[Callable[[], PtyPrinter]]:
    """Serial printers played on ptys, all closed when the test ends (twice is harmless)."""
    made: list[PtyPrinter] = []

    def make() -> PtyPrinter:
        made.append(PtyPrinter())
        return made[-1]

    yield make
    for printer in made:
        printer.close()


@pytest.fixture
def far_end(tmp_path: Path) -> Iterator[Callable[[str], int]]:
    """The POS's or the reader's end of an agent's ``pty:`` port, closed when the test ends."""
    fds: list[int] = []

    def open_end(name: str) -> int:
        fds.append(open_port(tmp_path / name))
        return fds[-1]

    yield open_end
    for fd in fds:
        os.close(fd)


@pytest.fixture
def start_online(start_agent: Callable[..., Agent], tmp_path: Path) -> Callable[..., Agent]:
    """Start an agent with a printer already plugged in; return once it sees it online."""

    def start(printer: PtyPrinter, **options: Any) -> Agent:
        plug(tmp_path / "printer", printer)
        agent = start_agent(**options)
        wait_for(lambda: printer_state(agent) == "online", what="the printer to be online")
        return agent

    return start


def test_printer_missing_the_sale_completes_and_the_coupon_prints_when_it_is_plugged_in(
    start_agent: Callable[..., Agent], make_printer: Callable[[], PtyPrinter], tmp_path: Path
) -> None:
    agent = start_agent()
    wait_for(lambda: printer_state(agent) == "offline", what="the missing printer to be offline")

    sale = agent.sale("R1")
    hints = [h["text"] for h in sale["calculated"]["hints"] if h["kind"] == "device"]
    assert hints and "Принтер" in hints[0], sale["calculated"]["hints"]
    printed = sale["confirmed"]["printed"]
    assert [p["kind"] for p in printed] == ["coupon"]
    assert agent.status()["devices"]["printer"]["queued"] == 1

    printer = make_printer()
    plug(tmp_path / "printer", printer)
    wait_for(lambda: codes(printer.got()) == [printed[0]["code"]], what="the coupon to print")
    wait_for(lambda: printer_state(agent) == "online", what="the printer to be online")
    assert agent.status()["devices"]["printer"]["queued"] == 0
    # Nothing about the printer any more on the next receipt.
    calc = agent.http.post(
        "/v1/receipts/calculate",
        json={"receipt_id": "R2", "lines": [{"sku": "a", "qty": 1, "price": "10.00"}]},
    ).json()
    assert not [h for h in calc["hints"] if h["kind"] == "device"]


def test_a_coupon_still_queued_when_the_agent_stops_prints_after_it_restarts(
    start_agent: Callable[..., Agent],
    start_online: Callable[..., Agent],
    make_printer: Callable[[], PtyPrinter],
    tmp_path: Path,
) -> None:
    agent = start_agent()
    wait_for(lambda: printer_state(agent) == "offline", what="the missing printer to be offline")
    code = agent.sale("R1")["confirmed"]["printed"][0]["code"]
    agent.stop()  # an update, a reboot: the printer never came back meanwhile

    printer = make_printer()
    again = start_online(printer)
    wait_for(lambda: codes(printer.got()) == [code], what="the coupon to print after restart")
    wait_for(lambda: again.status()["devices"]["printer"]["queued"] == 0, what="an empty queue")
    assert list((tmp_path / "data" / "print-spool").glob("*.job")) == []


def test_paper_out_tells_the_cashier_and_the_coupon_waits_for_paper(
    start_online: Callable[..., Agent], make_printer: Callable[[], PtyPrinter]
) -> None:
    printer = make_printer()
    agent = start_online(printer)
    printer.paper_end = True
    wait_for(lambda: printer_state(agent) == "paper_out", what="paper out to be seen")

    sale = agent.sale("R1")
    hints = [h["text"] for h in sale["calculated"]["hints"] if h["kind"] == "device"]
    assert hints == ["Принтер: нет бумаги"], sale["calculated"]["hints"]
    code = sale["confirmed"]["printed"][0]["code"]
    time.sleep(1.5)  # three polls: the job must not be written while there is no paper
    assert codes(printer.got()) == []

    printer.paper_end = False
    wait_for(lambda: codes(printer.got()) == [code], what="the coupon to print after paper")
    wait_for(lambda: printer_state(agent) == "online", what="the printer to be online")


def test_printer_unplugged_mid_receipt_gets_the_rest_when_it_returns(
    start_online: Callable[..., Agent],
    make_printer: Callable[[], PtyPrinter],
    far_end: Callable[[str], int],
    tmp_path: Path,
) -> None:
    first, second = make_printer(), make_printer()
    link = tmp_path / "printer"
    agent = start_online(first, intercept=True)
    pos, reader = far_end("pos"), far_end("reader")
    os.write(reader, f";{ANNA}=2812101?\r".encode())
    wait_for(lambda: agent.status()["card_session"], what="the swipe")
    original = pos_receipt(77)
    half = len(original) // 2
    os.write(pos, original[:half])
    wait_for(lambda: len(first.got()) >= half, what="the first half to print")

    unplug(link, first)
    wait_for(lambda: printer_state(agent) == "offline", what="the printer to go offline")
    os.write(pos, original[half:])  # the POS does not know: it goes on printing
    wait_for(
        lambda: agent.status()["devices"]["intercept"]["confirmed"] == 1,
        what="the receipt to be confirmed while the printer is away",
    )
    plug(link, second)
    cut = original.rindex(b"\x1dV")
    wait_for(lambda: second.got().endswith(original[cut:]), what="the rest and the cut")
    got = second.got()
    # Everything written after the printer went away reaches the new one, in order, with
    # the loyalty block before the cut.
    assert original[half:cut] in got
    block = got[got.index(original[half:cut]) + len(original[half:cut]) : -len(original[cut:])]
    assert "ПРОГРАММА ЛОЯЛЬНОСТИ" in block.decode("cp866", errors="replace")
    card = agent.http.get(f"/v1/cards/{ANNA}").json()
    assert [h["receipt_id"][:7] for h in card["history"] if h["kind"] == "accrue"] == ["pos-77-"]


def test_swipes_start_the_session_and_bad_reads_are_reported(
    start_agent: Callable[..., Agent], far_end: Callable[[str], int], tmp_path: Path
) -> None:
    agent = start_agent(register_unknown_cards=False)
    reader = far_end("reader")
    events: list[dict[str, Any]] = []
    unknown = "2900000000999"
    with agent.http.stream("GET", "/v1/events", timeout=20) as stream:
        lines = stream.iter_lines()
        os.write(reader, f";{unknown}=2812101?\r".encode())  # not a card of this shop
        os.write(reader, f";{BLOCKED}=2812101?\r".encode())  # a blocked card
        os.write(reader, b"%B\x00\xff garbage\r")  # a broken swipe
        os.write(reader, f";{ANNA}=2812101?\r".encode())
        kind = ""
        for text in lines:
            if text.startswith("event: "):
                kind = text[7:]
            elif text.startswith("data: "):
                events.append({"sse": kind, **json.loads(text[6:])})
                last = events[-1]
                if last.get("event") == "card_presented" and "0011" in last.get("card", ""):
                    break
    everything = json.dumps(events, ensure_ascii=False)
    device = [e for e in events if e["sse"] == "device" and e.get("device") == "card_reader"]
    reads = [e for e in device if e["event"] != "status_changed"]
    outcomes = [(e["event"], e.get("card")) for e in reads]
    assert outcomes == [
        ("card_presented", "2900•••••0999"),
        ("card_presented", "2900•••••0042"),
        ("read_rejected", None),
        ("card_presented", "2900•••••0011"),
    ], everything
    assert "not known" in reads[0]["problem"], reads[0]
    warnings = [
        h["text"]
        for e in events
        if e["sse"] == "hints"
        for h in e["hints"]
        if h["kind"] == "warning"
    ]
    assert any("0999" in w for w in warnings) and any("заблокирована" in w for w in warnings)
    assert "garbage" in reads[2]["reason"]
    for number in (ANNA, BLOCKED, unknown):
        assert number not in everything  # masked everywhere
    assert agent.status()["card_session"] == {"card": "2900•••••0011", "source": "card_reader"}
    log = (tmp_path / "agent-0.log").read_text(encoding="utf-8")
    assert ANNA not in log and BLOCKED not in log and unknown not in log


def test_an_unreadable_receipt_is_forwarded_untouched_and_reported(
    start_online: Callable[..., Agent],
    make_printer: Callable[[], PtyPrinter],
    far_end: Callable[[str], int],
) -> None:
    printer = make_printer()
    agent = start_online(printer, intercept=True)
    receipt = b"\x1b@\x1bt\x11" + "Спасибо за покупку!\n".encode("cp866") + b"\x1dV\x00"
    os.write(far_end("pos"), receipt)
    wait_for(lambda: printer.got().endswith(b"\x1dV\x00"), what="the receipt to print")
    assert printer.got() == receipt
    intercept = agent.status()["devices"]["intercept"]
    assert intercept["unreadable"] == 1 and intercept["confirmed"] == 0
    assert intercept["last_problem"]


def test_the_pos_status_queries_are_answered_by_the_printer_through_the_agent(
    start_online: Callable[..., Agent],
    make_printer: Callable[[], PtyPrinter],
    far_end: Callable[[str], int],
) -> None:
    printer = make_printer()
    agent = start_online(printer, intercept=True)
    pos = far_end("pos")
    answers = []
    for paper_end in (False, True):
        printer.paper_end = paper_end
        for n in (1, 4):
            os.write(pos, b"\x10\x04" + bytes([n]))  # DLE EOT n, as a POS asks
            answers.append(read_one(pos))
    # Online and paper present: the fixed bits 0x12; out of paper: the offline bit (0x08)
    # and the near-end and end sensor bits (0x0C, 0x60).
    assert answers == [0x12, 0x12, 0x1A, 0x7E]
    assert agent.status()["devices"]["intercept"]["receipts"] == 0  # queries are no receipt


def read_one(fd: int, timeout: float = 5.0) -> int:
    """One byte from the POS's end of its port (the printer's answer), or fail."""
    ready, _, _ = select.select([fd], [], [], timeout)
    assert ready, "the POS got no answer to its status query"
    data = os.read(fd, 1)
    assert len(data) == 1
    return data[0]
