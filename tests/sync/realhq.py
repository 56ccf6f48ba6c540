"""The sync tests' head office is the real one: HQ's app on a SQLite file, on loopback.

* :class:`ChainHq` runs ``tillgate.hq`` (its FastAPI app over a real database) in uvicorn
  on a 127.0.0.1 port in a thread, and drives it only through its admin API: publish a
  program, import cards, issue and revoke coupons, enrol tills. It can be stopped and
  started again on the same port and file (HQ down, HQ restored from a backup). Tests read
  HQ's real state back: admin endpoints, or its database for what no endpoint shows.
* :class:`HqLink` is the till's line to it, in the sync client's documented seam (its httpx
  transport). It forwards every request to the real HQ over loopback; faults are armed on
  it: a reply lost after HQ committed, a 5xx from in front of HQ, a connection that drops.
  Behaviour a correct HQ cannot produce comes from :mod:`tests.sync.badhq`, nowhere else.
* :class:`Chain` is a chain till (service and syncer on one real SQLite file) enrolled at
  that HQ with a one-time code, as ``tillgate enroll`` does.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.conftest import CARDS
from tests.hq.helpers import ADMIN, HqTest, TillClient
from tests.sync.badhq import MisbehavingHq, error
from tillgate.agent.api.schemas import CalculateIn
from tillgate.agent.store import cards as card_store
from tillgate.agent.usecases import TillService
from tillgate.core.cards import mask
from tillgate.core.clock import ManualClock
from tillgate.hq.app import create_app
from tillgate.hq.db import open_database
from tillgate.hq.server import bind
from tillgate.hq.service import Hq
from tillgate.sync.client import HqClient
from tillgate.sync.credential import Credential
from tillgate.sync.engine import Syncer

_BY_NUMBER = {c.number: c for c in CARDS}


def card(number: str, **changes: Any) -> card_store.CardRecord:
    """A card row for HQ's import: the test card of that number (or a new one), changed."""
    base = _BY_NUMBER.get(number) or card_store.CardRecord(number=number)
    return replace(base, **changes)


def cards_csv(records: list[card_store.CardRecord]) -> str:
    """The cards CSV an admin imports at HQ (``balance`` is a one-time opening balance)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        ["number", "holder", "phone", "birthday", "tier", "segments", "clubs", "status", "balance"]
    )
    for r in records:
        w.writerow(
            [
                r.number,
                r.holder,
                r.phone or "",
                r.birthday.isoformat() if r.birthday else "",
                r.tier or "",
                ";".join(r.segments),
                ";".join(r.clubs),
                r.status,
                r.opening_balance or "",
            ]
        )
    return out.getvalue()


class ChainHq:
    """A real head office on ``root/hq.sqlite3``, served on a loopback port of its own."""

    def __init__(self, root: Path, clock: ManualClock) -> None:
        self.root = root
        self.clock = clock
        self.port = 0  # chosen on the first start, kept across restarts
        self.published: dict[str, Any] | None = None
        self.cards_loaded = False
        self._api: HqTest | None = None
        self._stop: Callable[[], None] | None = None

    @property
    def db_path(self) -> Path:
        return self.root / "hq.sqlite3"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> HqTest:
        """tests/hq's handle on a running HQ: its admin client, its service, enrolment."""
        assert self._api is not None, "head office is not running"
        return self._api

    # ------------------------------------------------------------ life cycle

    def start(self) -> ChainHq:
        """Open the database (migrated on first use) and serve HQ's app on the port."""
        db = open_database(f"sqlite:///{self.db_path}", data_dir=self.root)
        try:
            service = Hq.open(db, clock=self.clock, admin_token=ADMIN, data_dir=self.root)
            sock = bind("127.0.0.1", self.port)
        except BaseException:
            db.close()
            raise
        self.port = int(sock.getsockname()[1])
        server = uvicorn.Server(
            uvicorn.Config(create_app(service), log_config=None, access_log=False, lifespan="off")
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test head office did not start")
            time.sleep(0.005)
        admin = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10
        )
        self._api = HqTest(hq=service, url=self.url, clock=self.clock, admin=admin)

        def stop() -> None:
            self.api.close()
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
            db.close()
            self._api = None

        self._stop = stop
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    def backup(self, dest: Path) -> None:
        """An online backup of HQ's database while it serves (SQLite's backup API)."""
        src, dst = sqlite3.connect(self.db_path), sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()

    def restore(self, backup: Path) -> None:
        """Put a backup back in place of the database (HQ must be stopped)."""
        assert self._api is None, "stop head office before restoring its database"
        for suffix in ("-wal", "-shm"):
            Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(backup, self.db_path)

    # ------------------------------------------------------------ what an admin does

    def ok(self, method: str, path: str, **kw: Any) -> Any:
        r = self.api.admin.request(method, path, **kw)
        assert r.status_code == 200, f"{method} {mask(path)}: {r.status_code} {r.text}"
        return r.json()

    def publish(self, data: dict[str, Any]) -> str:
        """Publish a program; its version as HQ numbers it."""
        version = self.api.publish(data)
        self.published = data
        return version

    def import_cards(self, *records: card_store.CardRecord) -> dict[str, Any]:
        return dict(
            self.ok(
                "POST",
                "/v1/admin/cards/import",
                content=cards_csv(list(records)).encode(),
                headers={"Content-Type": "text/csv"},
            )
        )

    def enroll_code(self, till: str, store: str = "store-01") -> str:
        return self.api.code(till, store)

    def other_till(self, till: str) -> TillClient:
        """Another till of the chain, pushing hand-made entries straight to HQ's API."""
        return self.api.enroll(till)

    def card(self, number: str) -> dict[str, Any]:
        """A card as HQ shows it (``cards show --json``)."""
        return dict(self.ok("GET", f"/v1/admin/cards/{number}"))

    def issue_coupons(self, promotion: str, count: int) -> list[str]:
        body = {"promotion": promotion, "count": count}
        return list(self.ok("POST", "/v1/admin/coupons/issue", json=body)["codes"])

    def revoke_coupons(self, *codes: str) -> None:
        self.ok("POST", "/v1/admin/coupons/revoke", json={"codes": list(codes)})

    def revoke_till(self, till: str) -> None:
        self.ok("POST", f"/v1/admin/tills/{till}/revoke")

    def flags(self) -> dict[str, Any]:
        return dict(self.ok("GET", "/v1/admin/flags"))

    def through(self, till: str) -> int:
        """The highest seq of ``till`` HQ stored, as ``GET /v1/admin/tills`` says."""
        rows = self.ok("GET", "/v1/admin/tills")["tills"]
        return int(next((r["through_seq"] for r in rows if r["till"] == till), 0))

    # ------------------------------------------------------------ HQ's database, read only

    def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self.api.hq.db.read() as tx:
            return [dict(r) for r in tx.all(sql, args)]

    def entries(self, till: str) -> list[dict[str, Any]]:
        """Every entry of ``till`` HQ stored, in seq order, as stored."""
        return self.rows("SELECT * FROM entries WHERE till = ? ORDER BY seq", till)

    def seqs(self, till: str) -> list[int]:
        return [int(e["seq"]) for e in self.entries(till)]

    def cursor(self) -> int:
        """The cursor a till holds once it has pulled everything HQ has."""
        return int(self.rows("SELECT COALESCE(MAX(id), 0) AS n FROM changes")[0]["n"])


def enroll(hq: ChainHq, till: str, store: str = "store-01") -> Credential:
    """Enrol ``till``: an admin issues a one-time code, the till exchanges it (as
    ``tillgate enroll`` does) for its own credential and the chain's coupon key."""
    code = hq.enroll_code(till, store)
    with HqClient(url=hq.url) as client:
        reply = client.enroll(code)
    return Credential.from_reply(reply.model_dump(), url=hq.url)


class HqLink(httpx.BaseTransport):
    """The till's line to the real HQ (the sync client's transport seam), with faults.

    Unarmed, it forwards every request to HQ on loopback and hands back HQ's reply.
    Armed, in this order of precedence:

    * ``stub``: a :class:`~tests.sync.badhq.MisbehavingHq` with canned replies answers
      instead of HQ until they are used up (only for what a correct HQ never says);
    * ``down``: the connection fails before reaching HQ (nothing reaches it);
    * ``fail_before``: statuses answered in front of HQ, one request each, HQ never sees
      the request (a proxy answering while HQ is away);
    * ``drop_replies``: HQ handles and commits the request, then its 200 is lost;
    * ``fail_after``: HQ handles and commits the request, then a proxy answers this status;
    * ``bad_request``: the next push is spoilt on the way (``entries[0].points`` a
      fraction), so HQ itself refuses it;
    * :meth:`alter_next_page`: HQ's next change page is changed on the way.

    ``requests`` is every request the till sent, ``statuses`` every status HQ answered.
    """

    def __init__(self) -> None:
        self._net = httpx.HTTPTransport()
        self.stub: MisbehavingHq | None = None
        self.down = False
        self.fail_before: list[int] = []
        self.drop_replies = 0
        self.fail_after: list[int] = []
        self.bad_request = False
        self._alter: Callable[[Any], Any] | None = None
        self._altered: list[Any] = []
        self.requests: list[httpx.Request] = []
        self.statuses: list[int] = []

    def pushes(self) -> list[dict[str, Any]]:
        """The body of every push the till sent (whether or not HQ got it)."""
        return [json.loads(r.content) for r in self.requests if r.url.path == "/v1/sync/push"]

    def alter_next_page(self, alter: Callable[[Any], Any]) -> Callable[[], Any]:
        """Pass HQ's next change page through ``alter`` on the way to the till; returns a
        function that gives HQ's page as HQ sent it."""
        self._alter = alter

        def original() -> Any:
            assert self._altered, "no change page was altered"
            return self._altered[-1]

        return original

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.stub is not None and self.stub.replies:
            return self.stub.handle_request(request)
        if self.down:
            raise httpx.ConnectError("connection refused (the line to HQ is down)", request=request)
        if self.fail_before:
            return error(self.fail_before.pop(0), "unavailable", "head office is away")
        if self.bad_request and request.url.path == "/v1/sync/push":
            self.bad_request = False
            body = json.loads(request.content)
            body["entries"][0]["points"] = 1.5
            request = httpx.Request(
                request.method,
                request.url,
                headers={k: v for k, v in request.headers.items() if k != "content-length"},
                json=body,
                extensions=request.extensions,  # the client's timeouts still bound it
            )
        reply = self._net.handle_request(request)
        try:
            content = reply.read()
        finally:
            reply.close()
        self.statuses.append(reply.status_code)
        if self.drop_replies and reply.status_code == 200:
            self.drop_replies -= 1
            raise httpx.ReadTimeout("the reply was lost on the way", request=request)
        if self.fail_after:
            return error(self.fail_after.pop(0), "gateway_timeout", "proxy gave up")
        if self._alter is not None and request.url.path == "/v1/sync/changes":
            page = json.loads(content)
            self._altered.append(page)
            alter, self._alter = self._alter, None
            return httpx.Response(reply.status_code, json=alter(page))
        headers = [(k, v) for k, v in reply.headers.items() if k.lower() != "content-encoding"]
        return httpx.Response(reply.status_code, headers=headers, content=content)

    def close(self) -> None:
        self._net.close()


@dataclass
class Chain:
    """A chain till: its service (the POS side) and syncer (own connection), one file."""

    service: TillService
    syncer: Syncer
    hq: ChainHq
    link: HqLink
    clock: ManualClock
    path: Path
    credential: Credential = field(repr=False)

    @property
    def name(self) -> str:
        return self.credential.till

    def calc(
        self,
        receipt_id: str,
        amount: str,
        *,
        card: str,
        redeem: int | str = 0,
        coupons: list[str] | None = None,
    ) -> Any:
        return self.service.calculate(
            CalculateIn.model_validate(
                {
                    "receipt_id": receipt_id,
                    "card": card,
                    "redeem": redeem,
                    "coupons": coupons or [],
                    "lines": [{"sku": "A", "name": "a", "qty": 1, "price": amount}],
                }
            ).to_request()
        )

    def sale(self, receipt_id: str, amount: str, *, card: str, **kw: Any) -> Any:
        calc = self.calc(receipt_id, amount, card=card, **kw)
        return calc, self.service.confirm(receipt_id)

    def balance(self, card: str) -> int:
        return int(self.service.card_lookup(card)["balance"])

    def rows(self, sql: str, *args: Any) -> list[Any]:
        with self.service.db.read() as conn:
            return [tuple(r) for r in conn.execute(sql, args).fetchall()]

    def seqs(self) -> list[int]:
        return [r[0] for r in self.rows("SELECT seq FROM ledger ORDER BY seq")]

    def unsynced(self) -> list[int]:
        return [
            r[0] for r in self.rows("SELECT seq FROM ledger WHERE synced_at IS NULL ORDER BY seq")
        ]
