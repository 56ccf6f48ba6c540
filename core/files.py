"""Private files and folders: what the till and head office keep on disk is theirs alone.

Databases (with SQLite's ``-wal`` and ``-shm``), print spools, key and credential files
hold card holders' personal data or secrets, so on POSIX each is made mode 0600 in a
folder of mode 0700, owned by the user the service runs as. An install from before this
rule is mended at start (:func:`fix_modes`, one log line naming what was fixed) and
``tillgate doctor`` reports what is still too open (:func:`too_open`).

Only regular files and folders are touched: a symlink is never followed (a ``pty:`` port's
link points at a device node that keeps its 0660 group access by design), and nothing
else — sockets, fifos, devices — is changed.

SQLite makes ``-wal`` and ``-shm`` with the mode of the database file, so a database made
with :func:`private_file` before SQLite first opens it gives private journal files too.

On Windows, POSIX modes mean nothing: these functions make the files and report nothing
too open; the folders' ACLs are set as ``docs/security.md`` says (``icacls``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

FILE_MODE, DIR_MODE = 0o600, 0o700
POSIX = os.name == "posix"


@dataclass(frozen=True, kw_only=True)
class Loose:
    """A file or folder that others can reach: its path, its mode and the mode it needs."""

    path: Path
    mode: int
    wanted: int

    @property
    def fix(self) -> str:
        """The shell command that closes it."""
        return f"chmod {self.wanted:o} {self.path}"

    def __str__(self) -> str:
        return f"{self.path} ({self.mode:04o})"


def private_dir(path: Path) -> Path:
    """Make folder ``path`` (and missing parents) if needed; ``path`` itself ends up 0700.

    Parents that already exist are left as they are; ones made here get the process's
    umask (the service's own folder is the one that must be private).
    """
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if POSIX:
        _narrow(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make ``path`` an empty 0600 file if it does not exist; narrow it to 0600 if it does.

    Call it before anything else (SQLite, a log handler) creates the file with the
    process's umask.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        if POSIX and not path.is_symlink():
            _narrow(path, FILE_MODE)
        return path
    os.close(fd)
    if POSIX:
        os.chmod(path, FILE_MODE)  # the umask may have narrowed it, never widened: be exact
    return path


def write_secret(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600, in a 0700 folder.

    The bytes go to a temporary file of mode 0600 from its first instant, are flushed to
    the disk, then renamed over ``path``: a crash leaves the old file or the new one, never
    half of one, and at no instant can another user read the secret.
    """
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def too_open(paths: Iterable[Path]) -> list[Loose]:
    """Every file or folder under ``paths`` (folders walked whole) that others can reach.

    A path that does not exist is skipped. Always empty on Windows.
    """
    if not POSIX:
        return []
    found: list[Loose] = []
    for path, st in _walk(paths):
        wanted = DIR_MODE if stat.S_ISDIR(st.st_mode) else FILE_MODE
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            # The owner keeps what it had (and read-write); group and others lose all.
            found.append(Loose(path=path, mode=mode, wanted=(mode & 0o700) | wanted))
    return found


def fix_modes(paths: Iterable[Path]) -> tuple[list[str], list[str]]:
    """Narrow every file and folder under ``paths`` to 0600/0700: (what was fixed, what
    could not be, with the reason). Nothing is changed on Windows."""
    fixed: list[str] = []
    failed: list[str] = []
    for loose in too_open(paths):
        try:
            os.chmod(loose.path, loose.wanted)  # a regular file or folder (lstat)
        except OSError as exc:
            failed.append(f"{loose}: {exc.strerror or exc} (run: {loose.fix} as its owner)")
        else:
            fixed.append(f"{loose.path} {loose.mode:04o}→{loose.wanted:04o}")
    return fixed, failed


def make_private(paths: Iterable[Path], logger: logging.Logger) -> None:
    """Close what an older install left open to other users: :func:`fix_modes`, said in
    one log line (and a line for each that could not be closed)."""
    fixed, failed = fix_modes(paths)
    if fixed:
        logger.warning(
            "closed %d files and folders to other users (were readable by them): %s",
            len(fixed),
            ", ".join(fixed),
        )
    for line in failed:
        logger.error("cannot make private: %s", line)


def siblings(path: Path) -> list[Path]:
    """A SQLite file with its journal files (``-wal``, ``-shm``, ``-journal``), or a log
    file with its rotated copies (``.1``, ``.2`` …): every one that exists."""
    out = [path]
    with contextlib.suppress(OSError):
        for p in sorted(path.parent.iterdir()):
            tail = p.name[len(path.name) :] if p.name.startswith(path.name) else ""
            if tail in ("-wal", "-shm", "-journal") or (tail[:1] == "." and tail[1:].isdigit()):
                out.append(p)
    return out


def _walk(paths: Iterable[Path]) -> Iterator[tuple[Path, os.stat_result]]:
    seen: set[Path] = set()
    for top in paths:
        stack = [Path(top)]
        while stack:
            path = stack.pop()
            if path in seen:
                continue
            seen.add(path)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                yield path, st
                with contextlib.suppress(OSError):
                    stack += sorted(path.iterdir(), reverse=True)
            elif stat.S_ISREG(st.st_mode):
                yield path, st


def _narrow(path: Path, wanted: int) -> None:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077 or mode & wanted != wanted:
        os.chmod(path, (mode & 0o700) | wanted)


def _sync_dir(folder: Path) -> None:
    # The rename itself must reach the disk, or a power cut could bring the old file back.
    if not POSIX:
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
