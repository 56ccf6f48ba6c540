"""The frozen bundle's start (issue 15): from spawning the PyInstaller build's ``tillgate run``
on the sample set-up to its first ``200`` of ``/v1/status``.

The bundle is ``TILLGATE_BUNDLE`` (the executable) when set, else built for the run with
``build/build.sh`` into a temporary folder (a few minutes).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import ROOT, Row, Scaled, free_port, main

TARGET_S = 2.0
RUNS = 7


def bundle(stack: ExitStack) -> Path:
    """The executable: ``TILLGATE_BUNDLE``, or one built now (removed with ``stack``)."""
    given = os.environ.get("TILLGATE_BUNDLE")
    if given:
        return Path(given)
    out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tillgate-frozen-")))
    built = subprocess.run(
        ["bash", str(ROOT / "build" / "build.sh"), "--python", sys.executable, "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return Path(built.stdout.strip().splitlines()[-1])


def start_once(exe: Path, work: Path) -> float:
    """Seconds from spawning ``exe run`` to the first ``200`` of ``/v1/status``."""
    import httpx

    shutil.rmtree(work / "var", ignore_errors=True)  # a first start each time
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(exe), "run", "--config", "config.example.toml", "--port", str(port)],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the bundle exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=1).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                time.sleep(0.01)
            if time.perf_counter() - t0 > 60:
                raise RuntimeError("the bundle did not answer within 60 s")
    finally:
        proc.terminate()
        proc.wait(15)


def run(scale: float = 1.0) -> Scaled:
    runs = max(1, round(RUNS * scale))
    with ExitStack() as stack:
        exe = bundle(stack)
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for name in ("config.example.toml", "program.example.toml", "cards.example.csv"):
            shutil.copy(ROOT / name, work / name)
        times = [start_once(exe, work) for _ in range(runs)]
    med = statistics.median(times)
    row = Row(
        "frozen bundle start to first answer",
        f"{med:.2f} s (median of {runs})",
        f"≤ {TARGET_S:.0f} s",
        med <= TARGET_S,
    )
    detail = (
        f"The PyInstaller onedir bundle (`build/build.sh`), `tillgate run --config "
        f"config.example.toml` from spawn to the first 200 of `/v1/status`, a fresh data "
        f"folder each time (a first start: the program and cards file are loaded), {runs} "
        f"runs: median {med:.2f} s, min {min(times):.2f} s, max {max(times):.2f} s."
    )
    return Scaled([row], detail)


if __name__ == "__main__":
    main(run)
