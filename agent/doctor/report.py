"""The report's lines: :class:`Check` (what was checked, how it came out, the fix)."""

from __future__ import annotations

import enum
import errno
from dataclasses import dataclass

from tillgate.core.cards import mask_in_text

NAME_WIDTH = 11  # "card reader"; a longer name still gets its two spaces


class Level(enum.StrEnum):
    """How a check came out; only FAIL makes ``tillgate doctor`` exit non-zero."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True, kw_only=True)
class Check:
    """One line of the report: what was checked, how it came out, and the fix if any."""

    name: str
    level: Level
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        """False only for FAIL: a warning or a skipped check does not fail the till."""
        return self.level is not Level.FAIL

    def line(self) -> str:
        """The printed line, with any card number masked (messages may quote input)."""
        text = f"{self.level.value:<6}{self.name:<{NAME_WIDTH}}  {self.detail}"
        return mask_in_text(f"{text} — fix: {self.fix}" if self.fix else text)


def ok(name: str, detail: str) -> Check:
    return Check(name=name, level=Level.OK, detail=detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name=name, level=Level.WARN, detail=detail, fix=fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name=name, level=Level.FAIL, detail=detail, fix=fix)


def skip(name: str, detail: str) -> Check:
    return Check(name=name, level=Level.SKIP, detail=detail)


def os_why(exc: OSError) -> str:
    """A short reason for an OS-level failure."""
    reasons = {
        errno.ECONNREFUSED: "connection refused",
        errno.EHOSTUNREACH: "no route to host",
        errno.ENETUNREACH: "network unreachable",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "read-only file system",
        errno.ENOSPC: "no space left on the disk",
        errno.ENOTDIR: "a file is in the way of a directory",
    }
    return reasons.get(exc.errno or 0) or exc.strerror or str(exc)


def size(n: float) -> str:
    """Bytes for people: ``820 MB``, ``4.1 GB`` (no long digit runs a mask would eat)."""
    for unit in ("bytes", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if n >= 10 or unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.0f} GB" if n >= 10 else f"{n:.1f} GB"


def duration(seconds: float) -> str:
    """``45 s``, ``10 min 0 s``, ``3 h 5 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"
