"""``tillgate doctor``: one line per check, ok or FAIL with the fix, against real parts.

Head office is the real one on loopback (:class:`tests.sync.realhq.ChainHq`), devices are
real ptys (a printer played by :class:`tests.drivers.fake_printer.PtyPrinter`), the data
dir and the SQLite file are real files, and the running agent is a real ``tillgate run``.
The one fake is at the clock seam: the till's clock is shifted, head office's is not.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import copy_examples, free_port, free_socket, spawn_agent
from tests.drivers.fake_printer import PtyPrinter, wait_until
from tests.sync.realhq import ChainHq, enroll
from tillgate.agent.doctor import Check, Level, run_checks
from tillgate.agent.store.db import Database
from tillgate.agent.store.schema import MIGRATIONS
from tillgate.core.clock import ManualClock
from tillgate.core.config import load_config
from tillgate.core.errors import ConfigError
from tillgate.sync import credential as cred_file

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="pty ports are POSIX")


@dataclass(frozen=True)
class ShiftedClock:
    """The till's clock, set wrong by ``offset`` (the clock seam; head office keeps time)."""

    offset: timedelta

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def edit(config: Path, **replace: str) -> Path:
    """Replace whole ``key = …`` lines of the config (the first of each key)."""
    text = config.read_text(encoding="utf-8")
    for key, value in replace.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text, count=1)
        assert n == 1, key
    config.write_text(text, encoding="utf-8")
    return config


def set_device(config: Path, section: str, url: str, extra: str = "") -> Path:
    """Give ``[section]`` (``devices.printer``, …) of the sample config a device URL."""
    text, n = re.subn(
        rf'(?m)^\[{re.escape(section)}\]\nurl = "none"(.*)$',
        lambda m: f'[{section}]\nurl = "{url}"{m.group(1)}\n{extra}',
        config.read_text(encoding="utf-8"),
    )
    assert n == 1, section
    config.write_text(text, encoding="utf-8")
    return config


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """The shipped sample set-up, on a POS API port nothing else uses."""
    return edit(copy_examples(tmp_path), port=str(free_port()))


# ---------------------------------------------------------------- a standalone till


def test_the_example_set_up_is_all_ok(examples: Path) -> None:
    checks = run_checks(examples, clock=ManualClock())
    assert [c.name for c in checks] == [
        "config",
        "data dir",
        "file modes",
        "database",
        "program",
        "cards file",
        "pos api",
        "printer",
        "scanner",
        "card reader",
        "intercept",
        "hq",
        "clock",
    ]
    assert all(c.ok for c in checks), [c.line() for c in checks]
    checks_ = by_name(checks)
    assert "does not exist yet" in checks_["data dir"].detail
    assert "none yet" in checks_["database"].detail
    assert "'Ромашка Бонус'" in checks_["program"].detail
    assert "free for `tillgate run`" in checks_["pos api"].detail
    assert checks_["printer"].detail == 'not configured (url = "none")'
    assert checks_["hq"].level is Level.SKIP and checks_["clock"].level is Level.SKIP
    assert not (examples.parent / "var").exists()  # doctor made no data dir


def test_the_cli_prints_one_aligned_line_per_check(examples: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tillgate.cli", "doctor", "--config", examples.name],
        cwd=examples.parent,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=60,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 13
    for line in lines:
        m = re.fullmatch(r"(ok|warn|FAIL|skip) +(\S+(?: \S+)?) {2,}(\S.*)", line)
        assert m, line
        assert line.index(m.group(3)) == 19, line  # level, name and detail in columns
        assert m.group(1) != "FAIL", line  # a small test disk may warn
    assert lines[0].startswith("ok    config       config.example.toml: till till-1 of")


def test_the_cli_exits_2_on_a_config_that_does_not_load(examples: Path) -> None:
    edit(examples, port="70000")
    result = subprocess.run(
        [sys.executable, "-m", "tillgate.cli", "doctor"],
        cwd=examples.parent,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONIOENCODING": "utf-8", "TILLGATE_CONFIG": str(examples)},
        timeout=60,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("FAIL  config       ")
    assert "pos_api.port: " in first and " — fix: " in first


def test_a_bad_config_is_the_message_run_gives_then_nothing_else_is_checked(
    examples: Path,
) -> None:
    edit(examples, port="70000", timezone='"Mars/Olympus"')
    with pytest.raises(ConfigError) as refused:
        load_config(examples)
    checks = run_checks(examples)
    config = [c for c in checks if c.name == "config"]
    assert [c.detail for c in config] == str(refused.value).splitlines()
    assert len(config) == 2 and all(c.level is Level.FAIL and c.fix for c in config)
    rest = [c for c in checks if c.name != "config"]
    assert rest and all(c.level is Level.SKIP for c in rest)
    assert "not checked: the config does not load" in rest[0].detail


def test_a_missing_config_file(tmp_path: Path) -> None:
    (check, *_) = run_checks(tmp_path / "config.toml")
    assert check.level is Level.FAIL
    assert "file not found" in check.detail
    assert "config.example.toml" in check.fix


def test_a_program_file_that_does_not_validate(examples: Path) -> None:
    program = examples.parent / "program.example.toml"
    program.write_text(
        program.read_text(encoding="utf-8").replace('point_value = "1.00"', 'point_value = "-1"'),
        encoding="utf-8",
    )
    check = by_name(run_checks(examples))["program"]
    assert check.level is Level.FAIL
    assert "point_value" in check.detail
    assert f"tillgate check-program {program}" in check.fix


def test_bad_rows_of_the_cards_file_warn_with_card_numbers_masked(examples: Path) -> None:
    cards = examples.parent / "cards.example.csv"
    with cards.open("a", encoding="utf-8") as f:
        f.write("2900000099999,Кира,,14.03.1985,,,,active,0\n")
        f.write("2900000012345,Кира,,,,,,active,0\n")  # a number already in the file
    check = by_name(run_checks(examples))["cards file"]
    assert check.level is Level.WARN
    assert "6 cards, 2 rows refused (first: row 8: birthday '14.03.1985'" in check.detail
    assert "2900000012345" not in check.line()
    assert "the agent loads the good ones" in check.fix
    line = Check(name="cards file", level=Level.FAIL, detail="card 2900000099999 twice").line()
    assert "2900000099999" not in line and "2900•••••9999" in line


@pytest.mark.parametrize("blocked", ["data dir", "its parent"])
def test_an_unwritable_data_dir(examples: Path, blocked: str) -> None:
    # Tests run as root, for whom chmod changes nothing: a file in the way does.
    blocker = examples.parent / "blocker"
    blocker.write_text("not a directory", encoding="utf-8")
    edit(examples, data_dir='"blocker"' if blocked == "data dir" else '"blocker/tillgate"')
    checks = run_checks(examples)
    check = by_name(checks)["data dir"]
    assert check.level is Level.FAIL
    assert "is a file, not a directory" in check.detail
    assert f"move {blocker} away, or change [till] data_dir" in check.fix
    assert not any(c.level is Level.FAIL for c in checks if c.name != "data dir")


def test_the_data_file_opens_read_only_and_passes_quick_check(examples: Path) -> None:
    data = examples.parent / "var" / "tillgate"
    Database(data / "tillgate.sqlite3").close()
    check = by_name(run_checks(examples))["database"]
    assert check.level is Level.OK, check.line()
    assert f"quick_check ok, schema {len(MIGRATIONS)} (current)" in check.detail


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("garbage", "is not a usable tillgate data file"),
        ("newer", f"schema version 99, newer than this tillgate knows ({len(MIGRATIONS)})"),
    ],
)
def test_a_data_file_the_agent_could_not_use(examples: Path, damage: str, said: str) -> None:
    path = examples.parent / "var" / "tillgate" / "tillgate.sqlite3"
    Database(path).close()
    if damage == "garbage":
        path.write_bytes(b"this is no SQLite file, whatever its name says" * 100)
    else:
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA user_version = 99")
    before = path.read_bytes()
    check = by_name(run_checks(examples))["database"]
    assert check.level is Level.FAIL, check.line()
    assert said in check.detail
    assert path.read_bytes() == before  # read-only: doctor never migrates or repairs


# ---------------------------------------------------------------- devices


@posix_only
def test_a_missing_serial_port(examples: Path) -> None:
    set_device(examples, "devices.printer", "serial:///dev/ttyNOPE?baudrate=38400")
    check = by_name(run_checks(examples))["printer"]
    assert check.level is Level.FAIL
    assert check.detail.startswith("serial /dev/ttyNOPE cannot be opened: no such device")
    assert "`ls -l /dev/serial/by-id/`" in check.fix and "dialout" in check.fix
    assert "[devices.printer] url" in check.fix


@pytest.fixture
def printer() -> Iterator[PtyPrinter]:
    device = PtyPrinter()
    yield device
    device.close()


@posix_only
@pytest.mark.parametrize(
    ("state", "level", "said", "fix"),
    [
        ("ready", Level.OK, "online, paper ok", ""),
        ("paper_end", Level.FAIL, "out of paper", "load a new paper roll"),
        ("cover_open", Level.FAIL, "cover open", "close the printer's cover"),
        ("near_end", Level.WARN, "paper running low", "have a new roll ready"),
        ("silent", Level.FAIL, "does not answer status queries", "status_poll = false"),
    ],
)
def test_a_printer_on_a_real_pty_is_asked_its_status(
    examples: Path, printer: PtyPrinter, state: str, level: Level, said: str, fix: str
) -> None:
    if state == "silent":
        printer.answering = False
    elif state != "ready":
        setattr(printer, state, True)
    set_device(examples, "devices.printer", f"serial://{printer.path}")
    check = by_name(run_checks(examples))["printer"]
    assert check.level is level, check.line()
    assert check.detail.startswith(f"serial {printer.path}")
    assert said in check.detail
    assert fix in check.fix
    assert printer.queries >= 1
    assert printer.got() == b""  # asked, nothing printed


@posix_only
def test_a_pty_port_is_made_and_removed_again(examples: Path) -> None:
    link = examples.parent / "run" / "reader"
    set_device(examples, "devices.card_reader", f"pty:{link}")
    check = by_name(run_checks(examples))["card reader"]
    assert check.level is Level.OK, check.line()
    assert check.detail.startswith(f"pty {link} opens")
    assert not link.exists() and not link.is_symlink()


def test_the_pos_api_port_held_by_another_program(examples: Path) -> None:
    with free_socket() as sock:  # listens, never answers
        edit(examples, port=str(sock.getsockname()[1]))
        started = time.monotonic()
        check = by_name(run_checks(examples))["pos api"]
        assert time.monotonic() - started < 10
    assert check.level is Level.FAIL
    assert "the port is held, but no answer within 1 s" in check.detail
    assert "set [pos_api] port" in check.fix


def test_a_running_agent_that_refuses_this_configs_token(examples: Path, make_till: Any) -> None:
    till = make_till(token="the-agents-own-token")
    edit(examples, port=till.url.rsplit(":", 1)[1], token='"another-token"')
    checks = run_checks(examples)
    got = by_name(checks)
    assert got["pos api"].level is Level.FAIL
    assert "its /v1/status answered HTTP 401" in got["pos api"].detail
    assert "[pos_api] token" in got["pos api"].fix
    for name in ("printer", "scanner", "card reader"):
        assert got[name].level is Level.SKIP  # its ports are the agent's: not opened
        assert "not checked: the agent runs, but" in got[name].detail


@posix_only
@pytest.mark.slow
def test_a_running_agent_is_asked_rather_than_its_ports(
    examples: Path, printer: PtyPrinter
) -> None:
    tmp = examples.parent
    node = tmp / "ttyPRINTER"  # the printer's device node, as udev would make it
    node.symlink_to(printer.path)
    reader = tmp / "reader"
    set_device(examples, "devices.printer", f"serial://{node}", extra="poll_seconds = 0.5\n")
    set_device(examples, "devices.card_reader", f"pty:{reader}")
    port = load_config(examples).pos_api.port
    log = (tmp / "agent.log").open("w+")
    agent = spawn_agent(examples, port=port, cwd=tmp, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"

        def printer_status() -> Any:
            return httpx.get(f"{url}/v1/status", timeout=5).json()["devices"]["printer"]["status"]

        wait_until(lambda: printer_status() == "online", "the agent's printer online")
        link = os.readlink(reader)
        checks = by_name(run_checks(examples))
        assert checks["pos api"].level is Level.OK
        assert f"agent running at {url} (till till-1" in checks["pos api"].detail
        assert checks["printer"].detail == "online (the running agent's view)"
        assert checks["card reader"].detail == "online (the running agent's view)"
        assert os.readlink(reader) == link  # its port was not opened beside the agent

        printer.paper_end = True
        wait_until(lambda: printer_status() == "paper_out", "the agent seeing no paper")
        check = by_name(run_checks(examples))["printer"]
        assert check.level is Level.FAIL
        assert check.detail == "out of paper (the running agent's view)"
        assert "load a new paper roll" in check.fix
    finally:
        agent.terminate()
        assert agent.wait(timeout=15) == 0, Path(log.name).read_text(encoding="utf-8")
        log.close()


# ---------------------------------------------------------------- head office


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[ChainHq]:
    server = ChainHq(tmp_path / "hq", ManualClock(datetime.now(UTC))).start()
    try:
        yield server
    finally:
        server.stop()


def chain_config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[till]
id = "till-1"
store = "store-01"
data_dir = "data"

[pos_api]
port = {free_port()}

[hq]
url = "{url}"
credential_file = "data/credential.json"
""",
        encoding="utf-8",
    )
    return config


def enrolled(tmp_path: Path, hq: ChainHq) -> Path:
    config = chain_config(tmp_path, hq.url)
    cred_file.save(tmp_path / "data" / "credential.json", enroll(hq, "till-1"))
    return config


def test_head_office_down(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a loopback port nobody listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    config = chain_config(tmp_path, url)
    started = time.monotonic()
    checks = by_name(run_checks(config))
    assert time.monotonic() - started < 10
    hq = checks["hq"]
    assert hq.level is Level.FAIL
    assert hq.detail == f"cannot reach {url}: connection refused"
    assert hq.fix == (
        "start head office or check [hq] url; the till keeps selling offline meanwhile"
    )
    assert checks["clock"].level is Level.SKIP
    assert checks["credential"].level is Level.FAIL  # never enrolled either
    # A new till cannot start without head office once: said, not left to `run`.
    assert checks["program"].level is Level.FAIL
    assert "`tillgate run` would not start" in checks["program"].detail


def test_an_enrolled_till_with_head_office_up_is_all_ok(tmp_path: Path, hq: ChainHq) -> None:
    checks = run_checks(enrolled(tmp_path, hq))
    assert all(c.ok for c in checks), [c.line() for c in checks]
    got = by_name(checks)
    assert got["hq"].detail.startswith(f"{hq.url}: head office ")
    assert got["credential"].detail.endswith(
        "till till-1 of store store-01, accepted by head office"
    )
    assert got["clock"].level is Level.OK and "of head office's" in got["clock"].detail
    assert got["program"].detail.startswith("none yet: the till takes it from head office")


@pytest.mark.parametrize("minutes", [10, -10])
def test_clock_skew(tmp_path: Path, hq: ChainHq, minutes: int) -> None:
    config = enrolled(tmp_path, hq)
    checks = by_name(run_checks(config, clock=ShiftedClock(timedelta(minutes=minutes))))
    clock = checks["clock"]
    assert clock.level is Level.FAIL, clock.line()
    side = "ahead of" if minutes > 0 else "behind"
    assert re.match(
        rf"the till's clock is (9 min 59|10 min 0|10 min 1) s {side} head office's", clock.detail
    )
    assert "timedatectl set-ntp true" in clock.fix
    for why in ("promotion days and hours", "spendable", "coupon"):
        assert why in clock.fix
    assert checks["hq"].ok and checks["credential"].ok  # only the clock is wrong


def test_a_chain_till_without_its_credential(tmp_path: Path, hq: ChainHq) -> None:
    check = by_name(run_checks(chain_config(tmp_path, hq.url)))["credential"]
    assert check.level is Level.FAIL
    assert "missing: this till is not enrolled with head office" in check.detail
    assert f"`tillgate enroll CODE --hq {hq.url}`" in check.fix


def test_a_revoked_credential(tmp_path: Path, hq: ChainHq) -> None:
    config = enrolled(tmp_path, hq)
    hq.revoke_till("till-1")
    check = by_name(run_checks(config))["credential"]
    assert check.level is Level.FAIL
    assert "401 unauthorized" in check.detail and "revoked" in check.detail
    assert "tillgate enroll CODE" in check.fix


def test_a_credential_from_another_head_office(tmp_path: Path, hq: ChainHq) -> None:
    config = enrolled(tmp_path, hq)
    other = ChainHq(tmp_path / "other-hq", ManualClock()).start()
    try:
        text = config.read_text(encoding="utf-8").replace(hq.url, other.url)
        config.write_text(text, encoding="utf-8")
        check = by_name(run_checks(config))["credential"]
    finally:
        other.stop()
    assert check.level is Level.FAIL
    assert "enrolled at head office" in check.detail
    assert check.fix.startswith("check [hq] url, or enrol the till")


def test_hq_url_pointing_at_a_till(tmp_path: Path, make_till: Any) -> None:
    # The usual mistake: [hq] url names a till's POS API (here a real one, on loopback).
    till = make_till()
    check = by_name(run_checks(chain_config(tmp_path, till.url)))["hq"]
    assert check.level is Level.FAIL
    assert "answers, but not as a tillgate head office (GET /healthz: HTTP 200)" in check.detail
    assert "(that is a till's POS API)" in check.detail
    assert "`tillgate hq serve`" in check.fix


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda p: p.write_bytes(b"number,holder\n2900000012345,\xcf\xe5\xf2\xf0\n"), "not UTF-8"),
        (lambda p: p.unlink(), "cannot read"),
    ],
)
def test_an_unreadable_cards_file_fails_and_says_why(
    examples: Path, damage: Any, said: str
) -> None:
    damage(examples.parent / "cards.example.csv")
    check = by_name(run_checks(examples))["cards file"]
    assert check.level is Level.FAIL
    assert said in check.detail and "cards_file" in check.fix
