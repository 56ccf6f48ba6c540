"""A standalone till whose program file was edited into an invalid state says so.

A real ``tillgate run`` on loopback: the file is broken while it runs; the till keeps the
last good program, and ``/v1/status`` and the cashier's screen (a ``sync`` event) say the
file is not in force and why, until the file is mended.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from tests.agent.test_daemon import PROGRAM, write_config
from tests.conftest import free_port, spawn_agent


def status(port: int) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=5).json()
    return data


def until(check: Any, *, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def last_sync_event(port: int) -> dict[str, Any]:
    """The latest ``sync`` event, as a panel that connects now is sent it."""
    with httpx.stream("GET", f"http://127.0.0.1:{port}/v1/events", timeout=5) as reply:
        kind = ""
        for line in reply.iter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind == "sync":
                data: dict[str, Any] = json.loads(line[5:])
                return data
    raise AssertionError("no sync event")


def touch(path: Path, text: str, *, ahead: float) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, (time.time() + ahead, time.time() + ahead))


def test_status_and_the_panel_say_the_program_file_is_invalid(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    port = free_port()
    log = (tmp_path / "agent.log").open("w")
    proc = spawn_agent(config, port=port, cwd=tmp_path, stderr=log)
    try:
        first = status(port)["program"]
        assert first["file"] == str(tmp_path / "program.toml")
        assert first["file_error"] is None and first["version"].startswith("file-")

        touch(tmp_path / "program.toml", "[program]\nmax_redeem_percent = 150\n", ahead=5)
        broken = until(lambda: status(port)["program"]["file_error"])
        assert "max_redeem_percent" in broken
        assert status(port)["program"]["version"] == first["version"]  # the good one stays
        event = last_sync_event(port)
        assert event["mode"] == "standalone" and "max_redeem_percent" in event["program_file_error"]

        touch(tmp_path / "program.toml", PROGRAM.format(pct=5), ahead=10)
        mended = until(
            lambda: (
                (p := status(port)["program"])["file_error"] is None
                and p["version"] != first["version"]
                and p
            )
        )
        assert mended["version"].startswith("file-")
        assert last_sync_event(port).get("program_file_error") is None
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
