"""Checks of what the till keeps on disk: data dir, log file, SQLite file, program files,
and that no other user can read them (file modes)."""

from __future__ import annotations

import csv
import errno
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tillgate.core.config import Config
from tillgate.core.errors import ConfigError, TillgateError

from .report import Check, fail, ok, os_why, size, warn

DB_NAME = "tillgate.sqlite3"
MIN_FREE = 50 * 1000**2  # below this the data dir FAILs: a full disk stops confirms
LOW_FREE = 500 * 1000**2  # below this, a warning
SPACE_FIX = (
    "free space on that disk (old logs, old backups) or move [till] data_dir: on a full disk "
    "the till cannot record a sale's points (503 storage_full)"
)


def writable(name: str, path: Path, *, what: str, key: str, space: bool = False) -> Check:
    """Whether directory ``path`` (made at start if missing) takes a real write; ``key``
    is the config key to change for another path."""
    if path.exists() and not path.is_dir():
        return fail(
            name, f"{what}: is a file, not a directory", f"move {path} away, or change {key}"
        )
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        return fail(
            name,
            f"{what}: cannot be created: {existing} is a file, not a directory",
            f"move {existing} away, or change {key}",
        )
    try:
        _probe_write(existing)
    except OSError as exc:
        fix = f"give the agent's user write access to {existing} (`chown -R USER {existing}`)"
        if exc.errno == errno.EROFS:
            fix = f"remount that disk read-write, or change {key} to a writable disk"
        elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = SPACE_FIX
        return fail(name, f"{existing}: cannot write: {os_why(exc)}", fix)
    state = "writable" if existing == path else f"does not exist yet; {existing} is writable"
    if not space:
        return ok(name, f"{what}: {state}")
    free = shutil.disk_usage(existing).free
    detail = f"{what}: {state}, {size(free)} free"
    if free < MIN_FREE:
        return fail(name, detail, SPACE_FIX)
    if free < LOW_FREE:
        return warn(name, detail, SPACE_FIX)
    return ok(name, detail)


def _probe_write(directory: Path) -> None:
    # A real write, down to the disk: permissions, a read-only mount or a full disk all
    # show here, which os.access() (always yes for root) would not tell.
    fd, probe = tempfile.mkstemp(prefix=".tillgate-doctor-", dir=directory)
    try:
        os.write(fd, b"tillgate doctor: write probe\n")
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(probe)


def data_dir(config: Config) -> Check:
    path = Path(config.till.data_dir)
    return writable("data dir", path, what=str(path), key="[till] data_dir", space=True)


def file_modes(config: Config) -> Check:
    """Whether the data dir, credential and log files are this till's user's alone."""
    from tillgate.core.files import POSIX, too_open

    from ..daemon import private_paths

    if not POSIX:
        return ok("file modes", "Windows: set the folders' ACLs as docs/security.md says (icacls)")
    # A data dir that is not a folder is the data dir check's FAIL, not a mode to change.
    data = Path(config.till.data_dir)
    paths = [p for p in private_paths(config) if p != data or not data.exists() or data.is_dir()]
    loose = too_open(paths)
    if not loose:
        return ok("file modes", "data dir, credential and log files: this user's alone (0600/0700)")
    shown = ", ".join(str(p) for p in loose[:3]) + (
        f" (+{len(loose) - 3} more)" if len(loose) > 3 else ""
    )
    by_mode: dict[int, list[str]] = {}
    for p in loose:
        by_mode.setdefault(p.wanted, []).append(str(p.path))
    fixes = [f"chmod {mode:o} {' '.join(paths)}" for mode, paths in sorted(by_mode.items())]
    return fail(
        "file modes",
        f"{len(loose)} readable by other users (card holders' data, keys): {shown}",
        "; ".join(f"`{c}`" for c in fixes) + " (or restart `tillgate run`, which fixes them)",
    )


def log_file(config: Config) -> Iterator[Check]:
    file = config.logging.file
    if file is not None:
        yield writable("log file", file.parent, what=f"{file}: its directory", key="[logging] file")


def database(config: Config) -> tuple[Check, str | None]:
    """The data file's check, and the version of the program in it (None: no program)."""
    from ..store import outbox
    from ..store import program as store_program
    from ..store.db import Database
    from ..store.schema import MIGRATIONS

    path = Path(config.till.data_dir) / DB_NAME
    if not path.exists():
        return ok("database", f"{path}: none yet (a till that never ran; made at start)"), None
    broken = (
        f"stop the agent, move {path} aside (keep it: entries not yet synced are only there) "
        "and restore the last backup; a chain till with a new data file must be enrolled "
        "under a new till id"
    )
    if not path.is_file():
        return fail("database", f"{path}: is not a file", broken), None
    try:
        db = Database(path, readonly=True)  # read-only: never migrated by doctor
    except TillgateError as exc:
        return fail("database", str(exc), broken), None
    try:
        with db.read() as conn:
            problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall()]
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            program_version = store_program.version(conn)
            unsynced = outbox.backlog(conn)
    except sqlite3.Error as exc:
        return fail("database", f"{path} is not a usable tillgate data file ({exc})", broken), None
    finally:
        db.close()
    if problems != ["ok"]:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return fail("database", f"{path}: damaged: {problems[0]}{more}", broken), None
    current = len(MIGRATIONS)
    if version > current:
        return fail(
            "database",
            f"{path}: schema version {version}, newer than this tillgate knows ({current})",
            "upgrade tillgate to the version that last ran on this till (or newer)",
        ), None
    schema = f"schema {version}" + (
        " (current)" if version == current else f", upgraded to {current} at the next start"
    )
    detail = f"{path}: quick_check ok, {schema}, {size(path.stat().st_size)}"
    if not config.standalone_mode:
        detail += f", {unsynced} entries not yet sent to head office"
    return ok("database", detail), program_version


def program_files(config: Config) -> Iterator[Check]:
    """A standalone till's program file, and its cards file when it has one."""
    from tillgate.core.cardfile import read_rows
    from tillgate.core.rules.program import load_program_file

    file = config.standalone.program_file
    if file is None:  # the config refuses this for a standalone till; be safe anyway
        yield fail("program", "no [standalone] program_file", "set [standalone] program_file")
        return
    try:
        loaded = load_program_file(file)
    except ConfigError as exc:  # ProgramError lists every problem
        errors = getattr(exc, "errors", None) or [str(exc)]
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        shown = "; ".join(errors[:3]) + more
        yield fail(
            "program",
            shown if str(file) in shown else f"{file}: {shown}",
            f"correct the file; `tillgate check-program {file}` lists every problem",
        )
        return
    p = loaded.program
    yield ok(
        "program", f"{file}: {p.name!r}, {len(loaded.promotions)} promotions, {len(p.tiers)} tiers"
    )
    cards = config.standalone.cards_file
    if cards is None:
        return
    # Row by row, as the agent reads it (a million-card file is not read whole).
    problems: list[str] = []
    count = 0
    try:
        with Path(cards).open(encoding="utf-8", newline="") as lines:
            for _ in read_rows(
                lines, number_pattern=p.card_number_pattern, problems=problems, seen=set()
            ):
                count += 1
    except (OSError, UnicodeDecodeError) as exc:
        why = os_why(exc) if isinstance(exc, OSError) else "not UTF-8 text"
        yield fail(
            "cards file",
            f"{cards}: cannot read: {why}",
            'correct [standalone] cards_file (a UTF-8 CSV), or set it to "" for none',
        )
        return
    except csv.Error as exc:
        yield fail("cards file", f"{cards}: not a CSV file ({exc})", "correct the file")
        return
    if problems:
        yield warn(
            "cards file",
            f"{cards}: {count} cards, {len(problems)} row{'s' * (len(problems) > 1)} "
            f"refused (first: {problems[0]})",
            "correct those rows; the agent loads the good ones and logs the others",
        )
        return
    yield ok("cards file", f"{cards}: {count} cards")


def products_file(config: Config) -> Iterator[Check]:
    """A standalone till's product list file, when it names one."""
    from tillgate.core.errors import ProductsError
    from tillgate.core.productfile import load_products

    path = config.standalone.products_file
    if not config.standalone_mode or path is None:
        return
    try:
        loaded = load_products(path)
    except ProductsError as exc:
        more = f" (+{len(exc.errors) - 3} more)" if len(exc.errors) > 3 else ""
        yield fail(
            "products file",
            f"{path}: {'; '.join(exc.errors[:3])}{more}",
            "correct the file (every problem is listed by row and column), or set "
            '[standalone] products_file = "" for none; the till keeps its list in force',
        )
        return
    cats = {p.category for p in loaded.products}
    yield ok("products file", f"{path}: {len(loaded.products)} products, {len(cats)} categories")
