"""Online holds on loopback (issue 12): the round trip, and calculate with and without it."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT, free_port, pg_schema, spawn

HOLD_LINES = [
    {"sku": f"s{i}", "qty": 2, "price": "99.90", "category": "grocery"} for i in range(10)
]
HISTORY = 500  # past sales of the round trip's card, for its second measure


def start_hq(stack: ExitStack, db: str, tmp: Path, *, timeout: float) -> tuple[str, Any]:
    """A real ``tillgate hq serve`` on loopback (SQLite in ``tmp`` unless ``db`` names one),
    stopped with ``stack``: its URL and an httpx client signed in with its admin token."""
    import httpx

    port = free_port()
    url, token = f"http://127.0.0.1:{port}", tmp / "hq-admin.token"
    serve = ["--db", db or str(tmp / "hq.sqlite3"), "--port", str(port), "--data-dir", str(tmp)]
    up = lambda: token.exists() and httpx.get(f"{url}/healthz").status_code == 200  # noqa: E731
    spawn(stack, tmp / "hq.log", "hq", "serve", *serve, "--log-level", "WARNING", ready=up)
    bearer = {"Authorization": f"Bearer {token.read_text().strip()}"}
    return url, stack.enter_context(httpx.Client(base_url=url, timeout=timeout, headers=bearer))


def _trips(
    url: str, credential: str, card: str, n: int, warmup: int, *, keep: bool = True
) -> tuple[list[float], int]:
    """Times of ``n`` holds made by the till's own client (``keep``: on its kept connection,
    else a new connection each), and how many got no answer."""
    from tillgate.agent.usecases.ports import HoldAsk
    from tillgate.sync.holds import KEEP_ALIVE_SECONDS, HqHolds

    keep_alive = KEEP_ALIVE_SECONDS if keep else 0.0
    out, missed = [], 0
    with closing(HqHolds(url=url, credential=credential, keep_alive=keep_alive)) as holds:
        for i in range(warmup + n):
            points = 100 + i % 2 * 50  # four receipts of the card, each calculated again
            ask = HoldAsk(receipt_id=f"RT-{i % 4}", card=card, points=points, exact=False,
                          coupons=(), seconds=900)  # fmt: skip
            t0 = time.perf_counter()
            grant = holds.reserve(ask)
            out.append((time.perf_counter() - t0) * 1000)
            missed += grant is None or grant.granted != points
    return out[warmup:], missed


def _history(url: str, credential: str, till: str, card: str) -> None:
    """Push ``HISTORY`` past sales of ``card``, an accrual and a redemption each, as a sync."""
    from tillgate.sync.client import HqClient

    at = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    year = (datetime.now(UTC) + timedelta(days=335)).isoformat()
    entries = []
    for k in range(HISTORY):
        sale = {"till": till, "card": card, "receipt_id": f"S{k}", "created_at": at}
        entries += [
            {**sale, "id": f"a{k}", "seq": 2 * k + 1, "kind": "accrue", "points": 50,
             "available_from": at, "expires_at": year},
            {**sale, "id": f"r{k}", "seq": 2 * k + 2, "kind": "redeem", "points": -20},
        ]  # fmt: skip
    with HqClient(url=url, credential=credential) as client:
        for i in range(0, len(entries), 500):
            batch = entries[i : i + 500]
            assert client.push({"till": till, "entries": batch}).stored == len(batch)


def _holds_at(db: str, tmp: Path, n: int, warmup: int) -> dict[str, tuple[list[float], int]]:
    """Each measure's times (ms) and no-answers, at a head office on ``db`` ("": SQLite)."""
    import httpx

    with ExitStack() as stack:
        tport = free_port()
        url, admin = start_hq(stack, db, tmp, timeout=60)

        def ok(path: str, **kw: Any) -> Any:
            r = admin.post(path, **kw)
            assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
            return r.json()

        def enroll(till: str) -> str:
            return str(ok("/v1/admin/enroll-codes", json={"store": "bench", "till": till})["code"])

        # A card per calculated receipt, as at a till (card 0 for the round trips too).
        cards = [f"29000{i:08d}" for i in range(warmup + n)]
        ok("/v1/admin/program", json={"toml": (ROOT / "program.example.toml").read_text("utf-8")})
        csv = "number,tier,status,balance\n" + "".join(f"{c},gold,active,9000000\n" for c in cards)
        ok("/v1/admin/cards/import", content=csv, headers={"Content-Type": "text/csv"})
        cred = httpx.post(f"{url}/v1/enroll", json={"code": enroll("rt")}).json()["credential"]
        got = {"trip": _trips(url, cred, cards[0], n, warmup)}
        got["trip_fresh"] = _trips(url, cred, cards[0], n, warmup, keep=False)
        _history(url, cred, "rt", cards[0])
        got["trip_history"] = _trips(url, cred, cards[0], n, warmup)

        config = tmp / "till.toml"
        config.write_text(
            f'[till]\nid = "till"\nstore = "bench"\ndata_dir = "till"\n[hq]\nurl = "{url}"\n'
            'credential_file = "till/credential.json"\n[logging]\nlevel = "WARNING"\n',
            encoding="utf-8",
        )
        args = ["--config", str(config)]
        cmd = [sys.executable, "-m", "tillgate.cli", "enroll", enroll("till"), *args]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        pos = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{tport}", timeout=30))
        # Online once its first sync brought every card (the last one, with its points).
        synced = lambda: pos.get(f"/v1/cards/{cards[-1]}").json().get("balance")  # noqa: E731
        spawn(stack, tmp / "till.log", "run", *args, "--port", str(tport), ready=synced)
        assert pos.get("/v1/status").json()["offline"] is False

        def calculate(redeem: str | int) -> tuple[list[float], int]:
            out, offline = [], 0
            for i, card in enumerate(cards):
                rid = f"{redeem}-{i}"
                body = {"receipt_id": rid, "card": card, "redeem": redeem, "lines": HOLD_LINES}
                t0 = time.perf_counter()
                r = pos.post("/v1/receipts/calculate", json=body)
                out.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
                assert (r.json()["redeemed"]["points"] > 0) == (redeem != 0), r.text
                offline += r.json()["offline"]  # priced offline: no answer in time
                # Cancelled (untimed): the card's hold is released, as a void at a till.
                assert pos.post(f"/v1/receipts/{rid}/cancel").status_code == 200
            return out[warmup:], offline

        got["calc_hold"], got["calc_plain"] = calculate("max"), calculate(0)
        listed = admin.get("/v1/admin/holds", params={"every": True}).json()["holds"]
        made = sum(h["till"] == "till" for h in listed)
        assert made >= len(cards) - got["calc_hold"][1], f"{made} holds for {len(cards)} receipts"
    return got


HOLD_MEASURES = (
    ("trip", "hold round trip, a card with 1 entry", 10),
    ("trip_fresh", "hold round trip, a new connection per hold", None),
    ("trip_history", f"hold round trip, the card after {HISTORY} sales", None),
    ("calc_hold", 'calculate with a hold (`redeem: "max"`)', 15),
    ("calc_plain", "calculate, no redemption (no round trip)", None),
)


def _row(kind: str, what: str, ms: list[float], missed: int, limit: int | None) -> str:
    """A table row: median, p95, p99, max, and the p99 against its target."""
    q = statistics.quantiles(ms, n=100, method="inclusive")
    late = f" — {missed} got no answer within 300 ms" if missed else ""
    verdict = "—" if limit is None else f"≤ {limit}: {'met' if q[98] <= limit else '**missed**'}"
    cells = " | ".join(f"{x:.2f}" for x in (statistics.median(ms), q[94], q[98], max(ms)))
    return f"| {kind} | {what}{late} | {cells} | {verdict} |"


def bench_holds(n: int = 1000, warmup: int = 50) -> str:
    """Online holds on loopback: the round trip, and calculate with and without it."""
    pg = os.environ.get("TILLGATE_BENCH_PG") or os.environ.get("TILLGATE_TEST_PG", "")
    rows, notes, load = [], [], os.getloadavg()[0]
    for kind in ("SQLite", "PostgreSQL") if pg else ("SQLite",):
        with ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            db = pg_schema(stack, pg) if kind == "PostgreSQL" else ""
            got = _holds_at(db, tmp, n, warmup)
        rows += [_row(kind, what, *got[key], limit) for key, what, limit in HOLD_MEASURES]
        med = {k: statistics.median(v[0]) for k, v in got.items()}
        notes.append(
            f"{kind}: the hold adds {med['calc_hold'] - med['calc_plain']:.1f} ms to a calculate's "
            f"median (the round trip alone: {med['trip']:.1f} ms, or {med['trip_fresh']:.1f} ms "
            "on a new connection); the round trip's median is "
            f"{med['trip_history'] / med['trip']:.0f}× as long once the card has {HISTORY} sales."
        )
    return (
        f"{n:,} timed calls after {warmup} warm-up calls each, in ms; load average at the start "
        f"{load:.1f}, at the end {os.getloadavg()[0]:.1f} (other work on the machine).\n\n"
        "| head office | what | median | p95 | p99 | max | target p99 |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n"
        + "\n".join([*rows, "", *(f"- {v}" for v in notes), "", HOLD_HOW])
    )


HOLD_HOW = f"""\
A real `tillgate hq serve` (SQLite, `synchronous=FULL` for everything but a hold's grant,
which does not wait for the disk; PostgreSQL when `TILLGATE_BENCH_PG` or `TILLGATE_TEST_PG`
is set, likewise with `synchronous_commit = off` for a grant) and a real `tillgate run`
enrolled there and synced, on loopback. The round trip is `HqHolds.reserve` (the till's
client: its kept connection and a 300 ms deadline per call; once more with a new connection
per call, as before the connection was kept) on one card, then on that card
after {HISTORY} sales pushed as a sync pushes them: head office reads the card's kept
balance (`cards.balance`, valid until `cards.balance_until`), so the card's history does
not slow a grant. Each calculate is a 10-line basket on a card of its own, cancelled after
(untimed; the till's calculate commits without waiting for the disk, its cancel waits);
every hold is checked in `GET /v1/admin/holds`."""
