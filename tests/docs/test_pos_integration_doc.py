"""Every ``curl`` block of docs/pos-integration.md works as written against a real agent."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, copy_examples, free_port, spawn_agent

DOC = ROOT / "docs" / "pos-integration.md"


def blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return [b for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S) if "curl" in b]


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("curl") is None:
        pytest.fail("curl is needed for the documentation test (install it: apt-get install curl)")
    tmp = tmp_path_factory.mktemp("doc")
    port = free_port()
    log = open(tmp / "agent.log", "w")  # noqa: SIM115
    proc = spawn_agent(copy_examples(tmp), port=port, cwd=tmp, stderr=log)
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
            # No error body ({"error": {"code", "message"}}); "error" may be a field name
            # elsewhere (a device's last error in /v1/status).
            assert '{"error":' not in out.stdout, (block, out.stdout)
