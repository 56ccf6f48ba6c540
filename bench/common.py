"""What several benchmarks share."""

from __future__ import annotations

import os
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
