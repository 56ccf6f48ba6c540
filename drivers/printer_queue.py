"""The printer's queues: standalone jobs, and the POS's bytes passed through to the printer.

Neither is thread-safe on its own: the printer holds its lock around every call.

Standalone jobs (a customer's coupon) can be kept in a **spool directory** as well, one file
per job, so that a coupon queued while the printer was away still prints after the agent is
restarted. A job's file is written (and fsynced) before :meth:`JobQueue.add` returns and
removed when the job was printed; a spool that cannot be written (a full disk) is logged and
the job is kept in memory, as without a spool.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import re
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SEEN_LIMIT = 1000  # (kind, receipt) pairs remembered to refuse a job submitted twice
# Bytes in the POS's stream that ask the printer something, whose answer goes back to the
# POS: DLE EOT, GS I, GS r, GS a (Automatic Status Back), GS ( H, FS ( e.
POS_QUERY = re.compile(rb"\x10\x04|\x1d[Ira]|\x1d\(H|\x1c\(e")


class SubmitResult(enum.StrEnum):
    """What :meth:`~tillgate.drivers.printer.Printer.submit` did with a job."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"  # the same kind for the same receipt is queued or was printed
    FULL = "full"  # the queue is full: the job was not taken (logged, and a hint shown)
    NO_PRINTER = "no_printer"  # url = "none"


@dataclass(kw_only=True)
class Job:
    """One standalone print job; ``attempts`` counts how often writing it was started."""

    id: int
    kind: str
    receipt_id: str
    data: bytes
    attempts: int = 0
    spooled: Path | None = None  # its file in the spool, if it has one

    @property
    def label(self) -> str:
        """How logs name the job: ``job 3 (coupons for receipt R1)``."""
        return f"job {self.id} ({self.kind} for receipt {self.receipt_id or '-'})"


class JobQueue:
    """Jobs in the order they were submitted, at most ``limit`` of them.

    A job leaves the queue only through :meth:`done`, after all its bytes were written, so
    one that failed half-way is still first and is written again. With ``spool``, the jobs
    a previous run left there are queued first, oldest first.
    """

    def __init__(self, limit: int, *, spool: Path | None = None) -> None:
        if limit < 1:
            raise ValueError("queue_limit must be positive")
        self.limit = limit
        self.spool = spool
        self._jobs: deque[Job] = deque()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._next_id = 1
        if spool is not None:
            self._load(spool)

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, data: bytes, *, kind: str, receipt_id: str) -> tuple[SubmitResult, Job | None]:
        """Queue a job unless it is a duplicate or the queue is full."""
        key = (kind, receipt_id)
        if receipt_id and key in self._seen:
            return SubmitResult.DUPLICATE, None
        if len(self._jobs) >= self.limit:
            return SubmitResult.FULL, None  # not remembered: it may be submitted again
        job = Job(id=self._next_id, kind=kind, receipt_id=receipt_id, data=bytes(data))
        self._next_id += 1
        job.spooled = self._write(job)
        self._jobs.append(job)
        self._remember(key)
        return SubmitResult.QUEUED, job

    def first(self) -> Job | None:
        """The job to write next."""
        return self._jobs[0] if self._jobs else None

    def done(self, job: Job) -> None:
        """``job`` was written completely."""
        if self._jobs and self._jobs[0] is job:
            self._jobs.popleft()
            if job.spooled is not None:
                try:
                    job.spooled.unlink(missing_ok=True)
                except OSError as exc:  # printed twice after a restart is the worst case
                    logger.error("cannot remove printed %s from the spool: %s", job.label, exc)

    def pending(self) -> list[Job]:
        """The jobs not printed yet, oldest first."""
        return list(self._jobs)

    # ------------------------------------------------------------ the spool

    def _remember(self, key: tuple[str, str]) -> None:
        if key[1]:
            self._seen[key] = None
            while len(self._seen) > SEEN_LIMIT:
                self._seen.popitem(last=False)

    def _write(self, job: Job) -> Path | None:
        if self.spool is None:
            return None
        path = self.spool / f"{job.id:010d}.job"
        tmp = path.with_suffix(".tmp")
        header = json.dumps({"kind": job.kind, "receipt_id": job.receipt_id}).encode()
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(header + b"\n" + job.data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            logger.error(
                "cannot keep %s in the print spool %s (%s): it is queued in memory only and "
                "is lost if the agent stops before it prints",
                job.label,
                self.spool,
                exc.strerror or exc,
            )
            return None
        return path

    def _load(self, spool: Path) -> None:
        try:
            paths = sorted(spool.glob("*.job"))
        except OSError as exc:
            logger.error("cannot read the print spool %s: %s", spool, exc)
            return
        for path in paths:
            try:
                number = int(path.stem)
                head, _, data = path.read_bytes().partition(b"\n")
                meta = json.loads(head)
                kind, receipt_id = str(meta["kind"]), str(meta["receipt_id"])
                if not data:
                    raise ValueError("no bytes to print")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # Never lost, never printed as garbage: set aside for a person to look at.
                bad = path.with_suffix(".bad")
                with contextlib.suppress(OSError):
                    path.replace(bad)
                logger.error("print spool: %s is unreadable (%s); moved to %s", path, exc, bad)
                continue
            job = Job(id=number, kind=kind, receipt_id=receipt_id, data=data, spooled=path)
            self._jobs.append(job)
            self._remember((kind, receipt_id))
            self._next_id = max(self._next_id, number + 1)
        if self._jobs:
            logger.info(
                "print spool %s: %d job(s) from before the restart will be printed: %s",
                spool,
                len(self._jobs),
                ", ".join(job.label for job in self._jobs),
            )


class ForwardBuffer:
    """POS bytes waiting for the printer, in order, at most ``limit`` bytes.

    Bytes leave only through :meth:`written`, after the port took them, so a piece that
    failed is written again.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("forward_limit must be positive")
        self.limit = limit
        self.size = 0
        self._pieces: deque[bytes] = deque()
        self._offset = 0  # bytes of the first piece already written
        self._tail = b""  # the end of the last piece written: a query split in two

    def __len__(self) -> int:
        return self.size

    def add(self, data: bytes) -> bool:
        """Take ``data``; False (nothing taken) if it would go over the limit."""
        if self.size + len(data) > self.limit:
            return False
        self._pieces.append(bytes(data))
        self.size += len(data)
        return True

    def next_piece(self, most: int) -> bytes:
        """Up to ``most`` bytes to write next (b"" when empty)."""
        if not self._pieces:
            return b""
        return self._pieces[0][self._offset : self._offset + most]

    def written(self, piece: bytes) -> bool:
        """``piece`` (from :meth:`next_piece`) was written; True if it asked the printer."""
        asked = bool(POS_QUERY.search(self._tail + piece))
        self._tail = piece[-2:]
        self._offset += len(piece)
        self.size -= len(piece)
        if self._offset >= len(self._pieces[0]):
            self._pieces.popleft()
            self._offset = 0
        return asked
