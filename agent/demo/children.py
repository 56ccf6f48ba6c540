"""The demo's child processes: head office and the agent, each a real ``tillgate`` process.

They are started exactly as an operator would start them (``tillgate hq serve``,
``tillgate enroll``, ``tillgate run``), from this installation: the same interpreter from
a source or pip install, the same executable from a frozen build.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx

from tillgate.core.errors import TillgateError


class DemoError(TillgateError):
    """A step of the demo did not happen as it should; the message says which and why."""


def tillgate_command() -> list[str]:
    """How to start this very ``tillgate``: the frozen executable, or this interpreter."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "tillgate.cli"]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_verb(
    args: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> str:
    """Run one ``tillgate`` verb to its end; its output, or a DemoError with its log."""
    with log.open("a", encoding="utf-8") as err:
        try:
            done = subprocess.run(
                [*tillgate_command(), *args],
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                encoding="utf-8",
                timeout=timeout,
                env={**_child_env(), **(env or {})},
            )
        except subprocess.TimeoutExpired as exc:
            raise DemoError(f"'tillgate {args[0]}' did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise DemoError(
            f"'tillgate {' '.join(args[:2])}' failed (exit {done.returncode}): {_tail(log)}"
        )
    return done.stdout


class Child:
    """One long-running ``tillgate`` process with its log file."""

    def __init__(self, *, name: str, args: Sequence[str], cwd: Path, log: Path) -> None:
        self.name = name
        self.args = list(args)
        self.cwd = cwd
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def start(self, *, ready_url: str, timeout: float = 30) -> None:
        """Start the process and return once ``ready_url`` answers 200."""
        self._log_file = self.log.open("ab")
        self.proc = subprocess.Popen(
            [*tillgate_command(), *self.args],
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=_child_env(),
        )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    self._close_log()
                    raise DemoError(
                        f"{self.name} stopped at start (exit {self.proc.returncode}): "
                        f"{_tail(self.log)}"
                    )
                try:
                    if http.get(ready_url).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise DemoError(f"{self.name} did not answer {ready_url} in {timeout:.0f} s")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, *, timeout: float = 15) -> int | None:
        """Stop it the way a service manager does (SIGTERM, then SIGKILL); its exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()  # SIGTERM on POSIX: the agent and HQ stop cleanly on it
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        self._close_log()
        self.proc = None
        return proc.returncode

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The children's settings come from their own config files, never from the shell's.
    for key in ("TILLGATE_CONFIG", "TILLGATE_HQ_TOKEN"):
        env.pop(key, None)
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return f"(see {log})"
    return " | ".join(text[-lines:]) or f"(nothing in {log})"
