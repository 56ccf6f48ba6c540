"""A fleet of simulated tills against a real head office (issue 15, "Fleet simulator").

``python bench/fleet.py --tills 1000 --minutes 5 --pg URL`` (also ``--steps 100,1000,5000``,
``--processes 1,2,4``): for each fleet size and number of ``tillgate hq serve`` processes,
a head office of its own (a PostgreSQL schema dropped after, or a SQLite file), the tills
of bench/fleet_till.py spread over the processes, and a report of what head office did
for them: pushes, holds and pulls a second, each request kind's p50 and p99, the feed's
lag, CPU, the database's size and every error. The curve goes into docs/performance.md
(``--out``) and to stdout. ``run(scale)`` is bench/run.py's entry (1.0: 1,000 tills for
5 minutes, PostgreSQL when ``TILLGATE_BENCH_PG`` or ``TILLGATE_TEST_PG`` names one).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script: the repository root holds the bench package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Row, Scaled, free_port, pg_schema
from bench.fleet_till import KINDS, Plan, Template, work

NOTES = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
PROBE = "2999999999999"  # the card head office moves to time the feed's lag
PROBE_EVERY = 5.0  # seconds between two moves of the probe card
PROBE_TIMEOUT = 30.0
BASKETS = (  # (sku, qty, price, category) lines of the receipts the tills ring up
    [(f"g{i}", "2", "99.90", "grocery") for i in range(10)],
    [("m1", "1", "129.00", "dairy"), ("m2", "2", "89.50", "dairy"), ("b1", "1", "45.00", "bakery"),
     ("2000000000015", "1.234", "129.90", "produce")],
    [(f"h{i}", "1", "349.00", "household") for i in range(3)] + [("w1", "1", "899.00", "alcohol")],
)  # fmt: skip
REDEEM = 200  # points a redeeming receipt asks for (the engine may allow less: its grant)


def templates(program_toml: str, version: str) -> list[dict[str, dict[str, Any]]]:
    """Each basket priced by the real rules engine: with no card, on a card, on a card
    redeeming — the facts' ``calculation`` a till records, and the figures of its body."""
    from tillgate.core.rules.engine import Catalog, evaluate
    from tillgate.core.rules.facts import encode_inputs, encode_outcome
    from tillgate.core.rules.model import Context, Customer, Line, Request
    from tillgate.core.rules.program import parse_program

    catalog = Catalog.build(parse_program(tomllib.loads(program_toml)))
    now = datetime.now().replace(microsecond=0)
    out = []
    for basket in BASKETS:
        lines = tuple(
            Line(index=i, sku=sku, name=sku, qty=Decimal(q), price=Decimal(p), category=cat)
            for i, (sku, q, p, cat) in enumerate(basket)
        )
        kinds = {}
        for kind in ("none", "card", "redeem"):
            who = None if kind == "none" else Customer(
                number=PROBE, tier="silver", balance=9_000_000, redeemable=9_000_000
            )  # fmt: skip
            request = Request(lines=lines, customer=who, redeem=REDEEM if kind == "redeem" else 0)
            context = Context(now=now, store="s", till="t")
            result = evaluate(catalog, request, context)
            calc = {"program_version": version, "offline": False,
                    "inputs": encode_inputs(request, context),
                    "outcome": encode_outcome(request, result)}  # fmt: skip
            kinds[kind] = asdict(Template(
                calculation=calc, total=result.total, accrued=result.accrued_points,
                redeemed=result.redeemed_points, uses=list(result.uses),
                budget=dict(result.budget_points), stamps=dict(result.stamps),
            ))  # fmt: skip
        out.append(kinds)
    return out


def cpu_seconds(pid: int) -> float:
    """A live process's user + system CPU time so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pg_backends(hq_pids: list[int], db: str) -> list[int]:
    """The PostgreSQL backends serving ``hq_pids``: their sockets' local ports, as
    ``pg_stat_activity`` names its clients."""
    import psycopg

    inodes = set()
    for pid in hq_pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            link = os.readlink(fd) if fd.is_symlink() else ""
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    with psycopg.connect(db, connect_timeout=10) as conn:
        rows = conn.execute("SELECT pid, client_port FROM pg_stat_activity").fetchall()
    return [pid for pid, port in rows if port in ports]


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One run: a fleet size on a number of head-office processes, and what it did."""

    db: str  # "PostgreSQL" or "SQLite"
    processes: int
    tills: int
    seconds: float
    receipt_every: float
    enrolled: int
    receipts: int
    entries_made: int
    entries_pushed: int
    entries_in_db: int
    facts_made: int
    facts_in_db: int
    repriced: dict[str, int]
    holds_in_db: int
    ms: dict[str, list[float]]
    lags: list[float]
    probes: int
    snapshot_s: float
    cards: int
    hq_cpu: float  # CPU seconds of the head-office processes in the window
    pg_cpu: float  # of their PostgreSQL backends
    client_cpu: float
    db_bytes: int
    db_growth: int  # over the window
    errors: dict[str, int]
    error_samples: list[str]
    load: tuple[float, float]

    def rate(self, kind: str) -> float:
        return len(self.ms[kind]) / self.seconds

    def q(self, kind: str) -> str:
        ms = self.ms[kind]
        if len(ms) < 2:
            return "—"
        return f"{statistics.median(ms):.0f} / {statistics.quantiles(ms, n=100)[98]:.0f}"

    @property
    def ok(self) -> bool:
        return not self.errors and self.entries_in_db == self.entries_pushed == self.entries_made


def _stats(db: str, sqlite_path: Path) -> tuple[int, int, dict[str, int], int, int]:
    """Entries, facts (by re-pricing verdict), holds and the database's bytes."""
    count = (
        # The fleet's tills are t0, t1, …; head office's own entries (the import, the probe's
        # adjusts) are under other names.
        "SELECT (SELECT count(*) FROM entries WHERE till LIKE 't%'), "
        "(SELECT count(*) FROM receipt_facts), (SELECT count(*) FROM holds)"
    )
    verdicts = "SELECT coalesce(repriced, 'not yet'), count(*) FROM receipt_facts GROUP BY 1"
    if db:
        import psycopg

        size = (
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN "
            "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
            "AND c.relkind IN ('r', 'm')"
        )
        with psycopg.connect(db, connect_timeout=10) as conn:
            entries, facts, holds = conn.execute(count).fetchone()  # type: ignore[misc]
            by = dict(conn.execute(verdicts).fetchall())
            nbytes = int(conn.execute(size).fetchone()[0])  # type: ignore[index]
    else:
        with closing(sqlite3.connect(sqlite_path)) as conn:
            entries, facts, holds = conn.execute(count).fetchone()
            by = dict(conn.execute(verdicts).fetchall())
        nbytes = sum(p.stat().st_size for p in sqlite_path.parent.glob(sqlite_path.name + "*"))
    return entries, facts, by, holds, nbytes


def fleet(
    *, tills: int, seconds: float, pg: str = "", processes: int = 1, workers: int = 0,
    plan: dict[str, float] | None = None, cards: int = 0,
) -> Cell:  # fmt: skip
    """``tills`` simulated tills for ``seconds`` against ``processes`` ``hq serve``s on a
    PostgreSQL schema of their own (``pg``) or a SQLite file."""
    import httpx

    if processes > 1 and not pg:
        raise ValueError("several hq serve processes need PostgreSQL")
    workers = workers or max(1, min(4, tills // 500))
    cards = cards or max(200, 5 * tills)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-")))
        db = pg_schema(stack, pg) if pg else ""
        urls = []
        for k in range(processes):  # one database and one data folder (keys, admin token)
            urls.append(_serve(stack, db or str(tmp / "hq.sqlite3"), tmp, k))
        url = urls[0]
        token = (tmp / "hq-admin.token").read_text().strip()
        admin = stack.enter_context(
            httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"})
        )
        hq_pids = _hq_pids(tmp, len(urls))

        def ok(path: str, **kw: Any) -> Any:
            r = admin.post(path, **kw)
            assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
            return r.json()

        program = (ROOT / "program.example.toml").read_text("utf-8")
        version = ok("/v1/admin/program", json={"toml": program})["version"]
        numbers = [f"29{i:011d}" for i in range(cards)]
        csv = "number,tier,status,balance\n" + "".join(
            f"{c},silver,active,9000000\n" for c in numbers
        )
        ok("/v1/admin/cards/import", content=csv + f"{PROBE},silver,active,0\n",
           headers={"Content-Type": "text/csv"})  # fmt: skip
        codes = [
            ok("/v1/admin/enroll-codes", json={"store": f"s{i // 10}", "till": f"t{i}"})["code"]
            for i in range(tills)
        ]
        # One till enrols and pulls the snapshot (every card), timed; the fleet starts at its
        # cursor, as tills provisioned from one image: N snapshots would measure only that.
        snap = ok("/v1/admin/enroll-codes", json={"store": "snap", "till": "snap"})["code"]
        cred = httpx.post(f"{url}/v1/enroll", json={"code": snap}).json()["credential"]
        t0, cursor, more = time.perf_counter(), 0, True
        while more:
            r = httpx.get(f"{url}/v1/sync/changes", params={"cursor": cursor, "limit": 2000},
                          headers={"Authorization": f"Bearer {cred}"}, timeout=120)  # fmt: skip
            assert r.status_code == 200, r.text
            cursor, more = r.json()["cursor"], r.json()["more"]
        snapshot_s = time.perf_counter() - t0

        toml = tomllib.loads(program)["program"]
        full = Plan(seconds=seconds, delay_days=toml.get("accrual_delay_days", 0),
                    expiry_days=toml.get("expiry_days", 0), **(plan or {}))  # fmt: skip
        ctx = multiprocessing.get_context("spawn")
        out, gos, procs = ctx.Queue(), [], []
        shapes = templates(program, version)
        say(f"head office ready ({cards} cards, snapshot {snapshot_s:.1f} s); tills enrol")
        for w in range(workers):
            mine = [{"id": f"t{i}", "store": f"s{i // 10}", "url": urls[i % len(urls)],
                     "code": codes[i]} for i in range(w, tills, workers)]  # fmt: skip
            job = {"tills": mine, "templates": shapes, "plan": asdict(full), "cards": numbers,
                   "probe": PROBE, "version": version, "seed": w}  # fmt: skip
            go = ctx.Queue()
            proc = ctx.Process(target=work, args=(job, out, go), daemon=True)
            proc.start()
            stack.callback(proc.join, 10)
            stack.callback(proc.kill)
            gos.append(go)
            procs.append(proc)
        enrolled = 0
        for _ in procs:
            got = out.get(timeout=600 + tills / 5)
            assert "enrolled" in got, got
            enrolled += got["enrolled"]
        say(f"{enrolled} of {tills} tills enrolled; the window opens for {seconds:g} s")
        backends = pg_backends(hq_pids, db) if db else []
        watched = hq_pids + backends + [p.pid for p in procs]
        cpu0, load0 = {p: cpu_seconds(p) for p in watched}, os.getloadavg()[0]
        bytes0 = _stats(db, tmp / "hq.sqlite3")[-1]
        start = time.time() + 1.0
        for go in gos:
            go.put((start, cursor))
        time.sleep(max(0.0, start - time.time()))
        end = start + seconds
        moved: list[tuple[int, float]] = []  # (the probe card's balance, when it was answered)
        probe_errors: list[str] = []
        mover = threading.Thread(
            target=_probe, args=(url, admin.headers, end, moved, probe_errors), daemon=True
        )
        mover.start()
        time.sleep(max(0.0, end - time.time()))
        cpu = {p: cpu_seconds(p) - cpu0[p] for p in watched}
        load1 = os.getloadavg()[0]
        say("the window closed; the tills push what they have left")
        mover.join(PROBE_TIMEOUT + 5)
        tallies = []
        for _ in procs:
            got = out.get(timeout=300 + tills / 10)
            assert got.get("ok"), got
            tallies.append(got)
        entries, facts, verdicts, holds, nbytes = _stats(db, tmp / "hq.sqlite3")
    ms = {k: [x for t in tallies for x in t["ms"][k]] for k in KINDS}
    errors: dict[str, int] = {"probe": len(probe_errors)} if probe_errors else {}
    for t in tallies:
        for k, n in t["errors"].items():
            errors[k] = errors.get(k, 0) + n
    return Cell(
        db="PostgreSQL" if pg else "SQLite", processes=processes, tills=tills, seconds=seconds,
        receipt_every=full.receipt_every, enrolled=enrolled,
        receipts=sum(t["receipts"] for t in tallies),
        entries_made=sum(t["entries_made"] for t in tallies),
        entries_pushed=sum(t["entries_pushed"] for t in tallies), entries_in_db=entries,
        facts_made=sum(t["facts_made"] for t in tallies), facts_in_db=facts,
        repriced=verdicts, holds_in_db=holds, ms=ms,
        lags=_lags(moved, [s for t in tallies for s in t["seen"]]), probes=len(moved),
        snapshot_s=snapshot_s, cards=cards + 1, hq_cpu=sum(cpu[p] for p in hq_pids),
        pg_cpu=sum(cpu[p] for p in backends), client_cpu=sum(cpu[p.pid] for p in procs),
        db_bytes=nbytes, db_growth=nbytes - bytes0, errors=errors,
        error_samples=(probe_errors + [s for t in tallies for s in t["error_samples"]])[:10],
        load=(load0, load1),
    )  # fmt: skip


def _serve(stack: ExitStack, db: str, tmp: Path, k: int) -> str:
    """The ``k``-th ``tillgate hq serve`` on ``db`` (its log ``hq<k>.log`` in ``tmp``), up and
    answering, stopped with ``stack`` (terminated, killed if still there after 15 s): its URL."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = stack.enter_context((tmp / f"hq{k}.log").open("ab"))
    env = {**os.environ, "TILLGATE_HQ_TOKEN": ""}  # hq serve: the token file, not the env
    cmd = [sys.executable, "-m", "tillgate.cli", "hq", "serve", "--db", db, "--port", str(port),
           "--data-dir", str(tmp), "--log-level", "WARNING"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp, stdout=log, stderr=log, env=env)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:  # still busy with what the fleet asked: it goes
            proc.kill()
            proc.wait(15)

    stack.callback(stop)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if (tmp / "hq-admin.token").exists() and httpx.get(f"{url}/healthz").is_success:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"hq serve did not get ready:\n{(tmp / f'hq{k}.log').read_text()}")


def _probe(
    url: str, headers: Any, end: float, moved: list[tuple[int, float]], errors: list[str]
) -> None:
    """Move the probe card by a point every PROBE_EVERY seconds until ``end``, noting each
    balance head office answered and when (a move whose answer was lost is not timed)."""
    import httpx

    with httpx.Client(base_url=url, headers=headers, timeout=PROBE_TIMEOUT) as admin:
        while time.time() + PROBE_EVERY < end:
            time.sleep(PROBE_EVERY)
            body = {"points": 1, "reason": "fleet probe"}
            try:
                r = admin.post(f"/v1/admin/cards/{PROBE}/adjust", json=body)
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if r.status_code != 200:
                errors.append(f"{r.status_code} {r.text[:200]}")
                continue
            moved.append((int(r.json()["balance"]), time.time()))


def say(what: str) -> None:
    """Progress, on stderr (a run takes minutes)."""
    print(f"fleet {datetime.now():%H:%M:%S}: {what}", file=sys.stderr, flush=True)


def _hq_pids(tmp: Path, n: int) -> list[int]:
    """The ``hq serve`` processes started in ``tmp`` (children of this process)."""
    me, found = os.getpid(), []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == me and b"serve" in cmd and str(tmp).encode() in cmd:
            found.append(int(proc.name))
    assert len(found) == n, f"{len(found)} hq serve processes found, {n} started"
    return found


def _lags(moved: list[tuple[int, float]], seen: list[tuple[int, int, float]]) -> list[float]:
    """For each move of the probe card and each till: the time from head office's answer to
    the move to the reply of the till's first pull that showed it (a pull that brings the
    card after several moves shows every one of them)."""
    return [when - at for k, at in moved for before, now, when in seen if before < k <= now]


HEADER = (
    "| head office | hq serve | tills | receipts/s | pushes/s | holds/s | pulls/s "
    "| p50 / p99 ms: push · hold · resolve · pull | feed lag p50 / p99 "
    "| CPU cores: hq · PG · tills "
    "| DB size | errors |\n" + "| --- " * 12 + "|"
)


def row(c: Cell) -> str:
    lag = (
        f"{statistics.median(c.lags):.1f} / {statistics.quantiles(c.lags, n=100)[98]:.1f} s"
        if len(c.lags) > 1 else "—"
    )  # fmt: skip
    errs = sum(c.errors.values())
    per = c.db_growth / max(1, c.receipts) / 1024
    return (
        f"| {c.db} | {c.processes} | {c.tills:,} | {c.receipts / c.seconds:.1f} "
        f"| {c.rate('push'):.1f} | {c.rate('hold'):.1f} | {c.rate('pull'):.1f} "
        f"| {c.q('push')} · {c.q('hold')} · {c.q('resolve')} · {c.q('pull')} | {lag} "
        f"| {c.hq_cpu / c.seconds:.2f} · {c.pg_cpu / c.seconds:.2f} "
        f"· {c.client_cpu / c.seconds:.2f} "
        f"| {c.db_bytes / 2**20:.0f} MiB (+{per:.1f} KiB a receipt) "
        f"| {errs if errs else 0}{' ' + str(c.errors) if errs else ''} |"
    )


def kept_up(c: Cell) -> bool:
    """No error, and the fleet rang up at least 90 % of the receipts it was meant to."""
    return not c.errors and c.receipts >= 0.9 * c.tills * c.seconds / c.receipt_every


def estimate(cells: list[Cell]) -> str:
    """Tills per core of head office and of PostgreSQL, from the runs that kept up."""
    kept = [c for c in cells if kept_up(c) and c.db == "PostgreSQL" and c.pg_cpu and c.hq_cpu]
    if not kept:
        return "No PostgreSQL run kept up without errors: no estimate."
    best = max(kept, key=lambda c: (c.tills, -c.processes))
    pg_per = best.tills / (best.pg_cpu / best.seconds)
    hq_per = best.tills / (best.hq_cpu / best.seconds)
    both = best.tills / ((best.pg_cpu + best.hq_cpu) / best.seconds)
    return (
        f"From the largest PostgreSQL run that kept up without errors ({best.tills:,} tills on "
        f"{best.processes} `hq serve`, a receipt every {best.receipt_every:g} s a till): one "
        f"core of PostgreSQL serves about **{pg_per:,.0f} tills**, one core of `hq serve` about "
        f"**{hq_per:,.0f}**, so one core of each side together about **{both:,.0f}** (CPU "
        "seconds a second of the window, per till; PostgreSQL's backends serving head office "
        "counted apart from head office's processes, found by their client ports)."
    )


def report(cells: list[Cell], plan: Plan) -> str:
    """The curve as markdown: how it ran, the table, the estimate, each run's checks."""
    checks = []
    for c in cells:
        verdicts = ", ".join(f"{k} {n:,}" for k, n in sorted(c.repriced.items()))
        checks.append(
            f"- {c.db}, {c.processes} hq serve, {c.tills:,} tills: {c.enrolled:,} enrolled; "
            f"{c.receipts:,} receipts, {c.entries_made:,} entries made, "
            f"{c.entries_pushed:,} acknowledged, **{c.entries_in_db:,} in the database**; "
            f"{c.facts_in_db:,} of {c.facts_made:,} receipt facts in (re-priced: {verdicts}); "
            f"{c.holds_in_db:,} holds; {c.probes} moves of the probe card, seen "
            f"{len(c.lags):,} times; the snapshot of {c.cards:,} cards for one till "
            f"{c.snapshot_s:.1f} s; enrolment p50 / p99 {c.q('enroll')} ms; load average "
            f"{c.load[0]:.1f} → {c.load[1]:.1f}"
            + (f"; first errors: {c.error_samples}" if c.error_samples else "")
        )
    return "\n".join(
        [
            f"Each till rings up a receipt every {plan.receipt_every:g} s ("
            f"{plan.card_share:.0%} on a loyalty card, {plan.redeem_share:.0%} of those "
            f"redeeming: a hold, then its resolution), pushes every {plan.push_every:g} s "
            f"when it has something and pulls the feed every {plan.pull_every:g} s; steady "
            f"window {plan.seconds:g} s per run. A run's receipts are three baskets priced "
            "by the real rules engine (program.example.toml), their entries and facts as a "
            "till writes them (`hold`, `release`, `redeem`, `accrue`; `sale:<id>`). Tills "
            "are spread over the `hq serve` processes (each on its own port, one database). "
            "Latency is per request, from the tills' side (httpx's async client, "
            "several worker processes on the same 2 cores as head office and PostgreSQL: "
            'their CPU is counted under "tills"). Feed lag: head office moves a probe card '
            f"every {PROBE_EVERY:g} s (an admin adjust); each till notes the first pull "
            "that shows a move; the lag is the time from head office's answer to the adjust "
            "to that pull's reply (half the pull interval on average, by design, plus the "
            "queue). The machine is shared with other work (load average below).",
            "",
            HEADER,
            *map(row, cells),
            "",
            estimate(cells),
            "",
            *checks,
        ]
    )


def run(scale: float = 1.0) -> Scaled:
    """bench/run.py's entry: ``scale`` 1.0 is 1,000 tills for 5 minutes (issue 15, Done
    means 4), on PostgreSQL when one is named, else SQLite (said in the detail)."""
    pg = os.environ.get("TILLGATE_BENCH_PG") or os.environ.get("TILLGATE_TEST_PG", "")
    tills, seconds = max(5, round(1000 * scale)), max(10.0, 300 * scale)
    cell = fleet(tills=tills, seconds=seconds, pg=pg)
    detail = report([cell], Plan(seconds=seconds))
    if not pg:
        detail = "No PostgreSQL named (`TILLGATE_BENCH_PG`): SQLite only.\n\n" + detail
    what = f"fleet: {tills:,} tills for {seconds / 60:g} min ({cell.db}), pushes/s and p99"
    measured = (
        f"{cell.rate('push'):.0f} pushes/s, {cell.rate('hold'):.0f} holds/s; p99 push "
        f"{cell.q('push').split(' / ')[-1]} ms, hold {cell.q('hold').split(' / ')[-1]} ms; "
        f"{sum(cell.errors.values())} errors"
    )
    return Scaled(rows=[Row(what, measured, "runs; curve written", cell.ok)], detail=detail)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tills", type=int, default=1000)
    ap.add_argument(
        "--steps", default="", help="fleet sizes, e.g. 100,1000,5000 (default: --tills)"
    )
    ap.add_argument("--processes", default="1", help="hq serve processes, e.g. 1,2,4")
    ap.add_argument("--minutes", type=float, default=5.0, help="the steady window of each run")
    ap.add_argument("--pg", default=os.environ.get("TILLGATE_BENCH_PG", ""),
                    help="PostgreSQL URL (a schema of its own per run); none: SQLite")  # fmt: skip
    ap.add_argument("--sqlite", action="store_true", help="also one SQLite head office per step")
    ap.add_argument("--workers", type=int, default=0, help="till processes (default: by size)")
    ap.add_argument("--receipt-every", type=float, default=Plan.receipt_every)
    ap.add_argument("--push-every", type=float, default=Plan.push_every)
    ap.add_argument("--pull-every", type=float, default=Plan.pull_every)
    ap.add_argument("--out", type=Path, default=NOTES, help="the notes file the curve goes into")
    a = ap.parse_args(argv)
    steps = [int(x) for x in a.steps.split(",")] if a.steps else [a.tills]
    pace = {"receipt_every": a.receipt_every, "push_every": a.push_every,
            "pull_every": a.pull_every}  # fmt: skip
    cells = []
    runs = [(n, p, a.pg) for n in steps for p in map(int, a.processes.split(",")) if a.pg]
    runs += [(n, 1, "") for n in steps if a.sqlite or not a.pg]
    for tills, processes, pg in runs:
        print(f"fleet: {tills} tills, {processes} hq serve, {'PostgreSQL' if pg else 'SQLite'}",
              file=sys.stderr, flush=True)  # fmt: skip
        cell = fleet(tills=tills, seconds=a.minutes * 60, pg=pg, processes=processes,
                     workers=a.workers, plan=pace)  # fmt: skip
        cells.append(cell)
        print(row(cell), file=sys.stderr, flush=True)
    text = report(cells, Plan(seconds=a.minutes * 60, **pace))
    print(text)
    _write(a.out, text)
    return 0 if all(c.ok for c in cells) else 1


def _write(path: Path, text: str) -> None:
    """Put the curve into the notes, replacing the curve written before (the rest stays)."""
    begin, end = "<!-- fleet curve: begin -->", "<!-- fleet curve: end -->"
    block = f"{begin}\n## fleet: the curve ({datetime.now():%Y-%m-%d %H:%M})\n\n{text}\n{end}"
    old = path.read_text("utf-8") if path.exists() else "# fleet simulator (issue 15)\n"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new, "utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
