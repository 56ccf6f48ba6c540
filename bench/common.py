"""What several benchmarks share."""

from __future__ import annotations

import os
import socket
import time
from contextlib import ExitStack
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
