"""Schemathesis fuzzes every operation of the published OpenAPI: no input gives a 500.

It runs against a real ``tillgate run`` (the sample program and cards) on loopback, with
examples, coverage, fuzzing and stateful phases, bounded in count; the seed is fixed so a
failure can be replayed with the same command.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_socket

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_no_generated_request_gets_a_server_error(tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("schemathesis")
    assert cli.exists(), "schemathesis is part of the test extra: pip install -e '.[test]'"
    for name in ("config.example.toml", "program.example.toml", "cards.example.csv"):
        shutil.copy(ROOT / name, tmp_path / name)
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    log = open(tmp_path / "agent.log", "wb")  # noqa: SIM115
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tillgate.agent.cli",
            "run",
            "--config",
            str(tmp_path / "config.example.toml"),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=log,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert agent.poll() is None and time.monotonic() < deadline, (
                tmp_path / "agent.log"
            ).read_text()
            time.sleep(0.05)
        out = subprocess.run(
            [
                str(cli),
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "40",
                "--seed",
                "20261123",
                "--request-timeout",
                "10",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    finally:
        agent.terminate()
        agent.wait(timeout=20)
        log.close()
    assert "internal error" not in (tmp_path / "agent.log").read_text()
