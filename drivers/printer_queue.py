"""The printer's queues: standalone jobs, and the POS's bytes passed through to the printer.

Neither is thread-safe on its own: the printer holds its lock around every call.
"""

from __future__ import annotations

import enum
import re
from collections import OrderedDict, deque
from dataclasses import dataclass

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

    @property
    def label(self) -> str:
        """How logs name the job: ``job 3 (coupons for receipt R1)``."""
        return f"job {self.id} ({self.kind} for receipt {self.receipt_id or '-'})"


class JobQueue:
    """Jobs in the order they were submitted, at most ``limit`` of them.

    A job leaves the queue only through :meth:`done`, after all its bytes were written, so
    one that failed half-way is still first and is written again.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("queue_limit must be positive")
        self.limit = limit
        self._jobs: deque[Job] = deque()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._next_id = 1

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
        self._jobs.append(job)
        if receipt_id:
            self._seen[key] = None
            while len(self._seen) > SEEN_LIMIT:
                self._seen.popitem(last=False)
        return SubmitResult.QUEUED, job

    def first(self) -> Job | None:
        """The job to write next."""
        return self._jobs[0] if self._jobs else None

    def done(self, job: Job) -> None:
        """``job`` was written completely."""
        if self._jobs and self._jobs[0] is job:
            self._jobs.popleft()

    def pending(self) -> list[Job]:
        """The jobs not printed yet, oldest first."""
        return list(self._jobs)


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
