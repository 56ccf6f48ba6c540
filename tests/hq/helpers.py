"""Helpers for head-office tests: a real HQ on loopback, tills that enrol, entry builders."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import free_socket, program
from tillgate.core.clock import ManualClock
from tillgate.hq.app import create_app
from tillgate.hq.db import open_database
from tillgate.hq.service import Hq

ADMIN = "admin-token-for-tests-0123456789"
# Loading the CA bundle for every httpx.Client costs ~30 ms; one context serves them all.
_TLS = ssl.create_default_context()
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def entry(
    till: str,
    seq: int,
    card: str,
    kind: str,
    points: int,
    *,
    at: datetime = T0,
    receipt_id: str | None = None,
    ref: str | None = None,
    id: str | None = None,
    delay_days: int = 0,
    expiry_days: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One ledger entry as a till pushes it; ``accrue`` entries carry their lot's dates."""
    available = expires = None
    if kind == "accrue":
        available = iso(at + timedelta(days=delay_days))
        if expiry_days:
            expires = iso(at + timedelta(days=delay_days + expiry_days))
    return {
        "id": id or f"{till}-{seq}-{uuid.uuid4().hex[:8]}",
        "seq": seq,
        "till": till,
        "card": card,
        "kind": kind,
        "points": points,
        "receipt_id": receipt_id,
        "refund_id": None,
        "ref": ref,
        "note": None,
        "created_at": iso(at),
        "available_from": available,
        "expires_at": expires,
        **extra,
    }


@dataclass
class TillClient:
    """An enrolled till: its id, credential, and an HTTP client that sends it."""

    id: str
    store: str
    credential: str
    coupon_key: str
    http: httpx.Client
    seq: int = 0

    def push(self, entries: list[dict[str, Any]], **extra: Any) -> httpx.Response:
        return self.http.post("/v1/sync/push", json={"till": self.id, "entries": entries, **extra})

    def ok_push(self, entries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        r = self.push(entries, **extra)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def next(self, card: str, kind: str, points: int, **kw: Any) -> dict[str, Any]:
        """The till's next entry (its own sequence)."""
        self.seq += 1
        return entry(self.id, self.seq, card, kind, points, **kw)

    def changes(self, cursor: int = 0, limit: int | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"cursor": cursor}
        if limit is not None:
            params["limit"] = limit
        r = self.http.get("/v1/sync/changes", params=params)
        assert r.status_code == 200, r.text
        return dict(r.json())


@dataclass
class HqTest:
    """A running HQ (real database, real uvicorn on loopback) and what tests do with it."""

    hq: Hq
    url: str
    clock: ManualClock
    admin: httpx.Client
    _clients: dict[str | None, httpx.Client] = field(default_factory=dict)

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client sending ``token``, one per token."""
        if token not in self._clients:
            headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
            self._clients[token] = httpx.Client(
                base_url=self.url, headers=headers, timeout=30, verify=_TLS
            )
        return self._clients[token]

    def code(self, till: str = "till-1", store: str = "store-01") -> str:
        r = self.admin.post("/v1/admin/enroll-codes", json={"store": store, "till": till})
        assert r.status_code == 200, r.text
        return str(r.json()["code"])

    def enroll(self, till: str = "till-1", store: str = "store-01") -> TillClient:
        r = self.client().post("/v1/enroll", json={"code": self.code(till, store)})
        assert r.status_code == 200, r.text
        body = r.json()
        return TillClient(
            id=body["till"],
            store=body["store"],
            credential=body["credential"],
            coupon_key=body["coupon_key"],
            http=self.client(body["credential"]),
        )

    def publish(self, data: dict[str, Any] | None = None) -> str:
        r = self.admin.post("/v1/admin/program", json=data or program())
        assert r.status_code == 200, r.text
        return str(r.json()["version"])

    def cards(self, *numbers: str, **balances: int) -> None:
        """Import cards head office then knows (``balances``: number=opening balance)."""
        rows = [(n, 0) for n in numbers] + [(n, b) for n, b in balances.items()]
        text = "number,holder,balance\n" + "".join(f"{n},h,{b or ''}\n" for n, b in rows)
        r = self.admin.post(
            "/v1/admin/cards/import", content=text.encode(), headers={"Content-Type": "text/csv"}
        )
        assert r.status_code == 200, r.text

    def adjust(self, number: str, points: int, reason: str = "test") -> dict[str, Any]:
        """Head office's own adjust of a card (``hq cards adjust``)."""
        r = self.admin.post(
            f"/v1/admin/cards/{number}/adjust", json={"points": points, "reason": reason}
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def card(self, number: str) -> dict[str, Any]:
        r = self.admin.get(f"/v1/admin/cards/{number}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def count(self, table: str, where: str = "", params: tuple[Any, ...] = ()) -> int:
        with self.hq.db.read() as tx:
            sql = f"SELECT COUNT(*) AS n FROM {table}" + (f" WHERE {where}" if where else "")
            return int(tx.scalar(sql, params))

    def snapshot(self) -> dict[str, int]:
        """Row counts of every table a request could write."""
        return {
            t: self.count(t)
            for t in (
                "tills",
                "enroll_codes",
                "entries",
                "cards",
                "programs",
                "changes",
                "coupons_used",
                "coupon_conflicts",
                "sync_conflicts",
                "coupons_issued",
                "quarantine",
                "audit",
            )
        }

    def close(self) -> None:
        for http in self._clients.values():
            http.close()
        self.admin.close()


def start_hq(db_url: str, data_dir: Path, clock: ManualClock) -> tuple[HqTest, Any]:
    """A real HQ on a free loopback port; returns it and a function that stops it."""
    db = open_database(db_url, data_dir=data_dir)
    hq = Hq.open(db, clock=clock, admin_token=ADMIN, data_dir=data_dir)
    sock = free_socket()
    server = uvicorn.Server(
        uvicorn.Config(create_app(hq), log_config=None, access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test HQ did not start")
        time.sleep(0.01)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    admin = httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30, verify=_TLS
    )
    test = HqTest(hq=hq, url=url, clock=clock, admin=admin)

    def stop() -> None:
        test.close()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        db.close()

    return test, stop


def make_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1, made with openssl."""
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("openssl is needed to make a certificate: CI must test TLS")
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key
