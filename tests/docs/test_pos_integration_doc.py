"""Every ``curl`` block of docs/pos-integration.md works as written against a real agent."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_socket

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "pos-integration.md"


def blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return [b for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S) if "curl" in b]


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("curl") is None:
        pytest.fail("curl is needed for the documentation test (install it: apt-get install curl)")
    tmp = tmp_path_factory.mktemp("doc")
    for name in ("config.example.toml", "program.example.toml", "cards.example.csv"):
        shutil.copy(ROOT / name, tmp / name)
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    log = open(tmp / "agent.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tillgate.agent.cli",
            "run",
            "--config",
            str(tmp / "config.example.toml"),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=log,
        cwd=tmp,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail((tmp / "agent.log").read_text())
        time.sleep(0.05)
    yield port
    proc.terminate()
    assert proc.wait(timeout=15) == 0  # SIGTERM is a clean stop
    log.close()


def test_the_guide_has_examples() -> None:
    assert len(blocks()) >= 8


def test_curl_examples_work_as_written(agent: int) -> None:
    for block in blocks():
        script = block.replace("127.0.0.1:8765", f"127.0.0.1:{agent}")
        out = subprocess.run(
            ["bash", "-e", "-c", script], capture_output=True, text=True, timeout=30
        )
        expect = re.search(r"# expect: (\w+)", block)
        if expect:
            assert f'"code":"{expect.group(1)}"' in out.stdout, (block, out.stdout)
        else:
            assert out.returncode == 0, (block, out.stdout, out.stderr)
            assert '"error"' not in out.stdout, (block, out.stdout)
