"""Schemathesis fuzzes every operation of the published OpenAPI: no input gives a 500.

It runs against a real ``tillgate run`` (the sample program and cards) on loopback, with
examples, coverage, fuzzing and stateful phases, bounded in count; the seed is fixed so a
failure can be replayed with the same command.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_examples, free_port, spawn_agent


@pytest.mark.slow
def test_no_generated_request_gets_a_server_error(tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("schemathesis")
    assert cli.exists(), "schemathesis is part of the test extra: pip install -e '.[test]'"
    config = copy_examples(tmp_path)
    port = free_port()
    log = open(tmp_path / "agent.log", "w")  # noqa: SIM115
    agent = spawn_agent(config, port=port, cwd=tmp_path, stderr=log)
    try:
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
