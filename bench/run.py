"""Benchmarks for tillgate; results go to docs/performance.md (see bench/README.md)."""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "performance.md"
sys.path.insert(0, str(ROOT))

from bench.common import Row, Scaled, free_port, reference_ms  # noqa: E402
from bench.holds import bench_holds  # noqa: E402
from bench.productmatch import bench_productmatch  # noqa: E402
from bench.products_feed import bench_products_feed  # noqa: E402


def bench_startup(runs: int = 7) -> str:
    times = []
    for _ in range(runs):
        tmp = Path(tempfile.mkdtemp())
        t0 = time.perf_counter()
        proc, _ = _agent(tmp)
        times.append(time.perf_counter() - t0)
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp)
    return (
        f"`tillgate run` to first answer, {runs} cold starts on a fresh data dir: "
        f"median **{statistics.median(times):.2f} s**, max {max(times):.2f} s "
        "(target < 3 s)."
    )


def _catalog(n: int):
    from bench.latency import promotions
    from tillgate.core.rules.engine import Catalog
    from tillgate.core.rules.program import parse_program

    program = {
        "name": "bench",
        "tiers": [{"name": "silver", "min_spend": "0", "accrue_percent": 3}],
    }
    return Catalog.build(parse_program({"program": program, "promotions": promotions(n)}))


def _time(fn: Callable[[], object], repeat: int) -> float:
    fn()
    best = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best.append((time.perf_counter() - t0) / repeat)
    return min(best)


def bench_engine() -> str:
    from tillgate.core.rules import model as m
    from tillgate.core.rules.engine import evaluate

    catalog = _catalog(1000)
    ctx = m.Context(now=datetime(2026, 11, 23, 10, 0), store="s", till="t")
    cust = m.Customer(number="2900000000011", tier="silver", balance=1000, redeemable=1000)
    rows = []
    for size in (20, 200):
        lines = tuple(
            m.Line(index=i, sku=f"sku{i * 7}", qty=Decimal(2), price=Decimal("99.90"))
            for i in range(size)
        )
        req = m.Request(lines=lines, customer=cust, redeem="max")
        t = _time(lambda req=req: evaluate(catalog, req, ctx), 20)
        rows.append(f"| {size} lines | {t * 1000:.2f} ms |")
    build = _time(lambda: _catalog(1000), 1)
    return (
        "1,000 active promotions (random kinds, stacking and priorities, 3 SKUs each):\n\n"
        "| basket | one evaluation |\n| --- | --- |\n"
        + "\n".join(rows)
        + f"\n\nParsing and indexing the 1,000-promotion program: {build * 1000:.0f} ms "
        "(once per program version)."
    )


def _agent(tmp: Path, config: Path | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """``tillgate run`` in ``tmp`` (the sample set-up unless ``config``), once it answers."""
    import httpx

    if config is None:
        for name in ("config.example.toml", "program.example.toml", "cards.example.csv"):
            shutil.copy(ROOT / name, tmp / name)
        config = tmp / "config.example.toml"
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tillgate.cli",
            "run",
            "--config",
            str(config),
            "--port",
            str(port),
            "--log-level",
            "WARNING",
        ],
        cwd=tmp,
    )
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.01)


def bench_api(n: int = 300) -> str:
    import httpx

    tmp = Path(tempfile.mkdtemp())
    proc, port = _agent(tmp)
    lines = [{"sku": f"s{i}", "qty": 2, "price": "99.90", "category": "grocery"} for i in range(10)]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        t0 = time.perf_counter()
        for i in range(n):
            r = http.post(
                "/v1/receipts/calculate",
                json={"receipt_id": f"B{i}", "card": "2900000012345", "lines": lines},
            )
            assert r.status_code == 200, r.text
            assert http.post(f"/v1/receipts/B{i}/confirm").status_code == 200
        dt = time.perf_counter() - t0
    proc.terminate()
    proc.wait()
    shutil.rmtree(tmp)
    return (
        f"{n} sales (10-line calculate + confirm on a card, the sample program, "
        "synchronous=FULL) over HTTP from one client: "
        f"**{dt / n * 1000:.1f} ms per sale** ({n / dt:.0f} sales/s)."
    )


def _pos_receipt(number: int) -> bytes:
    from escpos.printer import Dummy

    p = Dummy(profile="TM-T88V")
    p.hw("INIT")
    p.charcode("CP866")
    p.text(f"КАССОВЫЙ ЧЕК № {number}\n")
    for i in range(20):
        p.text(f"Товар {i}\n1 x 45.00                   =45.00\n")
    p.text("ИТОГ                       =900.00\n")
    p.barcode("4601234567893", "EAN13")
    p.qr(f"t=20261123T1030&s=900.00&i={number}", native=True)
    p.cut()
    return bytes(p.output)


def bench_escpos(repeat: int = 200) -> str:
    from tillgate.drivers.escpos.parser import parse
    from tillgate.drivers.escpos.stream import ReceiptStream
    from tillgate.drivers.escpos.text import render_text

    receipt = _pos_receipt(1)
    parse_s = _time(lambda: render_text(parse(receipt)), repeat)

    def split() -> None:
        stream = ReceiptStream()
        for k in range(0, len(receipt), 64):
            stream.feed(receipt[k : k + 64])

    stream_s = _time(split, repeat)
    size = len(receipt)
    return (
        f"A 20-item receipt of {size} bytes (CP866, EAN-13, QR, cut): parse + render to text "
        f"**{parse_s * 1000:.2f} ms**; the pass-through splitter fed it in 64-byte chunks "
        f"**{stream_s * 1000:.2f} ms** ({size / stream_s / 1e6:.1f} MB/s)."
    )


def bench_intercept(receipts: int = 50, lines: int = 200) -> str:
    """A real agent between two ptys: how long POS bytes take to reach the printer."""
    import select
    import threading
    import tty

    import httpx

    tmp = Path(tempfile.mkdtemp())
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    received = bytearray()
    arrivals: list[tuple[int, float]] = []  # (total bytes so far, when)
    stop = threading.Event()

    def printer() -> None:
        while not stop.is_set():
            if select.select([master], [], [], 0.05)[0]:
                received.extend(os.read(master, 65536))
                arrivals.append((len(received), time.perf_counter()))

    reader = threading.Thread(target=printer, daemon=True)
    reader.start()
    for name in ("program.example.toml", "cards.example.csv"):
        shutil.copy(ROOT / name, tmp / name)
    config = tmp / "config.toml"
    config.write_text(
        f"""
[till]
id = "bench"
store = "bench"
data_dir = "{tmp / "data"}"

[standalone]
program_file = "program.example.toml"
cards_file = "cards.example.csv"

[devices.printer]
url = "serial://{os.ttyname(slave)}"
status_poll = false

[intercept]
enabled = true
pos_side = "pty:{tmp / "pos"}"

[logging]
level = "WARNING"
""",
        encoding="utf-8",
    )
    proc, port = _agent(tmp, config)
    base = f"http://127.0.0.1:{port}"
    while not (tmp / "pos").exists():
        time.sleep(0.01)
    pos = os.open(tmp / "pos", os.O_RDWR | os.O_NOCTTY)
    tty.setraw(pos)

    def arrived(total: int, timeout: float = 10) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for size, when in list(arrivals):
                if size >= total:
                    return when
            time.sleep(0.0002)
        raise RuntimeError("bytes did not reach the printer")

    line_ms = []
    sent = 0
    for i in range(lines):
        data = f"line {i:04d} of a receipt being printed\n".encode()
        t0 = time.perf_counter()
        os.write(pos, data)
        sent += len(data)
        line_ms.append((arrived(sent) - t0) * 1000)
    os.write(pos, b"\x1dV\x01")  # end that receipt (unreadable: forwarded untouched)
    time.sleep(0.5)
    cut_ms = []
    for n in range(receipts):
        httpx.post(f"{base}/v1/session/card", json={"card": "2900000012345"}, timeout=5)
        receipt = _pos_receipt(1000 + n)
        at = receipt.rindex(b"\x1dV")
        body, cut = receipt[:at], receipt[at:]
        os.write(pos, body)
        time.sleep(0.05)
        before = len(received)
        t0 = time.perf_counter()
        os.write(pos, cut)
        deadline = time.perf_counter() + 10
        while not received.endswith(cut) or len(received) <= before:
            if time.perf_counter() > deadline:
                raise RuntimeError("the cut did not reach the printer")
            time.sleep(0.0002)
        cut_ms.append((arrivals[-1][1] - t0) * 1000)
    status = httpx.get(f"{base}/v1/status", timeout=5).json()["devices"]["intercept"]
    os.close(pos)
    proc.terminate()
    proc.wait()
    stop.set()
    reader.join()
    os.close(master)
    os.close(slave)
    shutil.rmtree(tmp)
    assert status["confirmed"] == receipts, status
    line_ms.sort()
    cut_ms.sort()
    return (
        f"A real `tillgate run` between a POS pty and a printer pty. {lines} receipt lines "
        f"written one by one: each reached the printer after median "
        f"**{statistics.median(line_ms):.2f} ms**, p95 {line_ms[int(len(line_ms) * 0.95)]:.2f} ms "
        f"(forwarded at once, not held for the receipt). {receipts} 20-item receipts with a "
        f"card: from the POS's cut to the cut at the printer — reading, pricing, confirming "
        f"and printing the loyalty block before it — median "
        f"**{statistics.median(cut_ms):.1f} ms**, p95 {cut_ms[int(len(cut_ms) * 0.95)]:.1f} ms."
    )


def bench_demo(runs: int = 3) -> str:
    """`tillgate demo` from the command to its exit (processes started and stopped)."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "tillgate.cli", "demo", "--out", f"{tmp}/demo"],
                check=True,
                capture_output=True,
                timeout=300,
            )
            times.append(time.perf_counter() - t0)
    return (
        f"`tillgate demo` (12 receipts, HQ and agent started, an offline spell, the sync after "
        f"it, every receipt drawn), {runs} runs: median **{statistics.median(times):.1f} s**, "
        f"max {max(times):.1f} s (target < 60 s, the install included)."
    )


BENCHES = {
    "startup": bench_startup,
    "engine": bench_engine,
    "api": bench_api,
    "escpos": bench_escpos,
    "intercept": bench_intercept,
    "demo": bench_demo,
    "holds": bench_holds,
    "productmatch": bench_productmatch,
    "products_feed": bench_products_feed,
}


# Issue 15's table: each module's ``run(scale)`` measures its rows at the issue's scale (1.0).
SCALED = ("latency", "cards", "tillstore", "firststart", "ingest", "backlog", "frozen", "fleet")
TABLE = "scale: every target"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's word for it."""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def pin(cpus: int = 2) -> str:
    """Run this process and its children on ``cpus`` CPUs (the issue's 2-core machine)."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    have = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, have[:cpus])
    return f"pinned to CPUs {', '.join(map(str, have[:cpus]))} of {os.cpu_count()}"


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu_model()}; {len(os.sched_getaffinity(0))} CPUs used; load average {load};"
        f" reference work {reference_ms():.0f} ms (bench/common.py `reference_ms`: the host's"
        " speed, lower is faster)"
    )


def scaled(name: str, scale: float) -> Scaled:
    """Run scale bench ``name``; a bench that fails is a row that says so (the others run)."""
    import importlib

    try:
        result: Scaled = importlib.import_module(f"bench.{name}").run(scale)
    except Exception as exc:  # reported as the bench's row, never hidden
        traceback.print_exc()
        return Scaled([Row(name, f"failed: {type(exc).__name__}: {exc}", "runs", False)], "")
    return result


def table(rows: list[Row]) -> str:
    lines = [f"| {r.what} | {r.measured} | {r.target} | {'met' if r.met else '**missed**'} |"
             for r in rows]  # fmt: skip
    return "| what | measured | target | |\n| --- | --- | --- | --- |\n" + "\n".join(lines)


def write(section: str, body: str) -> None:
    text = (
        OUT.read_text(encoding="utf-8")
        if OUT.exists()
        else (
            "# Performance\n\nMeasured by `bench/run.py` (see `bench/README.md`); "
            "each section says when and where.\n"
        )
    )
    stamp = (
        f"_{datetime.now().date()} · {platform.python_implementation()} "
        f"{platform.python_version()} · {platform.machine()}, "
        f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} "
        "cores_"
    )
    block = f"## {section}\n\n{stamp}\n\n{body}\n"
    pattern = re.compile(rf"## {section}\n.*?(?=\n## |\Z)", re.S)
    text = pattern.sub(block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    OUT.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    """``bench/run.py [--scale X] [NAME …]``: every bench (or those named), pinned to 2 CPUs;
    the scale benches' rows are printed against their targets and written to the table."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds: processes stopped
    args = sys.argv[1:]
    scale = 1.0
    if "--scale" in args:
        i = args.index("--scale")
        scale = float(args[i + 1])
        del args[i : i + 2]
    pinned = pin()
    names = args or [*BENCHES, *SCALED]
    unknown = [n for n in names if n not in BENCHES and n not in SCALED]
    if unknown:
        sys.exit(
            f"unknown bench(es): {', '.join(unknown)}; known: {', '.join([*BENCHES, *SCALED])}"
        )
    rows: list[Row] = []
    for name in names:
        if name in BENCHES:
            body = BENCHES[name]()
            print(f"{name}: {body}")
            write(name, body)
            continue
        result = scaled(name, scale)
        rows += result.rows
        for row in result.rows:
            print(f"{name}: {row.what}: {row.measured} (target {row.target}: "
                  f"{'met' if row.met else 'MISSED'})")  # fmt: skip
        if result.detail:
            write(f"scale: {name}", f"_{machine()}; scale {scale}_\n\n{result.detail}")
    if rows:
        met = sum(r.met for r in rows)
        body = (f"_{machine()}; {pinned}; scale {scale}_\n\n{table(rows)}\n\n"
                f"{met} of {len(rows)} met.")  # fmt: skip
        print(f"\n{table(rows)}\n\n{met} of {len(rows)} met.")
        if set(names) >= set(SCALED):  # the whole table: it replaces the last one
            write(TABLE, body)


if __name__ == "__main__":
    main()
