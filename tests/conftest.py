"""Shared fixtures: a real till (SQLite file + POS API over HTTP on loopback), a manual clock."""

from __future__ import annotations

import copy
import gc
import logging
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tillgate.agent.api.app import create_app
from tillgate.agent.store import cards as card_store
from tillgate.agent.store.db import Database
from tillgate.agent.usecases import TillService, TillSettings
from tillgate.agent.usecases.session import CardSession
from tillgate.core.clock import ManualClock
from tillgate.core.rules.coupons import CouponSigner
from tillgate.core.rules.program import parse_program

KEY = b"k" * 32

BASE_PROGRAM: dict[str, Any] = {
    "program": {
        "name": "Тест Бонус",
        "point_value": "1.00",
        "max_redeem_percent": 50,
        "min_redeem_points": 1,
        "accrual_delay_days": 14,
        "expiry_days": 365,
        "welcome_points": 0,
        "birthday_points": 0,
        "birthday_window_days": 3,
        "no_discount_categories": ["tobacco"],
        "max_discount_percent": 90,
        "register_unknown_cards": True,
        "tiers": [
            {"name": "silver", "min_spend": "0", "accrue_percent": 3},
            {"name": "gold", "min_spend": "20000", "accrue_percent": 5},
            {
                "name": "platinum",
                "min_spend": "50000",
                "accrue_percent": 7,
                "spend_window_days": 365,
            },
        ],
    },
    "promotions": [],
}

CARDS = [
    card_store.CardRecord(
        number="2900000000011", holder="Анна", phone="+79161234567", tier="silver"
    ),
    card_store.CardRecord(
        number="2900000000028", holder="Борис", tier="gold", segments=("pensioners",)
    ),
    card_store.CardRecord(
        number="2900000000035", holder="Вера", tier="platinum", clubs=("wine-club",)
    ),
    card_store.CardRecord(number="2900000000042", holder="Глеб", status="blocked"),
]
ANNA, BORIS, VERA, BLOCKED = (c.number for c in CARDS)

# A promotion a coupon code brings: 10% off the order, for a card holder.
COUPON10 = {
    "id": "c10",
    "name": "Coupon 10%",
    "when": {"coupon": True},
    "reward": {"kind": "percent", "value": 10, "on": "order"},
}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject.toml): a worker a core, at most 4. Each worker's head offices
    hold PostgreSQL connections (the server allows 100) and its tests start tills,
    browsers and servers of their own; more workers than that only wait on each other."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cores or 1))


def program(*promotions: dict[str, Any], **program_overrides: Any) -> dict[str, Any]:
    """The base test program with extra promotions and [program] keys."""
    data = copy.deepcopy(BASE_PROGRAM)
    data["program"].update(program_overrides)
    data["promotions"] = list(promotions)
    return data


def line(
    sku: str, price: str, qty: Any = 1, category: str | None = None, **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"sku": sku, "name": f"item {sku}", "qty": qty, "price": price}
    if category:
        out["category"] = category
    out.update(extra)
    return out


@dataclass
class Till:
    """A running till: HTTP client, the service behind it, its clock and data file."""

    http: httpx.Client
    service: TillService
    clock: ManualClock
    path: Path
    url: str

    def calc(self, receipt_id: str, lines: list[dict[str, Any]], **kw: Any) -> httpx.Response:
        return self.http.post(
            "/v1/receipts/calculate", json={"receipt_id": receipt_id, "lines": lines, **kw}
        )

    def ok_calc(self, receipt_id: str, lines: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        r = self.calc(receipt_id, lines, **kw)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def confirm(self, receipt_id: str, **kw: Any) -> httpx.Response:
        return self.http.post(f"/v1/receipts/{receipt_id}/confirm", json=kw or None)

    def sale(self, receipt_id: str, lines: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        calc = self.ok_calc(receipt_id, lines, **kw)
        r = self.confirm(receipt_id)
        assert r.status_code == 200, r.text
        return calc | {"confirmed": r.json()}

    def card(self, number: str) -> dict[str, Any]:
        r = self.http.get(f"/v1/cards/{number}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def ledger_sum(self, number: str) -> int:
        with self.service.db.read() as conn:
            return int(
                conn.execute(
                    "SELECT COALESCE(SUM(points),0) FROM ledger WHERE card=?", (number,)
                ).fetchone()[0]
            )

    def set_program(self, data: dict[str, Any], version: str | None = None) -> None:
        pf = parse_program(data)
        self.service.install_program(pf, version=version or f"v{time.monotonic_ns()}")


ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("config.example.toml", "program.example.toml", "cards.example.csv")


def copy_examples(dest: Path) -> Path:
    """The shipped sample set-up in ``dest``; returns the config file's path."""
    for name in EXAMPLES:
        shutil.copy(ROOT / name, dest / name)
    return dest / "config.example.toml"


def free_port() -> int:
    """A loopback port nobody listens on right now, below the kernel's ephemeral range
    where it can: a server a test stops and starts again on its port (a head office the
    tills know the address of) then never finds it taken by some process's outgoing
    connection, which draws its local port from that range ("Address already in use", seen
    in CI). Elsewhere: one the kernel picks."""
    low = _ephemeral_low()
    for _ in range(100) if low > _PORTS_FROM else ():
        port = _random.randrange(_PORTS_FROM, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with free_socket() as sock:
        return int(sock.getsockname()[1])


_PORTS_FROM = 20_000
_random = random.SystemRandom()  # each xdist worker its own draws


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def spawn_agent(
    config: Path | None,
    *,
    port: int,
    cwd: Path,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    stderr: Any = None,
    timeout: float = 30,
) -> subprocess.Popen[Any]:
    """A real ``tillgate run`` on loopback, returned once it answers ``/v1/status``.

    ``config`` None: the agent finds its config itself (``TILLGATE_CONFIG``, ./config.toml).

    If it dies or does not answer in ``timeout`` seconds the test fails with what it wrote
    to ``stderr`` (a file it can be read back from, or a pipe).
    """
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tillgate.cli",
            "run",
            *(["--config", str(config)] if config is not None else []),
            "--port",
            str(port),
            *args,
        ],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    _, err = proc.communicate(timeout=10)
    if err is None and hasattr(stderr, "name"):
        stderr.flush()
        err = Path(stderr.name).read_text(encoding="utf-8", errors="replace")
    raise AssertionError(f"tillgate run did not start (exit {proc.returncode}):\n{err}")


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@pytest.fixture(autouse=True)
def _drop_cli_log_handlers() -> Iterator[None]:
    """Remove the log handler a CLI verb run in-process installed (it writes to the test's
    captured stderr, which is closed when the test ends: later tests would log into it),
    and put back the levels it set (a root left at INFO made a later test's log capture
    see records it never sees alone)."""
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "apscheduler")}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    for handler in [h for h in root.handlers if h.get_name() == "tillgate"]:
        root.removeHandler(handler)
        handler.close()


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect each test's garbage before the next one starts.

    Finalizers of a big test's leftovers otherwise run in the middle of pytest's
    ``ast.parse`` of a failing test's traceback, and CPython 3.11 then aborts the whole
    run with "AST constructor recursion depth mismatch" instead of reporting the failure.
    """
    yield
    gc.collect()


@pytest.fixture
def clock() -> ManualClock:
    # Monday 2026-11-23 09:00 Moscow time (06:00 UTC).
    return ManualClock(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))


@pytest.fixture
def make_till(tmp_path: Path, clock: ManualClock) -> Iterator[Any]:
    """Start tills (real SQLite file + real uvicorn on loopback); all stopped at teardown."""
    started: list[tuple[uvicorn.Server, threading.Thread, httpx.Client, Database, TillService]] = []

    def start(
        data: dict[str, Any] | None = None,
        *,
        token: str = "",
        cards: list[card_store.CardRecord] | None = None,
        name: str = "till",
        max_lines: int = 1000,
        max_body_bytes: int = 1 << 20,
        hold_seconds: int = 900,
        connectivity: Any = None,
    ) -> Till:
        path = tmp_path / f"{name}.sqlite3"
        db = Database(path)
        service = TillService(
            db=db,
            settings=TillSettings(
                till=name,
                store="store-01",
                timezone="Europe/Moscow",
                language="ru",
                hold_seconds=hold_seconds,
                max_lines=max_lines,
            ),
            clock=clock,
            session=CardSession(seconds=120),
            signer=CouponSigner(KEY),
            **({"connectivity": connectivity} if connectivity is not None else {}),
        )
        service.install_program(parse_program(data or program()), version="v1")
        service.import_cards(list(CARDS if cards is None else cards))
        app = create_app(service, token=token, max_body_bytes=max_body_bytes)
        sock = free_socket()
        server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        http = httpx.Client(base_url=url, timeout=10, headers=headers)
        started.append((server, thread, http, db, service))
        return Till(http=http, service=service, clock=clock, path=path, url=url)

    yield start
    for server, thread, http, db, service in started:
        http.close()
        service.events.close()
        server.should_exit = True
        thread.join(timeout=10)
        db.close()
