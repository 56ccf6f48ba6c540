"""The till's sync verbs: ``tillgate enroll`` and ``tillgate sync``.

Errors go up to :func:`tillgate.cli.main`, which prints one line and picks the exit
code: a bad config or a missing credential exits 2, HQ unreachable or refusing exits 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO, Any

_CONFIG_HELP = "config file (default: $TILLGATE_CONFIG, else ./config.toml)"


def add_parsers(verbs: argparse._SubParsersAction[Any]) -> None:
    """Add ``enroll`` and ``sync`` to the ``tillgate`` command line."""
    enroll = verbs.add_parser(
        "enroll",
        help="exchange a one-time enrolment code for this till's HQ credential",
        description="Exchange a one-time enrolment code (from 'tillgate hq enroll-code') for "
        "this till's head-office credential, written to [hq] credential_file (mode 0600).",
    )
    enroll.add_argument("code", metavar="CODE", help="the enrolment code, e.g. ABCD-EFGH-JKLM")
    enroll.add_argument(
        "--hq", metavar="URL", help="head office URL (default: [hq] url of the config)"
    )
    enroll.add_argument("--config", metavar="FILE", help=_CONFIG_HELP)
    enroll.set_defaults(handler=_enroll)

    sync = verbs.add_parser(
        "sync",
        help="sync with head office now",
        description="Push every unsynced ledger entry to head office and pull its changes, "
        "once, now (a progress bar on stderr when there is a backlog).",
    )
    sync.add_argument("--config", metavar="FILE", help=_CONFIG_HELP)
    sync.set_defaults(handler=_sync)


def _config(arg: str | None) -> Any:
    from tillgate.core.config import load_config, resolve_config_path

    return load_config(resolve_config_path(arg, os.environ))


def _enroll(args: argparse.Namespace) -> int:
    from tillgate.core.config import HqSection
    from tillgate.core.errors import ConfigError, HqBadReply

    from . import credential as cred_file
    from .client import HqClient
    from .wiring import tls_verify

    config = _config(args.config)
    url = args.hq or config.hq.url
    if not url:
        raise ConfigError("no head office URL: pass --hq URL or set [hq] url in the config")
    try:
        url = HqSection.model_validate({"url": url}).url
    except ValueError as exc:
        raise ConfigError(
            f"--hq {url!r} is not an http(s) URL like http://hq.example:8700"
        ) from exc
    with HqClient(url=url, verify=tls_verify(config)) as client:
        reply = client.enroll(args.code.strip())
    try:
        cred = cred_file.Credential.from_reply(reply.model_dump(), url=url)
    except ValueError as exc:  # pragma: no cover - wire.EnrollReply checked the same
        raise HqBadReply(str(exc)) from exc
    path = Path(config.hq.credential_file)
    try:
        cred_file.save(path, cred)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the credential: {exc}") from exc
    print(f"enrolled as till {cred.till} of store {cred.store} at {url}; credential in {path}")
    if cred.till != config.till.id or cred.store != config.till.store:
        print(
            f"tillgate: warning: the config says till {config.till.id} of store "
            f"{config.till.store}: set [till] id = {cred.till!r}, store = {cred.store!r}",
            file=sys.stderr,
        )
    if config.hq.url != url:
        print(f"tillgate: warning: set [hq] url = {url!r} in the config", file=sys.stderr)
    return 0


class ProgressBar:
    """A one-line progress bar on a terminal; plain lines elsewhere (logs, pipes)."""

    def __init__(self, stream: IO[str], *, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self._last = -1

    def __call__(self, done: int, total: int) -> None:
        share = done / total if total else 1.0
        if self.tty:
            filled = int(self.width * share)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\rsync: [{bar}] {done}/{total} entries")
            if done >= total:
                self.stream.write("\n")
        else:
            tenth = int(share * 10)
            if tenth == self._last:
                return
            self._last = tenth
            self.stream.write(f"sync: {done}/{total} entries sent\n")
        self.stream.flush()


def _sync(args: argparse.Namespace) -> int:
    from tillgate.core.cards import mask_in_text

    from .wiring import make_syncer

    config = _config(args.config)
    syncer = make_syncer(config)
    try:
        with syncer.db.read() as conn:
            from tillgate.agent.store.outbox import backlog

            waiting = backlog(conn)
        # A bar only when there is something to watch: more than one batch waits.
        bar = ProgressBar(sys.stderr) if waiting > config.sync.batch_size else None
        report = syncer.run_once(bar)
    finally:
        syncer.close()
    print(
        f"synced: {report.pushed} entries sent ({report.duplicates} already at HQ), "
        f"{report.changes} changes received"
        + (f", program version {report.program} in force" if report.program else "")
        + (f", product list version {report.products} in force" if report.products else "")
    )
    if report.negative_cards:
        print(
            "head office reports negative balances: "
            + ", ".join(mask_in_text(n) for n in report.negative_cards)
        )
    return 0
