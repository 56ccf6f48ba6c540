"""Where a head-office push's CPU goes, by phase and by SQL statement (issue 15's ingest).

``python -m bench.ingest_profile [sqlite|postgresql] [PUSHES] [CARDS]``: a head office in
this process (a SQLite file, or a schema of ``TILLGATE_BENCH_PG`` / ``TILLGATE_TEST_PG``),
the bench's program, cards and 8 tills, then PUSHES pushes of 1,000 entries in the bench's
shape (:func:`bench.ingest.pushes`), each run as the push route runs it (the app's body
check, authentication, parsing, ``ledger.push``, holds) with no HTTP. The first 8 warm up;
for the others it prints the CPU a push (this process's, and on PostgreSQL its server
backend's, read from ``/proc``), the CPU of each phase (a phase includes the ones it calls),
and of each SQL statement: how many a push, this process's CPU, the wall clock, and the
server's CPU. Timings on a loaded host vary: run before and after a change in turns.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.common import ROOT, pg_schema
from bench.ingest import pushes

ADMIN = "admin-token-for-the-profile-0123456789"
TILLS = 8
WARM = 8

PHASES: dict[str, float] = defaultdict(float)
SQL: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])  # n, CPU, wall, server
STATE: dict[str, Any] = {"on": False, "backend": None}


def _timed(module: ModuleType, name: str) -> None:
    """Count the CPU of ``module.name`` in its phase while the profile is on."""
    f = getattr(module, name, None)
    if f is None:
        return
    label = f"{module.__name__.rsplit('.', 1)[-1]}.{name}"

    @functools.wraps(f)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if not STATE["on"]:
            return f(*args, **kwargs)
        t = time.process_time()
        try:
            return f(*args, **kwargs)
        finally:
            PHASES[label] += time.process_time() - t

    setattr(module, name, timed)


def backend_cpu() -> float:
    """The PostgreSQL backend's CPU seconds so far (0 on SQLite)."""
    pid = STATE["backend"]
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _label(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()[:90]


def _instrument() -> None:
    from tillgate.hq import counters, facts, folds, holds, ledger, quarantine, tills, wire
    from tillgate.hq.db import Tx

    send: Callable[..., Any] = Tx._send
    run: Callable[..., Any] = Tx._run

    def sent(self: Tx, sql: str | None, params: tuple[Any, ...]) -> Any:
        if not STATE["on"]:
            return send(self, sql, params)
        if STATE["backend"] is None:
            STATE["backend"] = self._conn.info.backend_pid
        queued = " + ".join(_label(q[0]) for q in self._queue)
        key = (queued + " -> " if queued else "") + _label(sql or "(flush)")
        b, t, w = backend_cpu(), time.process_time(), time.perf_counter()
        try:
            return send(self, sql, params)
        finally:
            row = SQL[key]
            row[0] += 1
            row[1] += time.process_time() - t
            row[2] += time.perf_counter() - w
            row[3] += backend_cpu() - b

    def ran(self: Tx, sql: str, params: Any = None) -> Any:
        if not STATE["on"] or self.dialect != "sqlite":
            return run(self, sql, params)
        t, w = time.process_time(), time.perf_counter()
        try:
            return run(self, sql, params)
        finally:
            row = SQL[_label(sql)]
            row[0] += 1
            row[1] += time.process_time() - t
            row[2] += time.perf_counter() - w

    Tx._send = sent  # type: ignore[method-assign]
    Tx._run = ran  # type: ignore[method-assign]
    phases = [
        (wire, ["parse_push", "check_json"]),
        (tills, ["authenticate"]),
        (ledger, ["_check_known", "_existing", "lock_cards", "_receipts", "insert_entries"]),
        (ledger, ["_coupons", "refresh_cards", "add_changes", "policy_of"]),
        (quarantine, ["record", "release_known"]),
        (facts, ["insert_new"]),
        (counters, ["count"]),
        (folds, ["card_folds", "keep", "refresh_accrued"]),
        (holds, ["after_push"]),
    ]
    for module, names in phases:
        for name in names:
            _timed(module, name)
    for name in ("card_folds", "keep", "refresh_accrued"):  # imported by name into ledger
        if hasattr(ledger, name):
            setattr(ledger, name, getattr(folds, name))


def profile(kind: str, n_pushes: int, cards: int) -> None:
    from starlette.testclient import TestClient

    from tillgate.core.clock import SystemClock
    from tillgate.hq import holds, ledger, tills, wire
    from tillgate.hq.app import create_app
    from tillgate.hq.db import open_database
    from tillgate.hq.service import Hq

    _instrument()
    bounded = "bounded" in inspect.signature(wire.parse_push).parameters
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if kind == "sqlite":
            url = str(tmp / "hq.sqlite3")
        else:
            pg = os.environ.get("TILLGATE_BENCH_PG") or os.environ.get("TILLGATE_TEST_PG")
            if not pg:
                raise SystemExit("set TILLGATE_BENCH_PG (or TILLGATE_TEST_PG) for PostgreSQL")
            url = pg_schema(stack, pg)
        db = open_database(url, data_dir=tmp)
        stack.callback(db.close)
        hq = Hq.open(db, clock=SystemClock(), admin_token=ADMIN, data_dir=tmp)
        admin = stack.enter_context(
            TestClient(create_app(hq), headers={"Authorization": f"Bearer {ADMIN}"})
        )
        program = (ROOT / "program.example.toml").read_text("utf-8")
        assert admin.post("/v1/admin/program", json={"toml": program}).status_code == 200
        csv = "number,tier,status,balance\n" + "".join(
            f"29{i:011d},silver,active,1000\n" for i in range(cards)
        )
        r = admin.post("/v1/admin/cards/import", content=csv, headers={"Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        credentials = []
        for t in range(TILLS):
            till = f"till{t:02d}"
            code = admin.post("/v1/admin/enroll-codes", json={"store": "bench", "till": till})
            enrolled = admin.post("/v1/enroll", json={"code": code.json()["code"]}).json()
            credentials.append((till, enrolled["credential"]))
        per = max(n_pushes // TILLS, 1)
        each = {cred: pushes(till, per * 1000, cards=cards) for till, cred in credentials}
        order = [(cred, each[cred][k]) for k in range(per) for _, cred in credentials]
        cpu = wall = server = 0.0
        for i, (cred, raw) in enumerate(order):
            if i == WARM:
                STATE["on"] = True
            t, w, b = time.process_time(), time.perf_counter(), backend_cpu()
            with hq.db.write() as tx:
                till_id = tills.authenticate(tx, cred)
                wire.check_json(raw)  # the app's dependency, for every body
                batch = wire.parse_push(raw, bounded=True) if bounded else wire.parse_push(raw)
                now = hq.clock.now()
                reply = ledger.push(tx, till_id, batch, now, policies=hq.policies)
                holds.after_push(tx, till_id.id, batch, reply["through_seq"], now)
                assert not reply["conflicts"] and reply["stored"] == 1000, reply
            if i >= WARM:
                cpu += time.process_time() - t
                wall += time.perf_counter() - w
                server += backend_cpu() - b
    m = max(len(order) - WARM, 1)
    print(
        f"{kind}: {m} pushes, {cards} cards: CPU {cpu / m * 1000:.1f} ms a push,"
        f" server {server / m * 1000:.1f} ms, wall {wall / m * 1000:.1f} ms"
    )
    for label, seconds in sorted(PHASES.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / m * 1000:7.2f} ms  {label}")
    print("  SQL: a push, CPU ms, wall ms, server ms, statement")
    for key, (n, c, w, s) in sorted(SQL.items(), key=lambda kv: -kv[1][2]):
        print(f"  {n / m:5.1f} {c / m * 1000:7.2f} {w / m * 1000:7.2f} {s / m * 1000:7.2f}  {key}")


if __name__ == "__main__":
    args = sys.argv[1:]
    profile(
        args[0] if args else "sqlite",
        int(args[1]) if len(args) > 1 else 40,
        int(args[2]) if len(args) > 2 else 20_000,
    )
