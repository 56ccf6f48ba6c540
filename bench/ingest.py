"""Head office ingest (issue 15): tills' 1,000-entry pushes into ``tillgate hq serve``.

Real ``hq serve`` processes (on a SQLite file, and on PostgreSQL when ``TILLGATE_BENCH_PG``
or ``TILLGATE_TEST_PG`` names one), tills enrolled with one-time codes, and pushes in the
sync wire format: sales as a till records them — an ``accrue`` entry per sale, a ``redeem``
for one sale in five, and the sale's receipt facts (the engine's inputs and outcome, so
head office re-prices them as it would a till's). Several clients push at once, each its
own tills' batches in order; entries/s is the client's wall clock from the first push to
the last reply. On PostgreSQL the same load also runs across 1, 2 and 4 ``hq serve``
processes on one database (the pushes spread over them round robin; no target).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, Scaled, free_port, main, pg_schema, spawn

ENTRIES = 200_000  # at scale 1
BATCH = 1_000
TILLS = 8
CLIENTS = 4
CARDS = 20_000
TARGETS = {"SQLite": 20_000, "PostgreSQL": 50_000}


def start_servers(stack: ExitStack, db: str, tmp: Path, n: int) -> tuple[list[str], list[int]]:
    """``n`` ``hq serve`` processes on one database and data folder; their URLs and pids."""
    import httpx

    urls, pids = [], []
    for _ in range(n):  # one after the other: the first migrates
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        args = ["hq", "serve", "--db", db, "--port", str(port), "--data-dir", str(tmp)]
        up = lambda u=url: httpx.get(f"{u}/healthz").status_code == 200  # noqa: E731
        pids.append(spawn(stack, tmp / "hq.log", *args, "--log-level", "WARNING", ready=up).pid)
        urls.append(url)
    return urls, pids


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes used so far (Linux ``/proc``; 0 elsewhere): what
    head office spent, which a loaded host's wall clock does not say."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def sale_calculation(card: str, now: datetime, *, redeem: int = 0) -> tuple[dict[str, Any], ...]:
    """A three-line sale priced by the engine under the example program (``redeem``: points
    the customer spends on it): the facts' ``calculation``, the points it accrued and
    redeemed, and its total paid."""
    from tillgate.core.rules.engine import Catalog, evaluate
    from tillgate.core.rules.facts import encode_inputs, encode_outcome
    from tillgate.core.rules.model import Context, Customer, Line, Request
    from tillgate.core.rules.program import ProgramFile

    catalog = Catalog.build(ProgramFile.model_validate(_program()))
    lines = tuple(
        Line(index=i, sku=f"SKU{i}", name=f"item {i}", qty=Decimal(1 + i),
             price=Decimal("49.90") + i, category=("dairy", "bakery", "grocery")[i])
        for i in range(3)
    )  # fmt: skip
    customer = Customer(number=card, tier="silver", balance=10_000, redeemable=10_000)
    request = Request(lines=lines, customer=customer, redeem=redeem)
    context = Context(now=now.replace(tzinfo=None), store="bench", till="t")
    result = evaluate(catalog, request, context)
    calc = {
        "program_version": "1",
        "offline": False,
        "inputs": encode_inputs(request, context),
        "outcome": encode_outcome(request, result),
    }
    total = int(result.total)
    paid = f"{total // 100}.{total % 100:02d}"
    return calc, result.accrued_points, result.redeemed_points, paid


def _program() -> dict[str, Any]:
    import tomllib

    return tomllib.loads((ROOT / "program.example.toml").read_text("utf-8"))


def pushes(
    till: str, n: int, *, batch: int = BATCH, cards: int = CARDS, facts_too: bool = True
) -> list[bytes]:
    """A till's ``n`` entries as push bodies of ``batch`` entries, in seq order (without
    ``facts_too``: the entries alone, no receipt facts)."""
    now = datetime.now(UTC) - timedelta(hours=1)
    year = now + timedelta(days=365)
    # Two kinds of sale, as the engine priced them: one in five spends points.
    kinds = [
        sale_calculation("2900000000000", now),
        sale_calculation("2900000000000", now, redeem=20),
    ]
    out, entries, facts = [], [], []
    seq = k = 0
    while seq < n:
        k += 1
        calc, points, spent, total = kinds[k % 5 == 0 and seq + 2 <= n]
        card = f"29{(hash((till, k)) % cards):011d}"
        receipt = f"{till}-R{k}"
        at = (now + timedelta(milliseconds=k)).isoformat()
        sale = {"till": till, "card": card, "receipt_id": receipt, "created_at": at}
        if spent:
            seq += 1
            entries.append({**sale, "id": f"{till}-{seq}", "seq": seq, "kind": "redeem",
                            "points": -spent})  # fmt: skip
        seq += 1
        entries.append({**sale, "id": f"{till}-{seq}", "seq": seq, "kind": "accrue",
                        "points": points, "available_from": at,
                        "expires_at": year.isoformat()})  # fmt: skip
        body = {"receipt_id": receipt, "till": till, "store": "bench", "card": card,
                "confirmed_at": at, "local_time": at, "offline": False, "paid_reported": None,
                "fiscal_id": None, "total": total, "accrued": points, "redeemed": spent,
                "uses": [], "budget": {}, "stamps": {}, "calculation": calc}  # fmt: skip
        if facts_too:
            facts.append({"id": f"sale:{receipt}", "kind": "sale", "receipt_id": receipt,
                          "after_seq": seq, "created_at": at, "body": body})  # fmt: skip
        if len(entries) >= batch or seq >= n:
            push = {"till": till, "entries": entries, "facts": facts}
            out.append(json.dumps(push).encode())
            entries, facts = [], []
    return out


def _setup(admin: Any, urls: list[str], tills: int, cards: int) -> list[tuple[str, str]]:
    """Program, cards, tills enrolled: each till's id and credential."""
    import httpx

    def ok(path: str, **kw: Any) -> Any:
        r = admin.post(path, **kw)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
        return r.json()

    ok("/v1/admin/program", json={"toml": (ROOT / "program.example.toml").read_text("utf-8")})
    csv = "number,tier,status,balance\n" + "".join(
        f"29{i:011d},silver,active,1000\n" for i in range(cards)
    )
    ok("/v1/admin/cards/import", content=csv, headers={"Content-Type": "text/csv"})
    out = []
    for t in range(tills):
        till = f"till{t:02d}"
        code = ok("/v1/admin/enroll-codes", json={"store": "bench", "till": till})["code"]
        r = httpx.post(f"{urls[t % len(urls)]}/v1/enroll", json={"code": code}, timeout=60)
        out.append((till, r.json()["credential"]))
    return out


def measure(
    db: str,
    tmp: Path,
    *,
    servers: int,
    total: int,
    batch: int = BATCH,
    cards: int = CARDS,
    facts_too: bool = True,
) -> tuple[float, float]:
    """Entries/s of ``total`` entries pushed by CLIENTS clients into ``servers`` hq serve,
    and the CPU ms those processes spent a push (HTTP, parsing, the ledger; not the
    database server's)."""
    import httpx

    with ExitStack() as stack:
        urls, pids = start_servers(stack, db, tmp, servers)
        token = (tmp / "hq-admin.token").read_text().strip()
        admin = stack.enter_context(
            httpx.Client(
                base_url=urls[0], timeout=300, headers={"Authorization": f"Bearer {token}"}
            )
        )
        tills = _setup(admin, urls, TILLS, cards)
        per_till = max(total // len(tills), 1)
        work = {
            till: (cred, pushes(till, per_till, batch=batch, cards=cards, facts_too=facts_too))
            for till, cred in tills
        }
        errors: list[str] = []

        def client(c: int) -> None:
            mine = [t for i, t in enumerate(work) if i % CLIENTS == c]
            with httpx.Client(timeout=300) as http:
                # Round robin over this client's tills (each in order), and over the servers.
                for k in range(max(len(work[t][1]) for t in mine) if mine else 0):
                    for j, till in enumerate(mine):
                        cred, bodies = work[till]
                        if k >= len(bodies):
                            continue
                        url = urls[(k + j + c) % len(urls)]
                        r = http.post(f"{url}/v1/sync/push", content=bodies[k], headers={
                            "Authorization": f"Bearer {cred}",
                            "Content-Type": "application/json"})  # fmt: skip
                        if r.status_code != 200 or r.json()["conflicts"]:
                            errors.append(f"{till} push {k}: {r.status_code} {r.text[:300]}")
                            return

        threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        cpu0 = cpu_seconds(pids)
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds(pids) - cpu0
        assert not errors, errors[0]
        sent = sum(len(json.loads(b)["entries"]) for _, bodies in work.values() for b in bodies)
        tills_seen = admin.get("/v1/admin/tills").json()
        stored = sum(t["through_seq"] for t in (tills_seen.get("tills") or tills_seen))
        assert stored == sent, (stored, sent)
        n_pushes = sum(len(bodies) for _, bodies in work.values())
        return sent / elapsed, cpu * 1000 / n_pushes


def run(scale: float = 1.0) -> Scaled:
    total = max(int(ENTRIES * scale), 2 * TILLS)
    batch = min(BATCH, max(total // TILLS, 1))
    pg = os.environ.get("TILLGATE_BENCH_PG") or os.environ.get("TILLGATE_TEST_PG") or ""
    runs = 3 if scale >= 0.1 else 1
    cards = max(100, int(CARDS * min(scale * 10, 1.0)))  # every card sells at 0.1 and up
    got: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:

        def one(key: str, servers: int = 1, *, facts_too: bool = True) -> None:
            """A run into a fresh head office (SQLite, or ``servers`` hq serve on a
            PostgreSQL schema of its own), its figures kept under ``key``."""
            here = Path(tmp) / f"run{sum(map(len, got.values()))}"
            here.mkdir()
            with ExitStack() as stack:
                pg_run = key.startswith("PostgreSQL")
                db = pg_schema(stack, pg) if pg_run else str(here / "hq.sqlite3")
                rate, ms = measure(db, here, servers=servers, total=total, batch=batch,
                                   cards=cards, facts_too=facts_too)  # fmt: skip
            got.setdefault(key, []).append(rate)
            cpu.setdefault(key, []).append(ms)

        for _ in range(runs):
            one("SQLite")
        if pg:
            for servers in (1, 2, 4):
                for _ in range(runs if servers == 1 else 1):
                    one(f"PostgreSQL x{servers}", servers)
        # The same entries without their receipt facts: not the row (ingest includes
        # the facts), the figure its owner asked for to weigh taking facts apart.
        for key in ("SQLite", *(["PostgreSQL x1"] if pg else [])):
            one(f"{key}, no receipt facts", facts_too=False)
    rows = []
    for name, target in TARGETS.items():
        key = name if name == "SQLite" else "PostgreSQL x1"
        if key not in got:
            continue
        rate = statistics.median(got[key])
        rows.append(
            Row(
                f"head office ingest, 1,000-entry pushes: {name}",
                f"{rate:,.0f} entries/s",
                f"≥ {target:,} entries/s",
                rate >= target,
            )
        )
    lines = [
        "### Head office ingest (`bench/ingest.py`)",
        "",
        f"{total:,} entries per run ({TILLS} tills, {CLIENTS} concurrent clients, pushes of"
        f" {batch} entries: an accrue per sale, a redeem for one sale in five, each sale's"
        " receipt facts with the engine's inputs and outcome, so re-pricing agrees);"
        " entries/s by the clients'"
        f" wall clock, median of {runs} run(s) for one process; CPU of the hq serve"
        " process(es) a push (HTTP, parsing, the ledger; not the database server's), median.",
        "",
        "| head office | entries/s (each run) | median | hq serve CPU ms a push |",
        "| --- | --- | --- | --- |",
    ]
    for key, rates in got.items():
        each = ", ".join(f"{r:,.0f}" for r in rates)
        ms = statistics.median(cpu[key])
        lines.append(f"| {key} | {each} | {statistics.median(rates):,.0f} | {ms:,.0f} |")
    lines += [
        "",
        'The rows "no receipt facts" push the same entries without their receipt facts'
        " (one run each): not the issue's row, which includes the facts; the figure for the"
        " decision on accepting facts apart from entries.",
    ]
    if not pg:
        lines += [
            "",
            "PostgreSQL not measured: neither TILLGATE_BENCH_PG nor TILLGATE_TEST_PG set.",
        ]
    return Scaled(rows=rows, detail="\n".join(lines) + "\n")


if __name__ == "__main__":
    main(run)
