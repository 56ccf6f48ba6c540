"""What several benchmarks share."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def reference_ms(runs: int = 5) -> float:
    """How long this host takes for a fixed piece of work like the till's and head
    office's (Python objects, JSON, SQLite in memory): the median of ``runs``, in ms.
    The same code's figures move with the host's speed from hour to hour (±40 % on the
    shared 2-vCPU guest); this reference, written beside each section, says by how much."""
    import json
    import sqlite3
    import statistics

    def once() -> float:
        start = time.process_time()
        rows = [{"sku": f"sku{i}", "qty": i % 7, "price": f"{i % 997}.90"} for i in range(20_000)]
        text = json.dumps(rows)
        back = json.loads(text)
        with sqlite3.connect(":memory:") as db:
            db.execute("CREATE TABLE t (sku TEXT PRIMARY KEY, qty INTEGER, price TEXT)")
            db.executemany("INSERT INTO t VALUES (:sku, :qty, :price)", back)
            db.execute("SELECT SUM(qty), COUNT(DISTINCT price) FROM t").fetchone()
        db.close()
        sorted(back, key=lambda r: (r["price"], r["sku"]))
        return (time.process_time() - start) * 1000

    return statistics.median(once() for _ in range(runs))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_schema(stack: ExitStack, url: str) -> str:
    """A head-office database URL on a PostgreSQL schema of its own, dropped when ``stack``
    closes (a bench never touches what is already in the database)."""
    import psycopg

    schema = f"bench_{os.getpid()}_{int(time.time())}"
    conn = stack.enter_context(psycopg.connect(url, autocommit=True, connect_timeout=10))
    conn.execute(f"CREATE SCHEMA {schema}")
    stack.callback(conn.execute, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@dataclass(frozen=True)
class Row:
    """One row of issue 15's table: what was measured, the figure, the target, and whether the
    figure meets it (``bench/run.py`` prints every row against its target)."""

    what: str
    measured: str
    target: str
    met: bool


@dataclass(frozen=True)
class Scaled:
    """What a scale bench returns: its rows, and the markdown written to its section of
    ``docs/performance.md`` (how it was measured, the runs, the profile where a target is
    missed)."""

    rows: list[Row]
    detail: str


def peak_rss_mib(pid: int) -> float:
    """A live process's peak resident set (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def rss_mib(pid: int) -> float:
    """A live process's resident set now (``VmRSS``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def wait_ready(
    proc: subprocess.Popen[bytes], log: Path, ready: Callable[[], object], within: float = 120
) -> None:
    """Return once ``ready()`` is true (an HTTP error, or a reply without what it looks for,
    counts as not yet); RuntimeError with the end of ``log`` if ``proc`` exits first or
    ``within`` seconds pass."""
    import httpx

    deadline = time.monotonic() + within
    while proc.poll() is None and time.monotonic() < deadline:
        with suppress(httpx.HTTPError, ValueError, KeyError):
            if ready():
                return
        time.sleep(0.02)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"{' '.join(map(str, proc.args))} did not get ready:\n{tail}")


def spawn(
    stack: ExitStack,
    log: Path,
    *args: str,
    ready: Callable[[], object] | None = None,
    within: float = 120,
    stop_within: float = 15,
) -> subprocess.Popen[bytes]:
    """``tillgate ARGS`` run in ``log``'s folder with its output appended to ``log``, stopped
    with ``stack`` (terminated, killed after ``stop_within`` s); with ``ready``, returned
    once ``ready()`` is true (:func:`wait_ready`). ``hq serve`` reads its admin token from
    its file, never from the bench's environment."""
    out = stack.enter_context(log.open("ab"))
    env = {**os.environ, "TILLGATE_HQ_TOKEN": ""}
    cmd = [sys.executable, "-m", "tillgate.cli", *args]
    proc = subprocess.Popen(cmd, cwd=log.parent, stdout=out, stderr=out, env=env)
    for step in (proc.kill, partial(proc.wait, stop_within), proc.terminate):  # last first
        stack.callback(step)
    if ready is not None:
        wait_ready(proc, log, ready, within)
    return proc


def main(run: Callable[[float], Scaled]) -> None:
    """A scale bench's command line, ``python -m bench.NAME [SCALE] [--json]``: its rows
    against their targets and its detail (``--json``: both as one JSON line)."""
    import json

    args = [a for a in sys.argv[1:] if a != "--json"]
    result = run(float(args[0]) if args else 1.0)
    if "--json" in sys.argv:
        print(json.dumps({"rows": [vars(r) for r in result.rows], "detail": result.detail}))
        return
    for row in result.rows:
        print(f"{row.what}: {row.measured} (target {row.target}) {'met' if row.met else 'MISSED'}")
    print(result.detail)
