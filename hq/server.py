"""``tillgate hq serve``: the HQ API on a socket, the expiry job, clean shutdown.

Start-up order: the address and TLS checked (plain HTTP beyond loopback needs
``--insecure-http``), data directory and admin token, database (opened and migrated),
socket bound — any failure there is one clear line, before anything listens.
SIGINT/SIGTERM stop it cleanly: requests in flight finish, the job stops, the database
closes.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
import ssl
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tillgate.core import __version__, files
from tillgate.core.clock import Clock, SystemClock
from tillgate.core.errors import ConfigError, TillgateError
from tillgate.core.files import DIR_MODE, siblings
from tillgate.core.serving import bind, http_protocol, server_class

from . import snapshots
from .address import ADMIN_TOKEN_FILE, DEFAULT_HOST, DEFAULT_PORT
from .couponkeys import KEYS_FOLDER
from .db import open_database, sqlite_path
from .holds import expire_due as expire_holds
from .jobs import alone
from .ledger import expire_due
from .repricing import reprice_pending
from .service import LOOKUP_KEY_FILE, Hq

logger = logging.getLogger(__name__)

# Seconds an idle connection stays open: longer than a till keeps one for its holds.
KEEP_ALIVE_SECONDS = 75


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """What ``hq serve`` was asked to do."""

    db: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = Path()
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_http: bool = False  # plain HTTP beyond loopback, knowingly
    expire_every: float = 300.0
    reprice_every: float = 5.0
    holds_every: float = 5.0
    snapshot_every: float = 600.0


def admin_token(data_dir: Path) -> tuple[str, Path, bool]:
    """The admin token in ``data_dir``, made (mode 0600) on first start; (token, file, new)."""
    path = data_dir / ADMIN_TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_token(path), path, False
    except OSError as exc:
        raise ConfigError(f"cannot create the admin token {path}: {exc}") from exc
    # Prefixed, as people's tokens are: never starts with "-" (read as an option after
    # --token) and tells itself from a till credential at a glance.
    token = "tga_" + secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, path, True


def private_paths(options: ServeOptions) -> list[Path]:
    """What must be head office's alone in its data directory: the admin token, the key
    files and the SQLite database with its journals (the folder itself may be shared)."""
    data = options.data_dir
    paths = [data / ADMIN_TOKEN_FILE, data / KEYS_FOLDER, data / LOOKUP_KEY_FILE]
    db = sqlite_path(options.db, data_dir=data)
    return paths + (siblings(db) if db is not None else [])


def _read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the admin token {path}: {exc}") from exc
    if len(token) < 16:
        raise ConfigError(
            f"the admin token in {path} is shorter than 16 characters; delete the file "
            "and start again to make a new one"
        )
    return token


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """Check the TLS files up front, so a wrong path is a clear error before listening."""
    if cert is None and key is None:
        return None
    if cert is None:
        raise ConfigError("--tls-key needs --tls-cert (the certificate chain, PEM)")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate {cert} / key {key}: {exc}") from exc
    return ctx


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address only this machine can reach (127.0.0.0/8, ::1,
    ``localhost``); any other name may resolve beyond it."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_transport(options: ServeOptions) -> None:
    """Refuse plain HTTP beyond loopback: tills' credentials and the admin token would cross
    the network in clear text. ``--insecure-http`` says someone chose that (a TLS proxy in
    front, a trusted network) and is warned about in the log."""
    if options.tls_cert is not None or is_loopback(options.host):
        return
    if not options.insecure_http:
        raise ConfigError(
            f"--host {options.host} is reachable beyond this machine and would carry till "
            "credentials and the admin token in clear text: pass --tls-cert FILE --tls-key "
            "FILE to serve HTTPS, or --insecure-http if a TLS proxy or a trusted network "
            "protects it (see docs/operations.md)"
        )
    logger.warning(
        "serving plain HTTP on %s (--insecure-http): till credentials and the admin token "
        "cross the network unencrypted unless a TLS proxy is in front",
        options.host,
    )


def _job(what: str, run: Callable[[Hq], str | None]) -> Callable[[Hq, str], None]:
    """A scheduled job: ``run`` says what it did (None: nothing worth a line); an error is
    logged and the next run tries again. With several ``hq serve`` on one database, one
    runs it at a time (:mod:`tillgate.hq.jobs`); the others skip that run."""

    def job(hq: Hq, owner: str) -> None:
        try:
            with alone(hq.db, what, owner=owner, now=hq.clock.now()) as mine:
                if not mine:
                    logger.debug("%s job: running in another head-office process", what)
                    return
                done = run(hq)
        except TillgateError as exc:
            logger.error("%s job failed: %s", what, exc)
            return
        if done:
            logger.info("%s: %s", what, done)

    return job


def _expired_lots(hq: Hq) -> str | None:
    n = expire_due(hq.db, hq.clock.now())
    return f"{n} lots expired" if n else None


def _timed_out_holds(hq: Hq) -> str | None:
    n = expire_holds(hq.db, hq.clock.now())
    return f"{n} timed out" if n else None


def _repriced(hq: Hq) -> str | None:
    report = reprice_pending(hq.db, hq.clock.now())
    if not (report.agrees or report.disagrees):
        return None
    return f"{report.agrees} receipts agree, {report.disagrees} disagree"


def _card_snapshot(hq: Hq) -> str | None:
    return snapshots.refresh(hq.db, lookup_key=hq.lookup_key, clock=hq.clock, workdir=hq.data_dir)


_expire_job = _job("expiry", _expired_lots)
_snapshot_job = _job(snapshots.JOB, _card_snapshot)
_holds_job = _job("holds", _timed_out_holds)
_reprice_job = _job("re-pricing", _repriced)


def serve(options: ServeOptions, *, clock: Clock | None = None) -> int:
    """Run head office until SIGINT/SIGTERM; returns the exit code."""
    import uvicorn
    from apscheduler.schedulers.background import (  # type: ignore[import-untyped]
        BackgroundScheduler,
    )

    from .app import create_app

    clock = clock or SystemClock()
    check_transport(options)
    # What this process makes from here on (keys, journals, logs) is its user's alone.
    os.umask(0o077)
    try:
        # Made 0700; an existing one (the working directory by default) is left as it is.
        options.data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    except OSError as exc:
        raise ConfigError(f"cannot create the data directory {options.data_dir}: {exc}") from exc
    files.make_private(private_paths(options), logger)  # what an older install left open
    token, token_file, new = admin_token(options.data_dir)
    ctx = tls_context(options.tls_cert, options.tls_key)
    db = open_database(options.db, data_dir=options.data_dir)
    try:
        hq = Hq.open(db, clock=clock, admin_token=token, data_dir=options.data_dir)
        sock = bind(options.host, options.port, setting="pass --port")
    except BaseException:
        db.close()
        raise
    host, port = sock.getsockname()[:2]
    scheme = "https" if ctx else "http"
    server = server_class()(
        uvicorn.Config(
            create_app(hq),
            http=http_protocol(),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
            # Tills keep their connection for holds (sync/holds.py, 50 s): a hold then
            # needs no handshake. uvicorn's own 5 s would close it between two receipts.
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            ssl_certfile=str(options.tls_cert) if options.tls_cert else None,
            ssl_keyfile=str(options.tls_key) if options.tls_key else None,
        )
    )
    scheduler = BackgroundScheduler(timezone="UTC")
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # this process
    jobs = (
        # Expiry of lots, first at once.
        ("expire", _expire_job, options.expire_every, datetime.now(UTC)),
        # Re-pricing runs apart from the pushes (never in a push request), a batch at a time.
        ("reprice", _reprice_job, options.reprice_every, None),
        # Holds past their time whose till has pulled since reserve nothing already (every
        # grant checks); the job marks them expired and frees their coupon codes for good.
        ("holds", _holds_job, options.holds_every, None),
        # A card snapshot for new tills when the cards changed enough (hq/snapshots.py).
        ("card-snapshot", _snapshot_job, options.snapshot_every, None),
    )
    for name, job, every, first in jobs:
        scheduler.add_job(
            job,
            "interval",
            args=[hq, owner],
            seconds=every,
            id=name,
            coalesce=True,
            max_instances=1,
            **({"next_run_time": first} if first else {}),
        )
    scheduler.start()
    print(
        f"tillgate hq {__version__}: serving on {scheme}://{host}:{port} "
        f"(database {db.display})\n"
        f"admin token {'created in' if new else 'in'} {token_file.absolute()}",
        file=sys.stderr,
        flush=True,
    )
    logger.info("head office %s serving on %s://%s:%s", hq.instance_id, scheme, host, port)

    try:
        server.run_until_signal(sock)
    finally:
        scheduler.shutdown(wait=False)
        db.close()
        sock.close()
        logger.info("head office stopped")
    return 0
