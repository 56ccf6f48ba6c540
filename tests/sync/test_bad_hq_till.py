"""A real ``tillgate run`` behind a misbehaving head office keeps selling and keeps its data.

Issue 11, "the till trusts nothing blindly": a forged ``through_seq``, a 200 MiB reply and
a reply that drips a byte a second. The till is a real process syncing every second with a
real HQ process through :class:`~tests.sync.badhq.BadHqServer` on loopback. While the bad
replies come, receipts are rung up through the POS API; then the test checks that every
sale was answered, that nothing is marked synced that HQ does not hold, that the till's
peak RSS (``VmHWM``) stayed under 150 MiB, and — the misbehaviour disarmed — that every
entry and coupon use reaches HQ exactly once.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ANNA, BORIS, VERA, program
from tests.sync.badhq import BadHqServer, Drip, ForgedThrough, HugeReply, MiB, Misbehaviour
from tests.sync.procs import Hq, TillProc, running, wait_until
from tillgate.cli import main as tillgate

pytestmark = pytest.mark.slow

PUSH, CHANGES = "/v1/sync/push", "/v1/sync/changes"
RSS_LIMIT = 150 * MiB
# The client's default deadline for one exchange (ReplyLimits.seconds), and some slack for
# the server to notice the hang-up and for a sync attempt under way to end.
DRIP_WAIT = 15 + 15
COUPON_PROMO = {
    "id": "c10",
    "name": "Coupon 10%",
    "when": {"coupon": True},
    "reward": {"kind": "percent", "value": 10, "on": "order"},
}
CARDS_CSV = f"number,holder,tier,balance\n{ANNA},Анна,silver,150\n{BORIS},Борис,gold,1000\n"


@pytest.fixture(scope="module")
def hq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hq]:
    """One real head office for the module (each test enrols a till of its own)."""
    server = Hq(tmp_path_factory.mktemp("hq")).start()
    try:
        server.import_cards(CARDS_CSV)
        server.push_program(program(COUPON_PROMO, accrual_delay_days=0, expiry_days=0))
        yield server
    finally:
        server.stop()


def enrolled_till(hq: Hq, via: BadHqServer, root: Path, name: str) -> TillProc:
    """A chain till whose ``[hq] url`` is the bad server, enrolled through it."""
    home = root / name
    home.mkdir()
    config = home / "config.toml"
    config.write_text(
        f'[till]\nid = "{name}"\nstore = "store-01"\ndata_dir = "data"\nlanguage = "en"\n'
        f'[hq]\nurl = "{via.url}"\ncredential_file = "data/credential.json"\n'
        "[sync]\ninterval_seconds = 1\noffline_after_seconds = 60\n",
        encoding="utf-8",
    )
    assert tillgate(["enroll", hq.enroll_code(name), "--config", str(config)]) == 0
    return TillProc(name=name, root=home, config=config)


def ring_up(till: TillProc, rid: str, card: str | None, coupons: tuple[str, ...] = ()) -> None:
    """One sale through the POS API; it must be answered (and promptly: httpx's 10 s)."""
    calc = till.post(
        "/v1/receipts/calculate",
        {
            "receipt_id": rid,
            "card": card,
            "coupons": list(coupons),
            "lines": [{"sku": "A", "name": "a", "qty": 1, "price": "300.00"}],
        },
    )
    assert calc.status_code == 200, calc.text
    if coupons:
        assert calc.json()["coupons"]["applied"] == list(coupons), calc.text
    done = till.post(f"/v1/receipts/{rid}/confirm")
    assert done.status_code == 200, done.text


def rows(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return [tuple(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def till_rows(till: TillProc, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return rows(till.root / "data" / "tillgate.sqlite3", sql, *args)


def hq_rows(hq: Hq, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return rows(hq.root / "hq.sqlite3", sql, *args)


def falsely_synced(till: TillProc, hq: Hq) -> list[str]:
    """Entries and coupon uses the till marked synced that HQ does not hold."""
    mine = till_rows(till, "SELECT id FROM ledger WHERE synced_at IS NOT NULL")
    theirs = {r[0] for r in hq_rows(hq, "SELECT id FROM entries WHERE till = ?", till.name)}
    used = till_rows(
        till, "SELECT code FROM coupons_used WHERE till IS NULL AND synced_at IS NOT NULL"
    )
    got = {r[0] for r in hq_rows(hq, "SELECT code FROM coupons_used WHERE till = ?", till.name)}
    return sorted({r[0] for r in mine} - theirs) + sorted({r[0] for r in used} - got)


def memory(till: TillProc, field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (the peak so far) of the till process, in bytes."""
    assert till.proc is not None
    for line in Path(f"/proc/{till.proc.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # kB
    raise AssertionError(f"no {field} in /proc/{till.proc.pid}/status")


# scenario: (the path that misbehaves, how; how often the till must meet it; what it says)
SCENARIOS: dict[str, tuple[str, Callable[[], Misbehaviour], int, str]] = {
    "forged-through-seq": (PUSH, lambda: ForgedThrough(1_000_000), 3, "through seq"),
    # No Content-Length: the till must count for itself.
    "200MiB-push-reply": (PUSH, lambda: HugeReply(200 * MiB, declared=False), 3, "more than"),
    "200MiB-change-page": (CHANGES, lambda: HugeReply(200 * MiB, declared=False), 3, "more than"),
    "drip": (PUSH, lambda: Drip(1.0), 1, "did not finish answering"),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_till_keeps_selling_and_marks_nothing_falsely_synced(
    hq: Hq, tmp_path: Path, scenario: str
) -> None:
    path, misbehaviour, times, says = SCENARIOS[scenario]
    (code, code_2) = hq.ok(
        "POST", "/v1/admin/coupons/issue", json={"promotion": "c10", "count": 2}
    )["codes"]
    with BadHqServer(hq.url) as bad:
        till = enrolled_till(hq, bad, tmp_path, f"till-{scenario}")
        with running(till):
            started = time.monotonic()
            till.start()
            ring_up(till, "R-0", ANNA)
            wait_until("the first sales synced", till.synced, timeout=15)
            rss_synced = memory(till, "VmRSS")
            top = till_rows(till, "SELECT COUNT(*) FROM ledger")[0][0]
            served = bad.arm(path, misbehaviour()).served
            sales = itertools.count(1)

            def sell_until_served() -> bool:
                n = next(sales)
                ring_up(till, f"R-{n}", [ANNA, BORIS, VERA, None][n % 4], (code,) * (n == 1))
                time.sleep(0.2)
                if scenario == "drip":
                    return served.hung_up >= times
                return served.requests >= times

            # The drip ends when the till gives up on it: at the client's deadline.
            wait_until(
                f"{times} {scenario} replies handled by the till",
                sell_until_served,
                timeout=DRIP_WAIT,
            )
            sold = next(sales) - 1
            ring_up(till, "R-last", VERA, (code_2,))  # and a coupon use, right at the end
            assert falsely_synced(till, hq) == []
            peak = memory(till, "VmHWM")
            print(
                f"\n{scenario}: {sold} sales during the bad replies; RSS after the first "
                f"sync {rss_synced / MiB:.1f} MiB, peak {peak / MiB:.1f} MiB"
            )
            assert peak < RSS_LIMIT, f"peak RSS {peak / MiB:.0f} MiB"
            status = till.status()
            assert says in (status["last_sync_error"] or ""), status
            if path == PUSH:  # nothing reached HQ: all of it still waits on the till
                written = till_rows(till, "SELECT COUNT(*) FROM ledger")[0][0] - top
                assert status["unsynced_entries"] == written > 0
            assert till.proc is not None and till.proc.poll() is None

            bad.disarm()
            wait_until("the backlog synced once HQ behaves", till.synced, timeout=15)
            assert falsely_synced(till, hq) == []
            ledger = till_rows(till, "SELECT id, seq FROM ledger ORDER BY seq")
            at_hq = hq_rows(
                hq, "SELECT id, seq FROM entries WHERE till = ? ORDER BY seq", till.name
            )
            assert at_hq == ledger and [s for _, s in ledger] == list(range(1, len(ledger) + 1))
            uses = hq_rows(hq, "SELECT code FROM coupons_used WHERE till = ?", till.name)
            assert sorted(u[0] for u in uses) == sorted([code, code_2])
            print(f"{scenario}: {time.monotonic() - started:.1f} s in all")
