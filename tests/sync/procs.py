"""Real processes on loopback for the chain tests: ``tillgate hq serve`` and ``tillgate run``.

Every wait is bounded; a process that dies or never answers fails the test with its log.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.conftest import free_port, spawn_agent
from tillgate.cli import main as tillgate

T = TypeVar("T")


def wait_until(what: str, check: Callable[[], T], *, timeout: float = 30) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError, sqlite3.Error) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


@dataclass
class Hq:
    """A real head office: ``tillgate hq serve`` on a SQLite file in ``root``."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[Any] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.root / "hq-admin.token").read_text().strip()

    def start(self) -> Hq:
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / "hq.log").open("a")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tillgate.cli",
                "hq",
                "serve",
                "--db",
                str(self.root / "hq.sqlite3"),
                "--port",
                str(self.port),
                "--data-dir",
                str(self.root),
                "--log-level",
                "WARNING",
            ],
            stdout=log,
            stderr=log,
            env={**os.environ, "TILLGATE_HQ_TOKEN": ""},
        )

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"hq serve died:\n{(self.root / 'hq.log').read_text()}")
            return self.admin("GET", "/v1/admin/tills").status_code == 200

        wait_until("hq serve to answer", ready)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def admin(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kw)

    def ok(self, method: str, path: str, **kw: Any) -> Any:
        r = self.admin(method, path, **kw)
        assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    def push_program(self, data: dict[str, Any]) -> str:
        return str(self.ok("POST", "/v1/admin/program", json=data)["version"])

    def import_cards(self, csv: str) -> None:
        self.ok("POST", "/v1/admin/cards/import", content=csv, headers={"Content-Type": "text/csv"})

    def fact(self, till: str, fact_id: str) -> dict[str, Any]:
        """One receipt fact's body as head office stored it (a till forgets a synced one)."""
        conn = sqlite3.connect(f"file:{self.root / 'hq.sqlite3'}?mode=ro", uri=True, timeout=10)
        try:
            row = conn.execute(
                "SELECT body FROM receipt_facts WHERE till = ? AND id = ?", (till, fact_id)
            ).fetchone()
        finally:
            conn.close()
        assert row is not None, fact_id
        return dict(json.loads(row[0]))

    def card(self, number: str) -> dict[str, Any]:
        return dict(self.ok("GET", f"/v1/admin/cards/{number}"))

    def enroll_code(self, till: str, store: str = "store-01") -> str:
        return str(
            self.ok("POST", "/v1/admin/enroll-codes", json={"store": store, "till": till})["code"]
        )


@dataclass
class TillProc:
    """A real till: ``tillgate run`` with its own config and data directory."""

    name: str
    root: Path
    config: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[Any] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TillProc:
        log = (self.root / "till.log").open("a")
        self.proc = spawn_agent(self.config, port=self.port, cwd=self.root, stderr=log)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def status(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/v1/status", timeout=5).json())

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, timeout=10)

    def sale(self, receipt_id: str, amount: str, card: str, redeem: Any = 0) -> dict[str, Any]:
        r = self.post(
            "/v1/receipts/calculate",
            {
                "receipt_id": receipt_id,
                "card": card,
                "redeem": redeem,
                "lines": [{"sku": "A", "name": "a", "qty": 1, "price": amount}],
            },
        )
        assert r.status_code == 200, r.text
        c = self.post(f"/v1/receipts/{receipt_id}/confirm")
        assert c.status_code == 200, c.text
        return dict(c.json())

    def balance(self, card: str) -> int:
        r = httpx.get(f"{self.url}/v1/cards/{card}", timeout=5)
        assert r.status_code == 200, r.text
        return int(r.json()["balance"])

    def pending(self, card: str) -> int:
        r = httpx.get(f"{self.url}/v1/cards/{card}", timeout=5)
        assert r.status_code == 200, r.text
        return int(r.json()["pending"])

    def fact(self, fact_id: str) -> dict[str, Any]:
        """One receipt fact's body, read straight from the (stopped) till's data file."""
        path = self.root / "data" / "tillgate.sqlite3"
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            row = conn.execute("SELECT body FROM facts WHERE id = ?", (fact_id,)).fetchone()
        finally:
            conn.close()
        assert row is not None, fact_id
        return dict(json.loads(row[0]))

    def ledger(self) -> list[tuple[str, int, str, str, int]]:
        """(id, seq, card, kind, points) of every entry, read straight from the data file."""
        path = self.root / "data" / "tillgate.sqlite3"
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return [
                tuple(r)  # type: ignore[misc]
                for r in conn.execute("SELECT id, seq, card, kind, points FROM ledger ORDER BY seq")
            ]
        finally:
            conn.close()

    def synced(self) -> bool:
        st = self.status()
        return st["unsynced_entries"] == 0 and not st["offline"]

    def synced_since(self, when: datetime) -> bool:
        """A whole sync (push and pull) completed after ``when``."""
        last = self.status()["last_sync"]
        return last is not None and datetime.fromisoformat(last) > when

    def credential(self) -> str:
        """The till's secret, as anyone who can read its data directory can."""
        data = json.loads((self.root / "data" / "credential.json").read_text(encoding="utf-8"))
        return str(data["credential"])

    def adopt(self, entries: list[dict[str, Any]]) -> None:
        """Write entries into the (stopped) till's ledger as already sent to head office.

        What an attacker who owns the till's disk leaves behind after pushing them with its
        credential: the till's own sequence then goes on after them.
        """
        assert self.proc is None, "stop the till first"
        path = self.root / "data" / "tillgate.sqlite3"
        sent = datetime.now(UTC).isoformat(timespec="microseconds")
        conn = sqlite3.connect(path, timeout=10)
        try:
            with conn:
                conn.executemany(
                    "INSERT INTO ledger (id, seq, till, card, kind, points, receipt_id,"
                    " refund_id, ref, note, created_at, synced_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            e["id"], e["seq"], e["till"], e["card"], e["kind"], e["points"],
                            e.get("receipt_id"), e.get("refund_id"), e.get("ref"), e.get("note"),
                            _utc(e["created_at"]), sent,
                        )
                        for e in entries
                    ],
                )  # fmt: skip
        finally:
            conn.close()


def _utc(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(UTC).isoformat(timespec="microseconds")


def make_till(
    hq: Hq, root: Path, name: str, *, interval: int = 1, offline_after: int = 2, batch: int = 500
) -> TillProc:
    """Write a chain till's config and enrol it with ``tillgate enroll`` (the real verb)."""
    home = root / name
    home.mkdir(parents=True)
    config = home / "config.toml"
    config.write_text(
        f'[till]\nid = "{name}"\nstore = "store-01"\ndata_dir = "data"\nlanguage = "en"\n'
        f'[hq]\nurl = "{hq.url}"\ncredential_file = "data/credential.json"\n'
        f"[sync]\ninterval_seconds = {interval}\noffline_after_seconds = {offline_after}\n"
        f"batch_size = {batch}\n",
        encoding="utf-8",
    )
    code = hq.enroll_code(name)
    assert tillgate(["enroll", code, "--config", str(config)]) == 0
    return TillProc(name=name, root=home, config=config)


def start_all(tills: list[TillProc]) -> None:
    """Start tills side by side (each waits for its own /v1/status)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(tills)) as pool:
        list(pool.map(TillProc.start, tills))


@contextmanager
def running(*procs: Hq | TillProc) -> Iterator[None]:
    """Stop every process at the end, whatever happened."""
    try:
        yield
    finally:
        for p in procs:
            if isinstance(p, TillProc):
                p.kill()
            else:
                p.stop()


def hq_entries(hq: Hq, cards: list[str]) -> list[dict[str, Any]]:
    """Every entry HQ holds for ``cards`` (from ``cards show``'s shape)."""
    out: list[dict[str, Any]] = []
    for number in cards:
        out += hq.card(number)["entries"]
    return out


def hq_verb(hq: Hq, *args: str) -> subprocess.CompletedProcess[str]:
    """``tillgate hq ARGS --hq URL --token TOKEN`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "tillgate.cli", "hq", *args, "--hq", hq.url, f"--token={hq.token}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def show_json(hq: Hq, number: str) -> dict[str, Any]:
    """``tillgate hq cards show NUMBER --json`` as a real process."""
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "tillgate.cli",
            "hq",
            "cards",
            "show",
            number,
            "--json",
            "--hq",
            hq.url,
            f"--token={hq.token}",  # a token may start with "-"
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def _rows(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


def assert_facts_at_hq_once(hq: Hq, tills: list[TillProc], *, timeout: float = 60) -> None:
    """Every receipt the tills confirmed (and every refund) is at head office as facts
    exactly once, and head office's re-pricing agrees with every one of them."""
    hq_db = hq.root / "hq.sqlite3"
    for till in tills:
        data = till.root / "data" / "tillgate.sqlite3"
        sold = {
            f"sale:{r[0]}"
            for r in _rows(data, "SELECT receipt_id FROM receipts WHERE confirmed_at IS NOT NULL")
        }
        sold |= {f"refund:{r[0]}" for r in _rows(data, "SELECT refund_id FROM refunds")}
        wait_until(
            f"{till.name}'s facts at head office",
            lambda t=till, s=sold: (
                {r[0] for r in _rows(hq_db, "SELECT id FROM receipt_facts WHERE till = ?", t.name)}
                == s
            ),
            timeout=timeout,
        )
    # hq serve re-prices every 5 s, apart from the pushes.
    wait_until(
        "every receipt re-priced",
        lambda: not _rows(hq_db, "SELECT 1 FROM receipt_facts WHERE repriced IS NULL"),
        timeout=timeout,
    )
    names = [t.name for t in tills]
    among = f"till IN ({', '.join('?' * len(names))})"
    wrong = _rows(
        hq_db,
        f"SELECT till, id, problems FROM receipt_facts WHERE repriced = 'disagrees' AND {among}",
        *names,
    )
    assert wrong == [], wrong
    priced = _rows(
        hq_db, f"SELECT COUNT(*) FROM receipt_facts WHERE repriced = 'agrees' AND {among}", *names
    )
    assert priced[0][0] > 0
