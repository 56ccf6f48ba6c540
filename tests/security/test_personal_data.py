"""Personal data on tills (issue 13): what a till holds of card holders, and what it echoes.

A chain's till is sent a display name, a keyed hash of the phone, the birthday's month and
day, tier, segments and clubs — never the full record — and nothing it answers, streams,
logs or shows repeats a full card number, phone or magnetic-stripe data beyond what the
card's own look-up returns. A standalone shop's till keeps what its own cards file holds.

The chain test runs real processes (``tillgate hq serve`` and ``tillgate run`` on
loopback) and reads the till's files as bytes, as whoever finds the disk would.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import ANNA, BORIS, ROOT, VERA, program
from tests.sync.procs import Hq, TillProc, make_till, running, wait_until
from tillgate.agent.store import schema
from tillgate.agent.store.db import Database
from tillgate.core.cardfile import CardRecord
from tillgate.core.cards import display_name, mask_in_text, normalize_phone, phone_lookup_hash

# The stripe and the phone the issue saw echoed by /v1/status.
STRIPE = f"%B{ANNA}^IVANOVA/ANNA^2812?"
PHONE_TYPED = "8 (916) 123-45-67"
CARDS_EXAMPLE = ROOT / "cards.example.csv"  # the demo's cards

TODAY = datetime.now(UTC).date()
VERA_BIRTHDAY = date(1978, TODAY.month, 28 if (TODAY.month, TODAY.day) == (2, 29) else TODAY.day)
CARDS_CSV = (
    "number,holder,phone,birthday,tier,segments,clubs,status,balance\n"
    f"{ANNA},Анна Иванова,+79161234567,1985-03-14,gold,,,active,1240\n"
    f"{BORIS},Петров Борис Игоревич,+7 903 111-22-33,1952-07-02,silver,pensioners,,active,300\n"
    f"{VERA},Вера Смирнова,8 (926) 555-44-33,{VERA_BIRTHDAY.isoformat()},platinum,,wine-club,"
    "active,5200\n"
)
SURNAMES = ["Иванова", "Петров", "Игоревич", "Смирнова", "IVANOVA"]
PHONES = ["79161234567", "9161234567", "79031112233", "9031112233", "79265554433", "9265554433"]
PHONES_WRITTEN = ["916) 123-45-67", "123-45-67", "111-22-33", "555-44-33", "903 111", "926 555"]


def birthdays(day: date) -> list[str]:
    """A birthday written the ways people and programs write a whole date."""
    return [
        day.isoformat(),
        day.strftime("%d.%m.%Y"),
        day.strftime("%Y%m%d"),
        day.strftime("%m/%d/%Y"),
        day.strftime("%d/%m/%Y"),
        f"{day.year}-{day.month}-{day.day}",
    ]


FULL_BIRTHDAYS = [*birthdays(date(1985, 3, 14)), *birthdays(date(1952, 7, 2))]
FULL_BIRTHDAYS += birthdays(VERA_BIRTHDAY)


def leaks(data: bytes) -> list[str]:
    """Every surname, full phone and full birthday of the test cards found in ``data``."""
    needles = [*SURNAMES, *PHONES, *PHONES_WRITTEN, *FULL_BIRTHDAYS]
    found = [n for n in needles if n.encode("utf-8") in data]
    found += [f"{n} (utf-16)" for n in SURNAMES if n.encode("utf-16-le") in data]
    return found


def echoes(text: str) -> list[str]:
    """Full card numbers, phones and stripe data in ``text`` (a response, event, page)."""
    needles = [ANNA, BORIS, VERA, "IVANOVA", "2812", *PHONES, *PHONES_WRITTEN]
    return [n for n in needles if n in text]


# ------------------------------------------------------------------ the masking itself


def test_a_stripe_and_a_phone_typed_nationally_are_masked_whole() -> None:
    assert mask_in_text(STRIPE) == "2900•••••0011"
    assert mask_in_text(f";{ANNA}=28121010000?") == "2900•••••0011"
    assert mask_in_text(PHONE_TYPED) == "+7916•••4567"
    assert mask_in_text("call 916 123-45-67 or 8-903-111-22-33") == (
        "call +7916•••4567 or +7903•••2233"
    )
    # What is not a card or phone stays readable.
    assert mask_in_text("at 2026-11-23 12:00:00 total 1 234.50") == (
        "at 2026-11-23 12:00:00 total 1 234.50"
    )


@pytest.mark.parametrize(
    ("holder", "shown"),
    [
        ("Анна Иванова", "Анна И."),
        ("Иванова Анна Сергеевна", "Анна И."),  # surname first, with a patronymic
        ("Петров-Водкин Кузьма Сергеевич", "Кузьма П."),
        ("Иванова, Анна", "Анна И."),
        ("  anna   maria ivanova ", "anna I."),
        ("Анна", "Анна"),
        ("Анна И.", "Анна И."),  # a display name is its own display name
        ("", ""),
    ],
)
def test_display_name(holder: str, shown: str) -> None:
    assert display_name(holder) == shown


# ------------------------------------------------------------------ what the POS API echoes


def test_status_and_session_never_echo_the_stripe_or_the_phone(make_till: Any) -> None:
    """The issue's finding: ``card_session`` in /v1/status echoed what the POS sent."""
    till = make_till(cards=[CardRecord(number=ANNA, holder="Анна Иванова", phone="+79161234567")])
    for raw in (STRIPE, PHONE_TYPED, f";{ANNA}=2812101?"):
        r = till.http.post("/v1/session/card", json={"card": raw, "source": "card_reader"})
        assert r.status_code == 200, r.text
        assert echoes(r.text) == [], r.text
        session = till.http.get("/v1/status").json()["card_session"]
        assert echoes(json.dumps(session, ensure_ascii=False)) == [], session
        assert session["card"] in ("2900•••••0011", "+7916•••4567")
    # The session still works: the next receipt uses the card.
    calc = till.ok_calc("R-1", [{"sku": "a", "qty": 1, "price": "10.00"}])
    assert calc["card"]["number"] == "2900•••••0011" and calc["card"]["holder"] == "Анна И."


def test_errors_about_a_card_do_not_repeat_it(make_till: Any) -> None:
    till = make_till()
    for raw in ("+79990001122", "8 (999) 000-11-22", "%B2900000000998^PETROV/IVAN^2812?"):
        r = till.http.get(f"/v1/cards/{quote(raw, safe='')}")
        assert r.status_code == 404, r.text
        assert "9990001122" not in r.text and "000-11-22" not in r.text, r.text
        assert "PETROV" not in r.text and "2900000000998" not in r.text, r.text
    r = till.http.post("/v1/session/card", json={"card": "%B2900000000998^PETROV/IVAN^2812?"})
    # The program registers unknown cards on first use: the session starts, unechoed.
    assert r.status_code == 200 and "PETROV" not in r.text and "2900000000998" not in r.text
    session = till.http.get("/v1/status").json()["card_session"]
    assert session["card"] == "2900•••••0998", session


# ------------------------------------------------------------------ a standalone shop


def test_a_standalone_till_keeps_its_own_cards_file(make_till: Any, tmp_path: Path) -> None:
    anna = CardRecord(
        number=ANNA, holder="Анна Иванова", phone="+79161234567", birthday=date(1985, 3, 14)
    )
    till = make_till(cards=[anna])
    by_phone = till.http.get(f"/v1/cards/{quote(PHONE_TYPED)}")
    assert by_phone.status_code == 200, by_phone.text
    assert by_phone.json()["holder"] == "Анна И."  # what the till shows: the display name
    till.service.db.close()
    conn = sqlite3.connect(tmp_path / "till.sqlite3")
    try:
        row = conn.execute(
            "SELECT holder, phone, birthday, phone_hash FROM cards WHERE number = ?", (ANNA,)
        ).fetchone()
    finally:
        conn.close()
    assert row == ("Анна Иванова", "+79161234567", "1985-03-14", None)


# ------------------------------------------------------------------ a chain, for real


def _events(url: str, seen: list[str], stop: threading.Event) -> None:
    """Read the till's event stream into ``seen`` until ``stop`` (or the stream idles)."""
    try:
        with httpx.stream("GET", f"{url}/v1/events", timeout=httpx.Timeout(10, read=3)) as r:
            for line in r.iter_lines():
                seen.append(line)
                if stop.is_set():
                    return
    except httpx.HTTPError:  # idle for a while, or the till stopped
        return


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_a_chain_till_holds_no_surname_phone_or_birthday(tmp_path: Path) -> None:
    hq = Hq(tmp_path / "hq").start()
    till: TillProc | None = None
    with running(hq):
        hq.import_cards(CARDS_CSV)
        hq.push_program(
            program(
                accrual_delay_days=0,
                expiry_days=0,
                birthday_points=200,
                birthday_window_days=1,  # the till's local day may be UTC's ± 1
            )
        )
        till = make_till(hq, tmp_path, "till-1")
        with till.config.open("a", encoding="utf-8") as f:
            f.write('[logging]\nlevel = "DEBUG"\n')
        with running(till):
            till.start()
            wait_until("the till synced", till.synced)
            seen: list[str] = []
            stop = threading.Event()
            reader = threading.Thread(target=_events, args=(till.url, seen, stop), daemon=True)
            reader.start()
            time.sleep(0.3)

            # Phone look-up works through the hash, however the phone is written.
            for typed in ("+79161234567", PHONE_TYPED, "9161234567"):
                r = httpx.get(f"{till.url}/v1/cards/{quote(typed, safe='')}", timeout=5)
                assert r.status_code == 200, r.text
                card = r.json()
                assert (card["number"], card["holder"]) == ("2900•••••0011", "Анна И."), card
            boris = httpx.get(f"{till.url}/v1/cards/{quote('+7 903 111-22-33')}", timeout=5)
            assert boris.json()["holder"] == "Борис П."
            assert httpx.get(f"{till.url}/v1/cards/+79990001122", timeout=5).status_code == 404

            # Cards presented the ways a POS and a reader do, then sales on them.
            for k, raw in enumerate((STRIPE, PHONE_TYPED, f";{BORIS}=2812101?", VERA)):
                r = till.post("/v1/session/card", {"card": raw, "source": "card_reader"})
                assert r.status_code == 200, r.text
                status = till.status()
                assert echoes(json.dumps(status, ensure_ascii=False)) == [], status
                till.sale(f"S-{k}", "100.00", card=ANNA if k < 2 else BORIS)
            till.sale("S-phone", "50.00", card="+79161234567")

            # The birthday bonus still fires on the day: the till knows month and day.
            r = till.post(
                "/v1/receipts/calculate",
                {
                    "receipt_id": "B-1",
                    "card": VERA,
                    "lines": [{"sku": "A", "name": "a", "qty": 1, "price": "10.00"}],
                },
            )
            assert r.status_code == 200, r.text
            assert "birthday" in [h["kind"] for h in r.json()["hints"]], r.json()["hints"]
            confirmed = till.post("/v1/receipts/B-1/confirm").json()
            assert confirmed["accrued"]["points"] >= 200, confirmed

            panel = httpx.get(f"{till.url}/", timeout=5).text
            assert echoes(panel) == []
            wait_until("the sales at head office", till.synced)
            stop.set()
            till.post("/v1/session/card", {"card": VERA})  # one more event ends the reader
            reader.join(timeout=10)
            events = "\n".join(seen)
            assert "Анна И." in events and echoes(events) == [], events
            running_files = _files(till.root)
        till.stop()

        # Head office still has the whole record; the till never had it.
        assert hq.card(ANNA)["holder"] == "Анна Иванова"
        stopped_files = _files(till.root)
        for files in (running_files, stopped_files):
            found = {name: leaks(data) for name, data in files.items() if leaks(data)}
            assert found == {}, found
        log = (till.root / "till.log").read_text(encoding="utf-8")
        assert echoes(log) == [], [ln for ln in log.splitlines() if echoes(ln)]
        key_file = till.root / "data" / "keys" / "lookup.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = bytes.fromhex(key_file.read_text().strip())
        assert key == bytes.fromhex((hq.root / "lookup.key").read_text().strip())
        conn = sqlite3.connect(till.root / "data" / "tillgate.sqlite3")
        try:
            rows = conn.execute(
                "SELECT number, holder, phone, phone_hash, birthday FROM cards ORDER BY number"
            ).fetchall()
        finally:
            conn.close()
        phones = ("+79161234567", "+79031112233", "+79265554433")
        hashed = {phone: bytes.fromhex(phone_lookup_hash(key, phone)) for phone in phones}
        assert rows == [  # the phone's keyed hash as its 32 bytes (till schema 11)
            (ANNA, "Анна И.", None, hashed["+79161234567"], "--03-14"),
            (BORIS, "Борис П.", None, hashed["+79031112233"], "--07-02"),
            (VERA, "Вера С.", None, hashed["+79265554433"], rows[2][4]),
        ]
        assert rows[2][4] == f"--{VERA_BIRTHDAY:%m-%d}"


# ------------------------------------------------------------------ a till upgraded


def _old_till(path: Path, upto: int) -> None:
    """A data file at schema ``upto`` holding what chain tills used to hold of holders."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        for script in schema.MIGRATIONS[:upto]:
            if callable(script):
                conn.execute("BEGIN")
                script(conn)
                conn.execute("COMMIT")
            else:
                conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {upto}")
        at = "2026-11-01T10:00:00.000000+00:00"
        for number, holder, phone, birthday in (
            (ANNA, "Анна Иванова", "+79161234567", "1985-03-14"),
            (BORIS, "Петров Борис Игоревич", "+79031112233", "1952-07-02"),
        ):
            conn.execute(
                "INSERT INTO cards (number, holder, phone, birthday, tier, origin, created_at,"
                " updated_at) VALUES (?,?,?,?,'gold','hq',?,?)",
                (number, holder, phone, birthday, at, at),
            )
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('sync.cursor', '4711')"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        response = {
            "receipt_id": "R-1",
            "card": {"number": "2900•••••0011", "holder": "Анна Иванова"},
        }
        customer = {"number": ANNA, "birthday": "1985-03-14", "tier": "gold"}
        conn.execute(
            "INSERT INTO receipts (receipt_id, status, card, request, result, response,"
            " created_at, updated_at) VALUES ('R-1', 'confirmed', ?, ?, ?, ?, ?, ?)",
            (
                ANNA,
                json.dumps({"receipt_id": "R-1", "card": "+79161234567", "lines": []}),
                json.dumps(
                    {  # a whole version-1 record, as such a till wrote it
                        "v": 1,
                        "card_source": "pos",
                        "lines": [],
                        "uses": [],
                        "stamps": {},
                        "budget": {},
                        "birthday_points": 0,
                        "birthday_year": None,
                        "coupons_used": {},
                        "printed": [],
                        "subtotal": 0,
                        "discount": 0,
                        "total": 0,
                        "redeemed_amount": 0,
                        "facts": {"inputs": {"customer": customer}},
                    }
                ),
                json.dumps(response, ensure_ascii=False),
                at,
                at,
            ),
        )
        body = {"v": 1, "card": ANNA, "calculation": {"inputs": {"customer": customer}}}
        conn.execute(
            "INSERT INTO facts (id, kind, receipt_id, after_seq, body, created_at)"
            " VALUES ('sale:R-1', 'sale', 'R-1', 1, ?, ?)",
            (json.dumps(body, sort_keys=True), at),
        )
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def test_an_upgraded_till_forgets_what_it_held(tmp_path: Path) -> None:
    path = tmp_path / "tillgate.sqlite3"
    upto = schema.MIGRATIONS.index(schema.V6)
    _old_till(path, upto)
    assert leaks(path.read_bytes())  # the old file holds them (the test would see them)
    db = Database(path)
    try:
        assert db.schema_version == len(schema.MIGRATIONS)
        with db.read() as conn:
            cards = conn.execute(
                "SELECT holder, phone, birthday FROM cards ORDER BY number"
            ).fetchall()
            cursor = conn.execute("SELECT value FROM meta WHERE key = 'sync.cursor'").fetchone()
            fact = json.loads(conn.execute("SELECT body FROM facts").fetchone()[0])
            # The request is not kept at all since schema 9 (a compact receipt).
            request = conn.execute("SELECT request FROM receipts").fetchone()[0]
        assert [tuple(r) for r in cards] == [
            ("Анна И.", None, "--03-14"),
            ("Борис П.", None, "--07-02"),
        ]
        assert cursor[0] == "0"  # the next pull is a full one, bringing the phone hashes
        assert fact["card"] == ANNA  # what head office needs of the facts stays
        assert fact["calculation"]["inputs"]["customer"]["birthday"] == "--03-14"
        assert request == ""
        files = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    finally:
        db.close()
    files |= {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    found = {name: leaks(data) for name, data in files.items() if leaks(data)}
    assert found == {}, found


# ------------------------------------------------------------------ after a demo


@pytest.mark.slow
def test_after_a_demo_the_till_holds_no_surname_phone_or_birthday(tmp_path: Path) -> None:
    """``tillgate demo``: head office, a chain till, sales by card, phone and stripe, offline
    and back; its till's files and log are scanned for the demo cards' holders."""
    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "tillgate.cli", "demo", "--out", str(out), "--receipts", "9"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    demo_cards = list(csv.DictReader(io.StringIO(CARDS_EXAMPLE.read_text(encoding="utf-8"))))
    surnames = [c["holder"].split()[-1] for c in demo_cards if len(c["holder"].split()) > 1]
    phones = [p for c in demo_cards if (p := normalize_phone(c["phone"]))]
    born = [date.fromisoformat(c["birthday"]) for c in demo_cards if c["birthday"]]
    needles = [*surnames, *(p.lstrip("+") for p in phones), *(p[-10:] for p in phones)]
    needles += [text for day in born for text in birthdays(day)]
    assert len(surnames) >= 4 and len(phones) >= 4 and len(born) >= 4
    till = out / "data" / "till"
    files = _files(till)
    assert any(name.endswith(".sqlite3") for name in files), sorted(files)
    found = {
        name: [n for n in needles if n.encode("utf-8") in data]
        for name, data in files.items()
        if any(n.encode("utf-8") in data for n in needles)
    }
    assert found == {}, found
    assert any("Анна И.".encode() in data for data in files.values())  # what it does keep
    # The till's log, and the agent's answers the demo kept: no full number, phone or stripe.
    numbers = [c["number"] for c in demo_cards]
    for text in ((out / "logs" / "agent.log").read_text(encoding="utf-8"),):
        shown = [n for n in [*numbers, *(p.lstrip("+") for p in phones)] if n in text]
        assert shown == [], shown
    # Head office, not the till, keeps the whole record.
    assert any(
        s.encode("utf-8") in b for s in surnames for b in _files(out / "data" / "hq").values()
    )
