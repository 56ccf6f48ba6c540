"""``tillgate run``: wires the store, rules, POS API, devices, sync and housekeeping together.

Start-up order matters for the cashier: the data file is opened and migrated, the
program is loaded (a standalone till reads its program and cards files), then the POS API
socket is bound; only then does the agent say it is ready. SIGINT/SIGTERM stop it
cleanly: uvicorn finishes the requests in flight, the scheduler stops, the data file is
closed.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tillgate.agent.usecases import TillService, TillSettings
from tillgate.agent.usecases.session import CardSession
from tillgate.core import __version__, errors, files
from tillgate.core.cardfile import read_rows
from tillgate.core.clock import Clock, SystemClock
from tillgate.core.files import private_dir, siblings
from tillgate.core.keyfolder import KeyFolder
from tillgate.core.productfile import load_products
from tillgate.core.rules.coupons import LEGACY_KEY, CouponSigner, generate_key
from tillgate.core.rules.program import load_program_file
from tillgate.core.serving import bind, http_protocol, server_class

from .store import meta
from .store.db import Database
from .usecases.ports import (
    AlwaysOnline,
    Connectivity,
    DeviceHints,
    NoDevices,
    NoPrinter,
    NoReservations,
    PrintQueue,
    Reservations,
)

if TYPE_CHECKING:
    from apscheduler.schedulers.background import (  # type: ignore[import-untyped]
        BackgroundScheduler,
    )

    from tillgate.core.config import Config

logger = logging.getLogger(__name__)


def coupon_keys(db: Database, *, chain_key: bytes | None) -> KeyFolder:
    """This till's coupon keys: 0600 files in ``keys/`` beside the data file, never in it.

    A standalone shop signs and verifies its own coupons with a key made here once. A
    chain's till starts from the key its enrolment gave (``chain_key``, key 1) and learns
    the chain's other keys, and revocations, from the change feed (sync). An install from
    before keys had files kept its key in the data file: it moves to the folder, and out
    of the data file, on the first start.
    """
    folder = KeyFolder(db.path.parent / meta.KEYS_FOLDER)
    private_dir(folder.path)

    def keep(key: bytes) -> None:
        if chain_key is None:  # a chain till's key comes from enrolment, not from here
            folder.add(LEGACY_KEY, key)

    with db.write() as conn:
        if meta.take_coupon_key(conn, keep):
            logger.warning(
                "coupon key moved out of the data file into %s (a key file, mode 0600)",
                folder.key_file(LEGACY_KEY),
            )
    ring = folder.coupon_keys()
    if LEGACY_KEY not in ring.keys and LEGACY_KEY not in ring.revoked:
        if chain_key is not None:
            folder.add(LEGACY_KEY, chain_key)
        elif not ring.keys:
            folder.add(LEGACY_KEY, generate_key())
    return folder


def private_paths(config: Config) -> list[Path]:
    """What must be this till's alone: the data dir whole, the credential, the log files."""
    paths = [Path(config.till.data_dir)]
    if config.hq.url and config.hq.credential_file:
        paths.append(Path(config.hq.credential_file))
    if config.logging.file is not None:
        paths += siblings(Path(config.logging.file))
    return paths


def make_private(config: Config) -> None:
    """Close what an older install left open to other users (one log line if anything)."""
    files.make_private(private_paths(config), logger)


def _file_source(path: Path, pattern: str) -> str:
    """What a cards file is, for telling an unchanged one: its SHA-256 (read in blocks),
    size and modification time, and the card pattern its rows are checked against."""
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        st = os.fstat(f.fileno())
    return json.dumps(
        {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "pattern": pattern}
    )


def _same_file(source: str, loaded: str | None) -> bool:
    """Whether a cards file is the one loaded: the same bytes read with the same pattern
    (a file touched or copied again, same content, is the same file)."""
    if loaded is None:
        return False
    try:
        was = json.loads(loaded)
    except ValueError:
        return False
    now = json.loads(source)
    return isinstance(was, dict) and all(was.get(k) == now[k] for k in ("sha256", "pattern"))


def _same_stat(path: Path, pattern: str, loaded: str | None) -> bool:
    """Whether a cards file has the size and modification time (to the nanosecond) of the
    one loaded, under the same pattern: unchanged without reading it, as make and rsync
    tell (a restart on a million-card file then costs no checksum of its bytes)."""
    if loaded is None:
        return False
    try:
        was = json.loads(loaded)
        st = path.stat()
    except (ValueError, OSError):
        return False
    return isinstance(was, dict) and (was.get("size"), was.get("mtime_ns"), was.get("pattern")) == (
        st.st_size,
        st.st_mtime_ns,
        pattern,
    )


@dataclass
class FileWatcher:
    """Reloads the standalone program, cards and product list files when they change."""

    service: TillService
    program_file: Path
    cards_file: Path | None
    products_file: Path | None = None
    _seen: dict[Path, tuple[float, int]] = field(default_factory=dict)
    # Why the product list file on disk is not the list in force (None: it is).
    products_file_error: str | None = None
    # Why the program file on disk is not the program in force (None: it is).
    program_file_error: str | None = None

    def _changed(self, path: Path) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        sig = (st.st_mtime, st.st_size)
        if self._seen.get(path) == sig:
            return False
        self._seen[path] = sig
        return True

    def load_program(self, *, strict: bool) -> None:
        if not self._changed(self.program_file) and not strict:
            return
        try:
            program = load_program_file(self.program_file)
        except errors.ProgramError as exc:
            if strict:
                raise
            logger.error("program file changed but is invalid; keeping the one in force: %s", exc)
            self._file_problem(str(exc))
            return
        version = hashlib.sha256(self.program_file.read_bytes()).hexdigest()[:12]
        self.service.install_program(program, version=f"file-{version}")
        self._file_problem(None)

    def _file_problem(self, problem: str | None) -> None:
        """Keep (or clear) why the file is not in force, and tell the cashier's screen."""
        if problem == self.program_file_error:
            return
        self.program_file_error = problem
        self.service.events.publish(
            "sync",
            {
                "offline": self.service.offline,
                "mode": "standalone",
                "last_sync": None,
                "program_file_error": problem,
            },
        )

    def program_status(self) -> dict[str, Any]:
        """``/v1/status``'s ``program`` part for a standalone till: its file and whether it is
        the program in force."""
        return {"file": str(self.program_file), "file_error": self.program_file_error}

    def load_cards(self, *, strict: bool) -> None:
        """The cards file into the data file, read row by row; a file whose checksum (and
        the card pattern it was read with) is the one loaded already is not read again."""
        path = self.cards_file
        if path is None or (not self._changed(path) and not strict):
            return
        pattern = self.service.catalog().program.card_number_pattern
        problems: list[str] = []
        loaded = self.service.cards_file_in_force()
        if _same_stat(path, pattern, loaded):
            logger.info("cards file %s unchanged (same size and time): not loaded again", path)
            return
        try:
            source = _file_source(path, pattern)
            if _same_file(source, loaded):
                logger.info("cards file %s unchanged (same checksum): not loaded again", path)
                return
            with path.open(encoding="utf-8", newline="") as lines:
                rows = read_rows(lines, number_pattern=pattern, problems=problems)
                n = self.service.import_card_rows(rows, problems=problems, source=source)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            msg = f"cannot read the cards file {path}: {exc}"
            if strict:
                raise errors.ConfigError(msg) from exc
            logger.error("%s; the cards in force are kept", msg)
            return
        for p in problems:
            logger.warning("cards file %s: %s", path, p)
        logger.info("cards file %s: %d cards loaded, %d problems", path, n, len(problems))

    def load_products(self, *, strict: bool) -> None:
        """The product list file into the data file (version: a digest of the file); a bad
        file keeps the list in force and says why (a bad one at start refuses the start)."""
        path = self.products_file
        if path is None:
            # No file named (any more): a list an earlier file put in force goes too.
            if strict and (self.service.products_version() or "").startswith("file-"):
                self.service.install_products([], version=None)
            return
        if not self._changed(path) and not strict:
            return
        try:
            loaded = load_products(path)
            version = "file-" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        except (errors.ProductsError, OSError) as exc:
            if strict:
                raise
            logger.error(
                "product list file changed but is invalid; keeping the list in force: %s", exc
            )
            self.products_file_error = str(exc)
            return
        for warning in loaded.warnings:
            logger.warning("product list file %s: %s", path, warning)
        self.service.install_products(loaded.products, version=version)
        self.products_file_error = None

    def products_status(self) -> dict[str, Any]:
        """``/v1/status``'s ``products`` part for a standalone till: its file, and why that
        file is not the list in force (None: it is)."""
        file = str(self.products_file) if self.products_file else None
        return {"file": file, "file_error": self.products_file_error}

    def poll(self) -> None:
        self.load_program(strict=False)
        self.load_cards(strict=False)
        self.load_products(strict=False)


def build_service(
    config: Config,
    *,
    clock: Clock | None = None,
    connectivity: Connectivity | None = None,
    printer: PrintQueue | None = None,
    devices: DeviceHints | None = None,
    reservations: Reservations | None = None,
) -> TillService:
    """Open the data file and make the till service (no network, no threads).

    ``connectivity``: sync's online state for a chain's till (default: always online);
    ``printer`` and ``devices``: the device layer (default: nothing printed, no hints).
    """
    clock = clock or SystemClock()
    data_dir = Path(config.till.data_dir)
    make_private(config)  # first: what is mended below must be in its one log line
    try:
        private_dir(data_dir)
    except OSError as exc:
        raise errors.StoreError(f"cannot create the data directory {data_dir}: {exc}") from exc
    db = Database(data_dir / "tillgate.sqlite3")
    settings = TillSettings(
        till=config.till.id,
        store=config.till.store,
        timezone=config.till.timezone,
        language=config.till.language,
        hold_seconds=config.till.hold_seconds,
        max_lines=config.pos_api.max_lines,
        chain=bool(config.hq.url),
        retention_days=config.till.retention_days,
    )
    chain_key = None
    if config.hq.url:
        # A chain's tills sign and verify coupons with head office's keys.
        from tillgate.sync.wiring import credential

        chain_key = credential(config).key
    try:
        keys = coupon_keys(db, chain_key=chain_key)
    except BaseException:
        db.close()
        raise
    return TillService(
        db=db,
        settings=settings,
        clock=clock,
        session=CardSession(seconds=config.till.card_session_seconds),
        signer=CouponSigner(keys),
        connectivity=connectivity or AlwaysOnline(),
        printer=printer or NoPrinter(),
        devices=devices or NoDevices(),
        reservations=reservations or NoReservations(),
    )


# A full collection of the garbage collector costs the till ≈ 0.3–0.5 ms however little is
# left outside the frozen start-up (core/serving.py): free lists emptied, caches dropped.
# Left to itself it runs every ≈ 130 calculates of 50 lines, inside whichever calculate
# crossed the count: in the slowest percent of them (docs/performance.md, "latency").
# The till raises the count a hundredfold and runs one itself every half minute from its
# scheduler, when no write holds the data file (between receipts, as a rule).
FULL_COLLECTION_SECONDS = 30
FULL_COLLECTION_AFTER = 1000  # young collections between automatic full ones (Python's: 10)


def collect_between_receipts(scheduler: BackgroundScheduler, service: TillService) -> None:
    """Move the collector's full collections off the POS path (see above)."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)

    def collect() -> None:
        if service.db.idle():
            gc.collect()

    scheduler.add_job(
        collect,
        "interval",
        seconds=FULL_COLLECTION_SECONDS,
        id="collect",
        coalesce=True,
        max_instances=1,
    )


def run_daemon(config: Config, *, clock: Clock | None = None) -> int:
    """Run the agent until SIGINT/SIGTERM; returns the process exit code."""
    import uvicorn
    from apscheduler.schedulers.background import BackgroundScheduler

    from .api.app import create_app

    _Server = server_class()
    # Everything this process makes from here on (spools, rotated logs, journals) is the
    # service user's alone; the pty: ports set their own 0660 on purpose.
    os.umask(0o077)

    from .devices import DeviceManager

    devices = DeviceManager(config)
    online = None
    holds = None
    if config.hq.url:
        from tillgate.sync.engine import OnlineState
        from tillgate.sync.wiring import make_holds

        online = OnlineState()
        holds = make_holds(config)
    service = build_service(
        config,
        clock=clock,
        connectivity=online,
        printer=devices,
        devices=devices,
        reservations=holds,
    )
    watcher: FileWatcher | None = None
    if not config.hq.url:
        if config.standalone.program_file is None:
            raise errors.ConfigError("standalone.program_file is required when hq.url is empty")
        watcher = FileWatcher(
            service=service,
            program_file=Path(config.standalone.program_file),
            cards_file=Path(config.standalone.cards_file) if config.standalone.cards_file else None,
            products_file=config.standalone.products_file,
        )
        watcher.load_program(strict=True)
        watcher.load_cards(strict=True)
        watcher.load_products(strict=True)
    service.sweep()

    sock = bind(config.pos_api.host, config.pos_api.port)
    host, port = sock.getsockname()[:2]
    app = create_app(
        service,
        token=config.pos_api.token,
        host=config.pos_api.host,
        max_body_bytes=config.pos_api.max_body_bytes,
        status_extra=lambda: (
            {"devices": devices.status()}
            | (
                {"program": watcher.program_status(), "products": watcher.products_status()}
                if watcher is not None
                else {}
            )
        ),
    )
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        service.sweep, "interval", seconds=60, id="sweep", coalesce=True, max_instances=1
    )
    # The WAL is copied into the file here, off the POS's commits (store/db.py).
    scheduler.add_job(
        service.db.checkpoint,
        "interval",
        seconds=2,
        id="checkpoint",
        coalesce=True,
        max_instances=1,
    )
    # Retention (store/retention.py): hourly, so a till that syncs later prunes soon after.
    scheduler.add_job(
        service.prune,
        "interval",
        hours=1,
        id="retention",
        coalesce=True,
        max_instances=1,
        next_run_time=datetime.now(UTC) + timedelta(minutes=1),
    )
    collect_between_receipts(scheduler, service)
    if watcher is not None:
        scheduler.add_job(
            watcher.poll, "interval", seconds=5, id="watch-files", coalesce=True, max_instances=1
        )
    server = _Server(
        uvicorn.Config(
            app,
            http=http_protocol(),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
    )
    server.on_exit = service.events.close
    syncer = None
    if config.hq.url:
        from tillgate.sync.wiring import start as start_sync

        # Before the scheduler starts: a till with no program yet syncs once first.
        assert online is not None
        syncer = start_sync(config, service, scheduler, online=online)
    else:
        service.events.publish(
            "sync", {"offline": service.offline, "mode": "standalone", "last_sync": None}
        )
    scheduler.start()
    devices.start(service)
    logger.info(
        "tillgate %s: till %s of store %s, POS API on http://%s:%s",
        __version__,
        config.till.id,
        config.till.store,
        host,
        port,
    )
    try:
        server.run_until_signal(sock)
    finally:
        scheduler.shutdown(wait=False)
        devices.stop()
        if syncer is not None:
            syncer.close()
        if holds is not None:
            holds.close()
        service.db.close()
        sock.close()
        logger.info("tillgate stopped")
    return 0
