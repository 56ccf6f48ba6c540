"""Daemon wiring: standalone files reloaded on change, busy port, coupon key, clean stop."""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, free_socket, spawn_agent
from tillgate.agent.daemon import (
    FULL_COLLECTION_AFTER,
    FileWatcher,
    build_service,
    collect_between_receipts,
    coupon_keys,
)
from tillgate.core import errors
from tillgate.core.config import load_config
from tillgate.core.serving import bind

PROGRAM = """
[program]
name = "Магазин у дома"
[[program.tiers]]
name = "silver"
min_spend = "0"
accrue_percent = {pct}
"""


def write_config(tmp: Path, **extra: str) -> Path:
    (tmp / "program.toml").write_text(PROGRAM.format(pct=3), encoding="utf-8")
    (tmp / "cards.csv").write_text("number,holder\n2900000000011,Анна\n", encoding="utf-8")
    cfg = tmp / "config.toml"
    cfg.write_text(
        '[till]\nid = "t1"\nstore = "s1"\ndata_dir = "data"\n'
        '[standalone]\nprogram_file = "program.toml"\ncards_file = "cards.csv"\n',
        encoding="utf-8",
    )
    return cfg


def test_program_and_cards_reload_on_change_and_bad_changes_are_kept_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(write_config(tmp_path))
    service = build_service(config)
    watcher = FileWatcher(
        service=service, program_file=tmp_path / "program.toml", cards_file=tmp_path / "cards.csv"
    )
    watcher.load_program(strict=True)
    watcher.load_cards(strict=True)
    assert service.catalog().program.tiers[0].accrue_percent == 3
    first = service.program_version

    (tmp_path / "program.toml").write_text(PROGRAM.format(pct=7), encoding="utf-8")
    os.utime(tmp_path / "program.toml", (time.time() + 5, time.time() + 5))
    watcher.poll()
    assert service.catalog().program.tiers[0].accrue_percent == 7
    assert service.program_version != first

    (tmp_path / "program.toml").write_text("[program]\nname = ''\n", encoding="utf-8")
    os.utime(tmp_path / "program.toml", (time.time() + 10, time.time() + 10))
    with caplog.at_level(logging.ERROR):
        watcher.poll()
    assert service.catalog().program.tiers[0].accrue_percent == 7  # the good one stays
    assert "keeping the one in force" in caplog.text

    (tmp_path / "cards.csv").write_text(
        "number,holder\n2900000000011,Анна\n2900000000028,Борис\nbad,Никто\n", encoding="utf-8"
    )
    os.utime(tmp_path / "cards.csv", (time.time() + 5, time.time() + 5))
    with caplog.at_level(logging.WARNING):
        watcher.poll()
    assert service.card_lookup("2900000000028")["holder"] == "Борис"
    assert "row 4" in caplog.text
    service.db.close()


def test_invalid_program_file_stops_the_start(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    (tmp_path / "program.toml").write_text(
        '[program]\nname = "x"\nmax_redeem_percent = 150\n', encoding="utf-8"
    )
    service = build_service(config)
    watcher = FileWatcher(service=service, program_file=tmp_path / "program.toml", cards_file=None)
    with pytest.raises(errors.ProgramError, match=r"program.max_redeem_percent: must be <= 100"):
        watcher.load_program(strict=True)
    service.db.close()


def test_coupon_key_is_made_once_and_kept_in_a_key_file(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    service = build_service(config)
    ring = coupon_keys(service.db, chain_key=None).coupon_keys()
    assert ring.current == 1 and len(ring.keys[1]) == 32
    assert coupon_keys(service.db, chain_key=None).coupon_keys().keys == ring.keys
    key_file = service.db.path.parent / "keys" / "coupon-1.key"
    assert key_file.read_text().strip() == ring.keys[1].hex()
    service.db.close()


def test_busy_port_is_a_clear_error() -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    try:
        with pytest.raises(errors.TillgateError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind("127.0.0.1", port)
    finally:
        sock.close()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tillgate.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_refuses_a_busy_port_with_one_line(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    sock = free_socket()
    try:
        out = run_cli(
            "run", "--config", str(cfg), "--port", str(sock.getsockname()[1]), cwd=tmp_path
        )
    finally:
        sock.close()
    assert out.returncode == 1
    assert "cannot listen" in out.stderr and "Traceback" not in out.stderr


def test_run_refuses_an_invalid_program_with_every_error(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    (tmp_path / "program.toml").write_text(
        '[program]\nname = "x"\nmax_redeem_percent = 150\n[[promotions]]\nid = "a"\n'
        'name = "A"\nreward = { kind = "percent", value = 0 }\n',
        encoding="utf-8",
    )
    out = run_cli("run", "--config", str(cfg), cwd=tmp_path)
    assert out.returncode == 2
    assert "program.max_redeem_percent" in out.stderr
    assert "promotions[0].reward.value" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_cleanly_on_signals(tmp_path: Path, sig: signal.Signals) -> None:
    cfg = write_config(tmp_path)
    port = free_port()
    proc = spawn_agent(cfg, port=port, cwd=tmp_path, stderr=subprocess.PIPE)
    # An open event stream (the hint panel) must not hold the stop up.
    client = httpx.Client(timeout=httpx.Timeout(5, read=30))
    stream = client.stream("GET", f"http://127.0.0.1:{port}/v1/events")
    response = stream.__enter__()
    assert response.status_code == 200
    started = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    client.close()
    assert time.monotonic() - started < 10
    assert proc.returncode == 0, err
    assert "tillgate stopped" in err and "Traceback" not in err


def test_full_collections_run_from_the_scheduler_between_receipts(tmp_path: Path) -> None:
    """A full collection (≈ 0.4 ms whatever is left to walk) no longer lands inside a
    calculate now and then: the count that starts one is raised, and the scheduler runs one
    every half minute unless a write holds the data file."""
    from apscheduler.schedulers.background import BackgroundScheduler

    service = build_service(load_config(write_config(tmp_path)))
    scheduler = BackgroundScheduler(timezone="UTC")
    before = gc.get_threshold()
    try:
        collect_between_receipts(scheduler, service)
        assert gc.get_threshold() == (*before[:2], FULL_COLLECTION_AFTER)
        job = scheduler.get_job("collect")
        assert job is not None and job.trigger.interval.total_seconds() == 30
        full = gc.get_stats()[2]["collections"]
        job.func()
        assert gc.get_stats()[2]["collections"] == full + 1
        holding, done = threading.Event(), threading.Event()

        def sale() -> None:  # a sale's transaction: the collection waits for the next turn
            with service.db.write():
                holding.set()
                done.wait(10)

        writer = threading.Thread(target=sale)
        writer.start()
        assert holding.wait(10)
        job.func()
        done.set()
        writer.join(10)
        assert gc.get_stats()[2]["collections"] == full + 1
    finally:
        gc.set_threshold(*before)
        service.db.close()
