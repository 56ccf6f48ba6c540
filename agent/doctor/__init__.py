"""``tillgate doctor``: is this till set up to work? One line per check, ok or FAIL with the fix.

The checks, in the order they are printed:

- **config**: the file loads, found as ``tillgate run`` finds it (``--config``, else
  ``$TILLGATE_CONFIG``, else ./config.toml), with the message ``run`` would give. Every
  other check needs it, so each is reported as skipped when it does not load;
- **log file** (when ``[logging] file`` is set) and **data dir**: the directory exists or can
  be made and takes a real write (a probe file written, fsync'ed, deleted); the data dir's
  disk has room (:mod:`.files`);
- **file modes** (POSIX): nothing in the data dir, nor the credential or log files, can be
  read by another user (0600 files, 0700 folders); each too-open one is named with the
  ``chmod`` that closes it;
- **database**: the SQLite file opens read-only, ``PRAGMA quick_check`` passes, its schema
  is one this tillgate knows; none yet is fine (a till that never ran);
- **program** (and **cards file**, **products file**): a standalone till's files validate;
  a chain till has head office's program, or can get it at its first start;
- **pos api**, then **printer**, **scanner**, **card reader**, **intercept**: whether the agent
  runs; if so each device as its ``/v1/status`` reports it, else each configured port
  opened and closed, a printer asked ``DLE EOT`` (:mod:`.devices`);
- **hq**, **credential**, **clock** (a chain till): head office answers as a head office
  within 3 s, accepts the till's credential, and its ``Date`` header agrees with the till's
  clock within 2 minutes (:mod:`.headoffice`).

Nothing a till depends on is changed: the data file is opened read-only, the probe file is
deleted, a device is closed as soon as it answered (a ``pty:`` link made for the check is
removed again), and a running agent's ports are left alone.

:func:`run_checks` does the work; the till's clock is its seam (tests shift it rather than
fake head office). Exit status, by the command's convention (:mod:`tillgate.cli`): 0 when nothing
failed (warnings allowed), 1 when a check failed, 2 when the config does not load — the
code every verb gives a bad config.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import httpx

from tillgate.core.cards import mask_in_text
from tillgate.core.clock import Clock, SystemClock
from tillgate.core.config import Config, load_config, resolve_config_path
from tillgate.core.errors import ConfigError, TillgateError

from . import devices, files, headoffice
from .report import Check, Level, fail, ok, skip

__all__ = ["Check", "Level", "main", "run_checks"]

logger = logging.getLogger(__name__)

# The command's exit codes, as tillgate.cli maps errors to them (it is the entry point and
# nothing imports it): the doctor reports a bad config in its own report, then exits as every
# verb does on a bad config.
_OK, _FAILED, _BAD_CONFIG = 0, 1, 2


def main(args: argparse.Namespace) -> int:
    """``tillgate doctor [--config FILE]``: print the report, return the exit status."""
    path = resolve_config_path(args.config, os.environ)
    checks = run_checks(path, clock=SystemClock(), out=sys.stdout)
    if any(c.name == "config" and not c.ok for c in checks):
        return _BAD_CONFIG
    return _OK if all(c.ok for c in checks) else _FAILED


def run_checks(
    config_path: Path, *, clock: Clock | None = None, out: TextIO | None = None
) -> list[Check]:
    """Every check of the till configured in ``config_path``, in order; each line is also
    written to ``out`` as soon as it is known (a device or head office may take seconds)."""
    done: list[Check] = []
    for check in _checks(Path(config_path), clock or SystemClock()):
        done.append(check)
        if out is not None:
            print(check.line(), file=out, flush=True)
    return done


def _checks(path: Path, clock: Clock) -> Iterator[Check]:
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in str(exc).splitlines():
            yield fail("config", problem, _config_fix(problem))
        for name in ("data dir", "database", "program", "pos api", "devices", "hq", "clock"):
            yield skip(name, "not checked: the config does not load")
        return
    mode = "standalone" if config.standalone_mode else f"head office {config.hq.url}"
    yield ok("config", f"{path}: till {config.till.id} of store {config.till.store}, {mode}")
    yield from _Doctor(config, clock).checks()


def _config_fix(problem: str) -> str:
    if "file not found" in problem:
        return "copy config.example.toml to config.toml and edit it, or pass --config FILE"
    return "correct that key (config.example.toml describes each one), then run doctor again"


class _Doctor:
    """The checks of one loaded config; head office is asked once for all of them."""

    def __init__(self, config: Config, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.program_version: str | None = None
        self.data_file_ok = True
        self._hq: headoffice.HqProbe | None = None
        self._credential: Check | None = None

    def checks(self) -> Iterator[Check]:
        steps: list[tuple[str, Callable[[], Iterator[Check]]]] = [
            ("log file", lambda: files.log_file(self.config)),
            ("data dir", lambda: iter([files.data_dir(self.config)])),
            ("file modes", lambda: iter([files.file_modes(self.config)])),
            ("database", self.database),
            ("program", self.program),
            ("pos api", lambda: devices.devices(self.config)),
            ("hq", self.head_office),
        ]
        for name, step in steps:
            try:
                yield from step()
            except (TillgateError, OSError, sqlite3.Error, httpx.HTTPError) as exc:
                # Foreseeable, though no check foresaw it: still one line and no traceback.
                why = mask_in_text(str(exc)) or type(exc).__name__
                yield fail(name, why, "see the message; run doctor again once it is dealt with")

    def hq(self) -> headoffice.HqProbe:
        if self._hq is None:
            self._hq = headoffice.probe(self.config, self.clock)
        return self._hq

    def credential(self) -> Check:
        if self._credential is None:
            self._credential = headoffice.credential(self.config, self.hq())
        return self._credential

    def database(self) -> Iterator[Check]:
        self.data_file_ok = False
        check, self.program_version = files.database(self.config)
        self.data_file_ok = check.ok
        yield check

    def program(self) -> Iterator[Check]:
        config = self.config
        if config.standalone_mode:
            yield from files.program_files(config)
            yield from files.products_file(config)
        elif not self.data_file_ok:
            yield skip("program", "not checked: the data file is not usable (see database)")
        elif self.program_version is not None:
            yield ok("program", f"version {self.program_version}, from head office")
        elif self.hq().is_hq and self.credential().level is Level.OK:
            yield ok("program", "none yet: the till takes it from head office at its first start")
        else:
            yield fail(
                "program",
                "none yet, and head office cannot give it now (see the hq and credential "
                "lines): `tillgate run` would not start",
                "make head office reachable and enrol the till: a till needs head office "
                "once, at its first start",
            )

    def head_office(self) -> Iterator[Check]:
        if self.config.standalone_mode:
            yield skip("hq", "standalone till ([hq] url is empty): no head office")
            yield skip("clock", "standalone till: no head office to compare with; keep NTP on")
            return
        hq = self.hq()
        yield hq.check
        yield self.credential()
        yield headoffice.clock_skew(self.config, hq)
