"""Head office's SQLite WAL, copied into the database file off the request path.

SQLite's automatic checkpoint runs inside the ``COMMIT`` that passes 1,000 pages of WAL: on
head office's one connection, behind its one lock, so every other request waits while the
committed pages are copied and synced (≈ 1.6 s after an import of 1M cards, some
milliseconds every few pushes). Here the automatic checkpoint is off on that connection and
a thread of its own, on a connection of its own, runs SQLite's ``PASSIVE`` checkpoint after
writes (at most one a :data:`GAP` seconds): the same pages copied, with the same syncs, while
requests go on (a passive checkpoint waits for no reader and no writer).

The WAL stays bounded: writes that never stop would keep a passive checkpoint from ever
catching up (the WAL starts again from its beginning only after a checkpoint of all of it),
so once it holds more than :data:`WAL_FRAMES` the thread takes the database's lock (no
transaction of head office's connection is open then) and checkpoints it whole, truncating
the file: what SQLite's own checkpoint did inside a commit, now only then. A checkpoint that
fails is logged and tried again after the next write; the data is safe in the WAL
meanwhile, and the last connection to close checkpoints it whole.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

GAP = 0.5  # seconds at least between two checkpoints (two syncs each)
WAL_FRAMES = 16_000  # ≈ 64 MiB of 4 KiB pages: past it, the WAL is checkpointed whole


class Checkpointer:
    """The checkpoint thread of one SQLite database file; started by the first write."""

    def __init__(self, path: Path, lock: AbstractContextManager[Any]) -> None:
        self._path = path
        self._db_lock = lock  # held by every transaction of head office's connection
        self._due = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def wrote(self) -> None:
        """A write transaction committed: checkpoint soon."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name="hq-wal-checkpoint", daemon=True
                    )
                    self._thread.start()
        self._due.set()

    def close(self) -> None:
        """Stop the thread (a checkpoint under way finishes first)."""
        with self._lock:
            self._stop.set()
            self._due.set()
            thread = self._thread
        if thread is not None:
            thread.join(60)

    def _run(self) -> None:
        try:
            # A short busy timeout: a whole checkpoint waits for other processes' readers
            # and writers (several hq serve on one file) while this one's lock is held; one
            # that cannot finish soon is left for the next round.
            conn = sqlite3.connect(str(self._path), isolation_level=None, timeout=0.2)
        except sqlite3.Error as exc:
            logger.warning("no checkpoint thread for %s: %s", self._path, exc)
            return
        try:
            while self._due.wait() and not self._stop.is_set():
                self._due.clear()
                try:
                    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames > WAL_FRAMES:  # the writes outran it, or one was huge
                        with self._db_lock:
                            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                except sqlite3.Error as exc:
                    logger.warning("checkpoint of %s failed (tried again): %s", self._path, exc)
                self._stop.wait(GAP)
        finally:
            conn.close()
