"""The till's latency at chain scale (issue 15): the rules engine alone, and calculate over
HTTP at a standalone ``tillgate run`` holding 1,000,000 cards and 1,000 promotions, beside a
trivial FastAPI endpoint served the same way and called from the same client."""

from __future__ import annotations

import csv
import gc
import json
import random
import subprocess
import sys
import tempfile
import time
import tomllib
from contextlib import ExitStack, suppress
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, Scaled, free_port, main

PROMOTIONS = 1000
CARDS = 1_000_000
CALLS = 5000  # timed calculates per basket size at scale 1.0
TRIVIAL = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/ping")
def ping() -> dict[str, bool]:
    return {"ok": True}
uvicorn.Server(uvicorn.Config(app, port=int(sys.argv[1]), log_config=None, access_log=False,
                              lifespan="off")).run()
"""


def promotions(n: int, *, seed: int = 1) -> list[dict[str, Any]]:
    """``n`` active promotions of random kinds, stacking and priorities, 3 SKUs each out of
    5,000 (``sku0`` … ``sku4999``)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.choice(["percent", "amount", "points", "price"])
        reward = {
            "percent": {"kind": "percent", "value": rng.randint(1, 30), "on": "matching"},
            "amount": {"kind": "amount", "value": "10.00", "on": "matching"},
            "points": {"kind": "points", "value": 5},
            "price": {"kind": "price", "value": "9.99"},
        }[kind]
        out.append(
            {
                "id": f"p{i}",
                "name": f"p{i}",
                "priority": rng.randint(0, 100),
                "stacking": rng.choice(["stackable", "exclusive", "best"]),
                "who": {"card": False},
                "when": {"items": {"skus": [f"sku{rng.randrange(5000)}" for _ in range(3)]}},
                "reward": reward,
            }
        )
    return out


def program(n: int) -> dict[str, Any]:
    """The sample program's settings and tiers with ``n`` generated promotions."""
    with (ROOT / "program.example.toml").open("rb") as f:
        sample = tomllib.load(f)
    return {"program": sample["program"], "promotions": promotions(n)}


def card_number(i: int) -> str:
    return f"29{i:011d}"


def write_cards(path: Path, n: int) -> None:
    """``n`` cards in the cards CSV format, every tenth with a birthday and a segment."""
    rng = random.Random(2)
    tiers = ("silver", "gold", "platinum")
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(("number", "holder", "phone", "birthday", "tier", "segments", "balance"))
        for i in range(n):
            w.writerow(
                (
                    card_number(i),
                    f"Покупатель {i}",
                    f"+79{i % 10**9:09d}",
                    f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}" if i % 10 == 0 else "",
                    tiers[i % 3],
                    "pensioners" if i % 10 == 3 else "",
                    rng.randrange(0, 5000),
                )
            )


def _percentile(ts: list[float], q: float) -> float:
    ts = sorted(ts)
    return ts[min(len(ts) - 1, int(len(ts) * q))] * 1000


def engine(calls: int) -> tuple[float, float]:
    """p50 and p99 (ms) of one evaluation of a 10-line basket against 1,000 promotions."""
    from tillgate.core.rules import model as m
    from tillgate.core.rules.engine import Catalog, evaluate
    from tillgate.core.rules.program import decode_program

    catalog = Catalog.build(
        decode_program(json.dumps(program(PROMOTIONS)), fmt="json", source="bench")
    )
    gc.freeze()  # as the till does once its program is in force
    ctx = m.Context(now=datetime(2026, 11, 23, 10, 0), store="s", till="t")
    cust = m.Customer(number=card_number(7), tier="silver", balance=1000, redeemable=1000)
    lines = tuple(
        m.Line(index=i, sku=f"sku{i * 7}", qty=Decimal(2), price=Decimal("99.90"))
        for i in range(10)
    )
    req = m.Request(lines=lines, customer=cust, redeem="max")
    for _ in range(min(500, calls)):
        evaluate(catalog, req, ctx)
    ts = []
    for _ in range(calls):
        t0 = time.perf_counter()
        evaluate(catalog, req, ctx)
        ts.append(time.perf_counter() - t0)
    gc.unfreeze()
    return _percentile(ts, 0.5), _percentile(ts, 0.99)


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _spawn(stack: ExitStack, args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    log = (cwd / f"{len(list(cwd.glob('*.log')))}.log").open("ab")
    stack.callback(log.close)
    proc = subprocess.Popen(args, cwd=cwd, stdout=log, stderr=log)
    stack.callback(proc.wait, 15)
    stack.callback(proc.terminate)
    return proc


def till(stack: ExitStack, tmp: Path, cards: int) -> int:
    """A standalone ``tillgate run`` in ``tmp`` with 1,000 promotions and ``cards`` cards,
    once it answers; its port."""
    (tmp / "program.json").write_text(json.dumps(program(PROMOTIONS)), encoding="utf-8")
    write_cards(tmp / "cards.csv", cards)
    config = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    config = config.replace('"program.example.toml"', '"program.json"')
    config = config.replace('"cards.example.csv"', '"cards.csv"')
    (tmp / "config.toml").write_text(config, encoding="utf-8")
    port = free_port()
    args = ["run", "--config", "config.toml", "--port", str(port), "--log-level", "WARNING"]
    proc = _spawn(stack, [sys.executable, "-m", "tillgate.cli", *args], tmp)
    _wait(f"http://127.0.0.1:{port}/v1/status", proc)
    return port


Timing = tuple[dict[int, tuple[float, float]], float]


def http(calls: int, cards: int, runs: int = 1) -> list[Timing]:
    """Per run: calculate's p50 and p99 (ms) by basket size, and the trivial endpoint's
    p50. The runs go one after the other against the same till and the same endpoint."""
    import httpx

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        port = till(stack, tmp, cards)
        ping = free_port()
        trivial = _spawn(stack, [sys.executable, "-c", TRIVIAL, str(ping)], tmp)
        _wait(f"http://127.0.0.1:{ping}/ping", trivial)
        client = stack.enter_context(httpx.Client(timeout=10))
        # The client is the instrument: its own collector (a young pass ≈ 0.3 ms here, a
        # full one 5–12 ms) must not land in a timed call. What the timed loops leave is
        # collected after them.
        gc.collect()
        gc.freeze()
        gc.disable()
        rng = random.Random(3)
        timings = [_timed(client, ping, port, calls, cards, rng, run) for run in range(runs)]
        gc.enable()
        gc.unfreeze()
        return timings


def _timed(
    client: Any, ping: int, port: int, calls: int, cards: int, rng: random.Random, run: int
) -> Timing:
    """One run of :func:`http`: the trivial endpoint, then calculates of 10 and 50 lines."""
    ts = []
    for _ in range(calls + 200):
        t0 = time.perf_counter()
        r = client.get(f"http://127.0.0.1:{ping}/ping")
        ts.append(time.perf_counter() - t0)
        assert r.status_code == 200
    trivial_p50 = _percentile(ts[200:], 0.5)
    out = {}
    base = f"http://127.0.0.1:{port}/v1/receipts"
    for size in (10, 50):
        lines = [
            {"sku": f"sku{i * 7}", "qty": 2, "price": "99.90", "category": "grocery"}
            for i in range(size)
        ]
        ts = []
        for i in range(calls + 200):
            rid = f"L{size}-{run}-{i}"
            body = {
                "receipt_id": rid,
                "card": card_number(rng.randrange(cards)),
                "lines": lines,
            }
            t0 = time.perf_counter()
            r = client.post(f"{base}/calculate", json=body)
            ts.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
            client.post(f"{base}/{rid}/confirm").raise_for_status()  # untimed
        out[size] = (_percentile(ts[200:], 0.5), _percentile(ts[200:], 0.99))
    return out, trivial_p50


# Runs of the HTTP loops at scale 1.0, their median reported: this host's speed drifts by
# a third from one hour to the next (the same calculate's CPU 1.9-3.5 ms), so one run's
# p99 says more of the hour than of the code. Each run is shown in the detail.
RUNS = 3


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def run(scale: float = 1.0) -> Scaled:
    calls = max(50, int(CALLS * scale))
    cards = max(100, int(CARDS * scale))
    runs = RUNS if scale >= 0.5 else 1
    e50, e99 = engine(calls)
    timings = http(calls, cards, runs)
    calc = {
        n: (_median([t[0][n][0] for t in timings]), _median([t[0][n][1] for t in timings]))
        for n in (10, 50)
    }
    trivial = _median([t[1] for t in timings])
    ratio = _median([t[0][10][0] / t[1] for t in timings])
    of = f", the median of {runs} runs" if runs > 1 else ""
    rows = [
        Row("engine alone, 10 lines, p99", f"{e99:.3f} ms (p50 {e50:.3f})", "≤ 0.3 ms", e99 <= 0.3),
        Row(
            "calculate over HTTP, 10 / 50 lines, p99",
            f"{calc[10][1]:.2f} / {calc[50][1]:.2f} ms (p50 {calc[10][0]:.2f} / "
            f"{calc[50][0]:.2f}){of}",
            "≤ 5 ms",
            max(calc[10][1], calc[50][1]) <= 5,
        ),
        Row(
            "calculate over HTTP, p50 against a trivial FastAPI endpoint",
            f"{ratio:.1f}× ({calc[10][0]:.2f} ms against {trivial:.2f} ms){of}",
            "≤ 3×",
            ratio <= 3,
        ),
    ]
    detail = (
        f"The engine: {calls:,} evaluations of a 10-line basket (every line on a promoted SKU, "
        f"a card with points, `redeem: max`) against {PROMOTIONS:,} active promotions, after "
        "500 unmeasured; the program's objects frozen out of the garbage collector as the till "
        "does. Over HTTP: a standalone `tillgate run` with those promotions and "
        f"{cards:,} cards (the cards file), one `httpx.Client` on loopback; {calls:,} "
        "calculates per basket size after 200 unmeasured, each on a random card and confirmed "
        "after (untimed), the client's garbage collector off while it times; "
        "the trivial endpoint is a one-route FastAPI app under uvicorn with "
        "the till's settings, called from the same client. "
        f"{runs} run(s) of the HTTP loops one after the other on the same till; the rows give "
        "each figure's median over the runs.\n\n"
        "| run | engine, 10 lines: p50 / p99 | trivial endpoint: p50 | calculate, 10 lines: "
        "p50 / p99 | calculate, 50 lines: p50 / p99 |\n| --- | --- | --- | --- | --- |\n"
        + "".join(
            f"| {i + 1} | {e50:.3f} / {e99:.3f} ms | {t[1]:.2f} ms | "
            f"{t[0][10][0]:.2f} / {t[0][10][1]:.2f} ms | "
            f"{t[0][50][0]:.2f} / {t[0][50][1]:.2f} ms |\n"
            for i, t in enumerate(timings)
        )
        + f"| median | | {trivial:.2f} ms | {calc[10][0]:.2f} / {calc[10][1]:.2f} ms | "
        f"{calc[50][0]:.2f} / {calc[50][1]:.2f} ms |\n"
    )
    return Scaled(rows, detail)


if __name__ == "__main__":
    main(run)
