"""``tillgate demo``: the real command, its HQ and agent processes, its receipts and summary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tillgate.agent.demo.run import MARKER, prepare_out
from tillgate.core.errors import ConfigError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the demo's ports are pty:")


def demo(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tillgate.cli", "demo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


def test_the_demo_runs_the_whole_story_and_leaves_receipts_and_a_summary(
    tmp_path: Path,
) -> None:
    # No --out, as the README runs it: the default folder is relative to where it runs,
    # and head office and the till run in folders of their own.
    out = tmp_path / "tillgate-demo"
    done = demo("--receipts", "11", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    figures = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    tally, sync = figures["tally"], figures["sync"]
    # The story: 11 receipts, one of them cancelled before payment.
    assert tally["sales_api"] + tally["sales_intercepted"] + tally["cancelled"] == 11
    assert tally["cancelled"] == 1
    assert tally["sales_intercepted"] >= 3
    assert tally["offline_sales"] == 2
    assert tally["refunds"] == 1 and tally["points_returned"] > 0
    # The coffee coupon printed on the first visit and head office's mailing coupon.
    assert tally["coupons_printed"] >= 1
    assert tally["coupons_redeemed"] == 2
    assert tally["points_accrued"] > 0 and tally["points_redeemed"] > 0
    assert float(tally["discount"]) > 0
    # Everything reached head office, and both sides agree on every card used.
    assert sync["offline"] is False and sync["unsynced_entries"] == 0
    assert sync["cards_checked"] >= 5 and sync["cards_agreeing"] == sync["cards_checked"]
    assert sync["offline_seconds"] > 0

    summary = (out / "summary.txt").read_text(encoding="utf-8")
    assert "coupons printed / redeemed" in summary
    assert summary in done.stdout  # the same table on the screen

    bins = sorted((out / "receipts").glob("*.bin"))
    assert len(bins) == tally["slips"] >= 11
    for b in bins:
        assert b.with_suffix(".txt").read_text(encoding="utf-8").strip()
        assert b.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    # An intercepted receipt: the POS's bytes with the agent's loyalty block before the cut.
    intercepted = next(b for b in bins if "intercepted" in b.name)
    text = intercepted.with_suffix(".txt").read_text(encoding="utf-8")
    assert "КАССОВЫЙ ЧЕК" in text and "ПРОГРАММА ЛОЯЛЬНОСТИ" in text
    assert text.index("ИТОГ") < text.index("ПРОГРАММА ЛОЯЛЬНОСТИ") < text.rindex("cut")
    # The coupon the agent printed, with its code.
    coupons = [b for b in bins if "agent-print" in b.name]
    assert any("КУПОН" in b.with_suffix(".txt").read_text(encoding="utf-8") for b in coupons)
    # Card numbers are masked on every receipt.
    for b in bins:
        assert "2900000012345" not in b.with_suffix(".txt").read_text(encoding="utf-8")
    # Both children stopped cleanly; their logs are kept.
    assert (
        (out / "logs" / "agent.log")
        .read_text(encoding="utf-8")
        .rstrip()
        .endswith("tillgate stopped")
    )
    assert "head office stopped" in (out / "logs" / "hq.log").read_text(encoding="utf-8")


def test_demo_serve_keeps_the_panel_up_until_interrupted(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tillgate.cli",
            "demo",
            "--out",
            str(tmp_path / "demo"),
            "--receipts",
            "9",
            "--serve",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        env={**os.environ, "BROWSER": "true"},  # no browser window from a test
    )
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + 120
        seen = ""
        while "hint panel:" not in seen and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
        assert "hint panel:" in seen, seen
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200
        status = httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=5).json()
        assert status["offline"] is False
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, seen + rest
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--receipts", "3"), "--receipts 3: at least 9"),
        (("--port", "70000"), "--port 70000: must be between 1 and 65535"),
    ],
)
def test_bad_arguments_are_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = demo("--out", str(tmp_path / "demo"), *args, cwd=tmp_path, timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith(f"tillgate: error: {message}"), done.stderr
    assert not (tmp_path / "demo").exists()


def test_a_folder_that_is_not_the_demos_is_never_emptied(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("keep me", encoding="utf-8")
    done = demo("--out", str(mine), cwd=tmp_path, timeout=30)
    assert done.returncode == 2
    assert "not empty and was not made by tillgate demo" in done.stderr
    assert [p.name for p in mine.iterdir()] == ["thesis.txt"]

    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    done = demo("--out", str(a_file), cwd=tmp_path, timeout=30)
    assert done.returncode == 2 and "is a file, not a folder" in done.stderr


def test_a_previous_demo_folder_is_emptied_and_reused(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    prepare_out(out)
    (out / "receipts").mkdir()
    (out / "receipts" / "01-old.txt").write_text("old", encoding="utf-8")
    (out / "summary.txt").write_text("old", encoding="utf-8")
    (out / "notes.md").write_text("the user's own", encoding="utf-8")
    prepare_out(out)
    assert (out / MARKER).exists()
    assert not (out / "receipts").exists() and not (out / "summary.txt").exists()
    assert (out / "notes.md").read_text(encoding="utf-8") == "the user's own"


def test_an_unwritable_out_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot write there"):
        prepare_out(blocker / "demo")
