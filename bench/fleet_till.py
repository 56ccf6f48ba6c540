"""The simulated tills of ``bench/fleet.py``: one worker process drives a slice of the fleet.

Each till speaks the real sync protocol (docs/sync-protocol.md) over httpx's async client:
it enrols with its one-time code (``POST /v1/enroll``), then, as a till in a busy store,
rings up a receipt every ``receipt_every`` seconds — on a loyalty card or not; a card's
receipt redeems points now and then, first held at head office (``POST /v1/holds``), then
resolved as confirmed (``POST /v1/holds/resolve``) — and keeps the ledger entries and the
receipt facts a real till writes for it (``hold``, ``release``, ``redeem``, ``accrue``;
``sale:<receipt>``). Every ``push_every`` seconds it pushes what it has (``POST
/v1/sync/push``, entries in seq order, a fact once head office holds its entries), and
every ``pull_every`` seconds it pulls the change feed from its cursor (``GET
/v1/sync/changes``), watching for the probe card whose balance head office moves, to time
the feed's lag.
"""

from __future__ import annotations

import asyncio
import copy
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

KINDS = ("enroll", "push", "pull", "hold", "resolve")
PULL_LIMIT = 500  # the till's page size (sync/engine.py)
MAX_PAGES = 20  # pages one pull may read before the next tick
TIMEOUT = 30.0  # one exchange, connect to last byte; past it the exchange is an error


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How the fleet behaves: the pace of each till, and what its receipts are."""

    seconds: float  # the steady window
    receipt_every: float = 30.0
    push_every: float = 10.0
    pull_every: float = 30.0  # a till's sync.interval_seconds
    card_share: float = 0.6  # receipts on a loyalty card
    redeem_share: float = 0.3  # of those, receipts that redeem points (a hold first)
    delay_days: int = 0  # the program's accrual delay and expiry (the accrue lot)
    expiry_days: int = 0


@dataclass(frozen=True, kw_only=True)
class Template:
    """A receipt the real rules engine priced (bench/fleet.py ``templates``): its facts'
    ``calculation`` and body figures, re-used with each receipt's own ids and times."""

    calculation: dict[str, Any]
    total: int
    accrued: int
    redeemed: int
    uses: list[str]
    budget: dict[str, int]
    stamps: dict[str, int]


@dataclass(kw_only=True)
class Tally:
    """What one worker's tills did in the steady window (and the enrolment before it)."""

    ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    receipts: int = 0
    entries_made: int = 0
    entries_pushed: int = 0  # head office's through_seq, summed over the tills
    facts_made: int = 0
    facts_taken: int = 0
    holds_short: int = 0  # a hold granted less than asked (the receipt then redeems nothing)
    # (the probe card's balance a till saw before, the one it sees now, wall time)
    seen: list[tuple[int, int, float]] = field(default_factory=list)

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{kind}: {what}"[:300])


class Till:
    """One simulated till: its credential, its unsynced entries and facts, its cursor."""

    def __init__(self, *, id: str, store: str, url: str, code: str) -> None:
        self.id, self.store, self.url, self.code = id, store, url, code
        self.auth: dict[str, str] = {}
        self.seq = 0
        self.outbox: list[dict[str, Any]] = []  # entries not yet in head office's through_seq
        self.facts: list[dict[str, Any]] = []
        self.through = 0
        self.cursor = 0
        self.probe = -1
        self.n = 0

    def entry(self, card: str, kind: str, points: int, rid: str, now: str, **kw: Any) -> str:
        self.seq += 1
        e = {"id": uuid.uuid4().hex, "seq": self.seq, "till": self.id, "card": card,
             "kind": kind, "points": points, "receipt_id": rid, "refund_id": None,
             "ref": None, "note": None, "created_at": now,
             "available_from": None, "expires_at": None, **kw}  # fmt: skip
        self.outbox.append(e)
        return str(e["id"])


class Fleet:
    """A worker's tills against head office, counting every exchange into one Tally."""

    def __init__(
        self, *, tills: list[Till], plan: Plan, cards: list[str], probe: str,
        templates: list[dict[str, Template]], version: str, seed: int,
    ) -> None:  # fmt: skip
        self.tills, self.plan, self.cards, self.probe = tills, plan, cards, probe
        self.templates, self.version = templates, version
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.steady = False
        self.until = float("inf")  # the window's end (the event loop's clock)

    def late(self) -> bool:
        """The window is over: a till finishes the exchange in hand and asks no more."""
        return asyncio.get_running_loop().time() >= self.until

    async def call(self, kind: str, method: str, till: Till, path: str, **kw: Any) -> Any:
        """One exchange; its time counted under ``kind`` (in the steady window); an answer
        that is not 200 (or 409 sequence_gap) is an error."""
        import httpx

        t0 = time.perf_counter()
        try:
            r = await self.http.request(
                method, till.url + path, headers=till.auth, timeout=TIMEOUT, **kw
            )
        except httpx.HTTPError as exc:
            self.tally.error(kind, f"{type(exc).__name__}: {exc}")
            return None
        if self.steady or kind == "enroll":
            self.tally.ms[kind].append((time.perf_counter() - t0) * 1000)
        if r.status_code == 409 and kind == "push":
            return r.json()
        if r.status_code != 200:
            self.tally.error(kind, f"{r.status_code} {r.text[:200]}")
            return None
        return r.json()

    async def enroll(self, till: Till) -> bool:
        got = await self.call("enroll", "POST", till, "/v1/enroll", json={"code": till.code})
        if got is None:
            return False
        till.auth = {"Authorization": f"Bearer {got['credential']}"}
        return True

    async def receipt(self, till: Till) -> None:
        """Ring up a receipt as a till does: hold, confirm, its entries and facts."""
        p, rng = self.plan, self.rng
        till.n += 1
        rid = f"{till.id}-{till.n}"
        card = self.cards[rng.randrange(len(self.cards))] if rng.random() < p.card_share else None
        redeem = card is not None and rng.random() < p.redeem_share
        basket = self.templates[rng.randrange(len(self.templates))]
        t = basket["redeem" if redeem else "card" if card else "none"]
        if redeem and card is not None:
            ask = {"receipt_id": rid, "card": card, "points": t.redeemed, "exact": False,
                   "coupons": [], "seconds": 600}  # fmt: skip
            grant = await self.call("hold", "POST", till, "/v1/holds", json=ask)
            if grant is None or grant.get("granted") != t.redeemed:
                self.tally.holds_short += grant is not None
                t, redeem = basket["card"], False
                end = {"receipt_id": rid, "resolution": "cancelled", "card": card}
                await self.call("resolve", "POST", till, "/v1/holds/resolve", json=end)
        now = datetime.now(UTC)
        at = now.isoformat()
        made = till.seq
        if card is not None:
            if redeem:
                hold = till.entry(card, "hold", -t.redeemed, rid, at)
                till.entry(card, "release", t.redeemed, rid, at, ref=hold, note="confirmed")
                till.entry(card, "redeem", -t.redeemed, rid, at, ref=hold)
            if t.accrued > 0:
                available = now + timedelta(days=p.delay_days)
                expires = available + timedelta(days=p.expiry_days) if p.expiry_days else None
                till.entry(card, "accrue", t.accrued, rid, at,
                           available_from=available.isoformat(),
                           expires_at=expires.isoformat() if expires else None)  # fmt: skip
        self.tally.entries_made += till.seq - made
        calc = copy.deepcopy(t.calculation)
        inputs = calc["inputs"]
        inputs["till"], inputs["store"] = till.id, till.store
        if inputs["customer"] is not None:
            inputs["customer"]["number"] = card
        body = {"receipt_id": rid, "till": till.id, "store": till.store, "card": card,
                "confirmed_at": at, "local_time": now.replace(tzinfo=None).isoformat(),
                "offline": False, "paid_reported": None, "fiscal_id": None, "total": t.total,
                "accrued": t.accrued if card else 0, "redeemed": t.redeemed if redeem else 0,
                "uses": t.uses, "budget": t.budget, "stamps": t.stamps,
                "calculation": calc}  # fmt: skip
        till.facts.append({"id": f"sale:{rid}", "kind": "sale", "receipt_id": rid,
                           "after_seq": till.seq, "created_at": at, "body": body})  # fmt: skip
        self.tally.facts_made += 1
        self.tally.receipts += 1
        if redeem:
            end = {"receipt_id": rid, "resolution": "confirmed", "redeemed": t.redeemed,
                   "card": card, "at": at}  # fmt: skip
            await self.call("resolve", "POST", till, "/v1/holds/resolve", json=end)

    async def push(self, till: Till) -> None:
        """Push what the till has not yet delivered, as the sync does (batches of 1000)."""
        for _ in range(10):
            entries = till.outbox[:1000]
            sent_through = entries[-1]["seq"] if entries else till.through
            facts = [f for f in till.facts if f["after_seq"] <= sent_through][:1000]
            if not entries and not facts:
                return
            body = {"till": till.id, "entries": entries, "coupons_used": [], "cards_new": [],
                    "facts": facts, "holds": []}  # fmt: skip
            got = await self.call("push", "POST", till, "/v1/sync/push", json=body)
            if got is None:
                return
            if "error" in got:  # 409 sequence_gap: resend from where head office is
                expected = int(got["error"].get("expected", till.through + 1))
                self.tally.error("push", f"sequence_gap, expected {expected}")
                till.outbox = [e for e in till.outbox if e["seq"] >= expected]
                till.through = expected - 1
                continue
            till.through = max(till.through, int(got["through_seq"]))
            till.outbox = [e for e in till.outbox if e["seq"] > till.through]
            taken = set(got.get("facts", ()))
            till.facts = [f for f in till.facts if f["id"] not in taken]
            self.tally.facts_taken += len(taken & {f["id"] for f in facts})
            if (len(entries) < 1000 and len(facts) < 1000) or self.late():
                return

    async def pull(self, till: Till) -> None:
        """Pull the change feed from the till's cursor; note when the probe card moved."""
        for _ in range(MAX_PAGES):
            q = {"cursor": till.cursor, "limit": PULL_LIMIT}
            page = await self.call("pull", "GET", till, "/v1/sync/changes", params=q)
            if page is None:
                return
            till.cursor = int(page["cursor"])
            for c in page.get("cards") or ():
                if c["number"] == self.probe and c["balance"] > till.probe:
                    if self.steady:  # every move after the one it saw last, seen now
                        self.tally.seen.append((till.probe, c["balance"], time.time()))
                    till.probe = c["balance"]
            if not page.get("more") or self.late():
                return

    async def live(self, till: Till, until: float) -> None:
        """The till's steady life: receipts, pushes and pulls, each on its own beat."""
        p, rng = self.plan, self.rng
        loop = asyncio.get_running_loop()
        due = {"receipt": rng.uniform(0, p.receipt_every), "push": rng.uniform(0, p.push_every),
               "pull": rng.uniform(0, p.pull_every)}  # fmt: skip
        every = {"receipt": p.receipt_every, "push": p.push_every, "pull": p.pull_every}
        start = loop.time()
        due = {k: start + v for k, v in due.items()}
        while True:
            what = min(due, key=due.__getitem__)
            if due[what] >= until or loop.time() >= until:
                return  # a till behind its beats stops with the window all the same
            await asyncio.sleep(max(0.0, due[what] - loop.time()))
            try:
                await {"receipt": self.receipt, "push": self.push, "pull": self.pull}[what](till)
            except Exception as exc:  # a reply of an unexpected shape: an error, not a dead till
                self.tally.error(what, f"{type(exc).__name__}: {exc}")
            # The next beat is due a period after this one was, not after it ended: a slow
            # head office makes a till late, never less busy.
            due[what] += every[what]

    async def run(self, started: Any, go: Any, *, concurrency: int = 50) -> Tally:
        """Enrol every till (``concurrency`` at a time), start each at ``cursor`` (the feed
        as of the snapshot one till pulled), say so on ``started``, live from the wall time
        ``go`` gives (with the cursor) for the plan's window, then push what is left."""
        import httpx

        limits = httpx.Limits(max_connections=None, max_keepalive_connections=len(self.tills))
        async with httpx.AsyncClient(limits=limits) as self.http:
            gate = asyncio.Semaphore(concurrency)

            async def enrol(t: Till) -> None:
                async with gate:
                    await self.enroll(t)

            await asyncio.gather(*(enrol(t) for t in self.tills))
            live = [t for t in self.tills if t.auth]
            started.put({"enrolled": len(live)})
            loop = asyncio.get_running_loop()
            when, cursor = await loop.run_in_executor(None, go.get)
            for t in live:
                t.cursor = cursor
            await asyncio.sleep(max(0.0, when - time.time()))
            self.steady = True
            self.until = until = loop.time() + self.plan.seconds
            await asyncio.gather(*(self.live(t, until) for t in live))
            self.steady, self.until = False, float("inf")
            # What a till would send at its next sync: so head office ends up with all of it.
            await asyncio.gather(*(self.drain(t) for t in live))
            self.tally.entries_pushed = sum(t.through for t in live)
        return self.tally

    async def drain(self, till: Till) -> None:
        for _ in range(5):
            if not till.outbox and not till.facts:
                return
            await self.push(till)


def work(job: dict[str, Any], out: Any, go: Any) -> None:
    """A worker process: its tills from ``job``; ``{"enrolled": n}`` then its Tally (as a
    dict) onto queue ``out``; the start time and cursor from queue ``go``."""
    tills = [Till(**t) for t in job["tills"]]
    templates = [{k: Template(**t) for k, t in b.items()} for b in job["templates"]]
    fleet = Fleet(tills=tills, plan=Plan(**job["plan"]), cards=job["cards"], probe=job["probe"],
                  templates=templates, version=job["version"], seed=job["seed"])  # fmt: skip
    try:
        tally = asyncio.run(fleet.run(out, go))
        out.put({"ok": True, **tally.__dict__})
    except BaseException as exc:  # the parent reports it; never a silent worker
        out.put({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        raise
