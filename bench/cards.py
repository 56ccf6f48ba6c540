"""Million-card CSVs (issue 15): a standalone till loading one, restarting on it unchanged,
and ``tillgate hq cards import`` on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import ROOT, Row, Scaled, free_port, main, peak_rss_mib, pg_schema, spawn

CARDS = 1_000_000
LOAD_RSS_MIB = 150.0
RESTART_S = 1.0
IMPORT_S = 10.0
IMPORT_RSS_MIB = 200.0

TIERS = ("silver", "silver", "silver", "gold", "gold", "platinum")
SURNAMES = ("Иванова", "Петров", "Смирнова", "Кузнецов", "Попова", "Васильев", "Соколова")
NAMES = ("Анна", "Борис", "Вера", "Глеб", "Дарья", "Егор", "Жанна", "Зоя")


def write_cards(path: Path, n: int) -> int:
    """A shop's export of ``n`` cards (the sample program's pattern: 13 digits from 29…):
    a holder each, a phone for most, a birthday for half, a tier, a segment for one in
    five, a balance for two in three. Returns its size in bytes."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("number,holder,phone,birthday,tier,segments,clubs,status,balance\n")
        for start in range(0, n, 10_000):
            out.write(
                "".join(
                    f"29{i:011d},{NAMES[i % 8]} {SURNAMES[i % 7]},"
                    f"{f'+7916{i % 10_000_000:07d}' if i % 10 else ''},"
                    f"{f'19{50 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}' if i % 2 else ''},"
                    f"{TIERS[i % 6]},{'pensioners' if i % 5 == 0 else ''},"
                    f"{'wine-club' if i % 11 == 0 else ''},"
                    f"{'blocked' if i % 97 == 0 else 'active'},"
                    f"{i % 5000 if i % 3 else 0}\n"
                    for i in range(start, min(n, start + 10_000))
                )
            )
    return path.stat().st_size


def _till_start(tmp: Path) -> tuple[float, float]:
    """``tillgate run`` on ``tmp``'s config until its first 200 on /v1/status: seconds, and
    the agent's peak RSS (MiB) by then."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/status"
    args = ("run", "--config", str(tmp / "config.toml"), "--port", str(port))
    with ExitStack() as stack:
        t0 = time.perf_counter()
        proc = spawn(
            stack,
            tmp / "till.log",
            *args,
            "--log-level",
            "WARNING",
            ready=lambda: httpx.get(url, timeout=2).status_code == 200,
            within=900,
            stop_within=120,
        )
        took = time.perf_counter() - t0
        return took, peak_rss_mib(proc.pid)


def _till(tmp: Path, n: int, restarts: int) -> tuple[float, float, list[float], float]:
    """First start with the cards file (seconds, peak MiB), then restarts on it unchanged
    (seconds each) and the worst restart's peak MiB."""
    for name in ("program.example.toml",):
        (tmp / name).write_bytes((ROOT / name).read_bytes())
    write_cards(tmp / "cards.csv", n)
    (tmp / "config.toml").write_text(
        f'[till]\nid = "bench"\nstore = "bench"\ndata_dir = "{tmp / "data"}"\n'
        '[standalone]\nprogram_file = "program.example.toml"\ncards_file = "cards.csv"\n',
        encoding="utf-8",
    )
    first, peak = _till_start(tmp)
    again = [_till_start(tmp) for _ in range(restarts)]
    return first, peak, [a for a, _ in again], max(p for _, p in again)


def _hq_import(db: str, tmp: Path, cards: Path) -> tuple[float, float, float]:
    """``tillgate hq cards import`` of ``cards`` into a fresh head office: seconds, the
    command's peak RSS and head office's (MiB)."""
    import httpx

    port = free_port()
    url, token = f"http://127.0.0.1:{port}", tmp / "hq-admin.token"
    serve = ["--db", db or str(tmp / "hq.sqlite3"), "--port", str(port), "--data-dir", str(tmp)]
    up = lambda: token.exists() and httpx.get(f"{url}/healthz").status_code == 200  # noqa: E731
    with ExitStack() as stack:
        hq = spawn(
            stack,
            tmp / "hq.log",
            "hq",
            "serve",
            *serve,
            "--log-level",
            "WARNING",
            ready=up,
            stop_within=120,
        )
        env = {**os.environ, "TILLGATE_HQ_TOKEN": token.read_text().strip()}
        cmd = [sys.executable, "-m", "tillgate.cli", "hq", "cards", "import", str(cards)]
        with (tmp / "import.log").open("ab") as log:
            t0 = time.perf_counter()
            proc = subprocess.Popen([*cmd, "--hq", url], stdout=log, stderr=log, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            took = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"hq cards import failed:\n{(tmp / 'import.log').read_text()}")
        return took, usage.ru_maxrss / 1024, peak_rss_mib(hq.pid)


def run(scale: float = 1.0) -> Scaled:
    """Issue 15's rows on million-card CSVs (``scale`` 1.0: 1,000,000 cards)."""
    n = max(10, int(CARDS * scale))
    pg = os.environ.get("TILLGATE_BENCH_PG") or os.environ.get("TILLGATE_TEST_PG") or ""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        runs = 1 if scale < 0.01 else 3  # a smoke run: once each; else a median of 3
        first, load_peak, restarts, restart_peak = _till(tmp, n, restarts=runs + 1)
        size = (tmp / "cards.csv").stat().st_size
        imports: dict[str, list[tuple[float, float, float]]] = {}
        for kind in ("SQLite", "PostgreSQL") if pg else ("SQLite",):
            imports[kind] = []
            for k in range(runs):
                with ExitStack() as stack:
                    where = tmp / f"hq-{kind}-{k}"
                    where.mkdir()
                    db = pg_schema(stack, pg) if kind == "PostgreSQL" else ""
                    imports[kind].append(_hq_import(db, where, tmp / "cards.csv"))
    restart = statistics.median(restarts)
    rows = [
        Row(
            "agent RSS peak while loading a 1M-card CSV",
            f"{load_peak:,.0f} MiB",
            f"≤ {LOAD_RSS_MIB:g} MiB (streamed)",
            load_peak <= LOAD_RSS_MIB,
        ),
        Row(
            "standalone restart on an unchanged 1M-card CSV",
            f"{restart:.2f} s",
            f"≤ {RESTART_S:g} s",
            restart <= RESTART_S,
        ),
    ]
    import_peak = 0.0
    for kind, each in imports.items():
        took = statistics.median(t for t, _, _ in each)
        import_peak = max([import_peak, *(max(c, s) for _, c, s in each)])
        rows.append(
            Row(
                f"`hq cards import` 1M cards: {kind}",
                f"{took:.1f} s",
                f"≤ {IMPORT_S:g} s",
                took <= IMPORT_S,
            )
        )
    rows.append(
        Row(
            "`hq cards import` 1M cards: peak RSS",
            f"{import_peak:,.0f} MiB",
            f"≤ {IMPORT_RSS_MIB:g} MiB",
            import_peak <= IMPORT_RSS_MIB,
        )
    )
    table = "\n".join(
        f"| {kind} run {k + 1} | {t:.1f} s | {c:,.0f} MiB | {s:,.0f} MiB |"
        for kind, each in imports.items()
        for k, (t, c, s) in enumerate(each)
    )
    detail = (
        f"A cards file of {n:,} cards ({size / 2**20:.0f} MiB of CSV: holder, phone for nine "
        "in ten, birthday for half, tier, a segment for one in five, a balance for two in "
        "three), made in a temporary directory. Load average at the start "
        f"{load:.1f}, at the end {os.getloadavg()[0]:.1f}.\n\n"
        f"- A real `tillgate run` (standalone, the sample program) with that `cards_file`, "
        f"on a fresh data dir: first 200 on `/v1/status` after **{first:.1f} s**, the "
        f"agent's peak RSS (`VmHWM`) then **{load_peak:,.0f} MiB**.\n"
        f"- Restarts on the unchanged file: {', '.join(f'{r:.2f} s' for r in restarts)} "
        f"(median **{restart:.2f} s**), peak RSS {restart_peak:,.0f} MiB.\n\n"
        "`tillgate hq cards import` into a fresh head office (`tillgate hq serve` on "
        f"loopback), {runs} run(s) each; the peak RSS of the command (its own `wait4` "
        "usage) and "
        "of head office (`VmHWM`):\n\n"
        "| head office | wall time | command peak | head office peak |\n"
        "| --- | --- | --- | --- |\n" + table + "\n"
        + ("" if pg else "\nPostgreSQL not measured: neither `TILLGATE_BENCH_PG` nor "
           "`TILLGATE_TEST_PG` is set.\n")
    )  # fmt: skip
    return Scaled(rows=rows, detail=detail)


if __name__ == "__main__":
    main(run)
