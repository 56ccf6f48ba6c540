"""Head office's database errors: a driver's exception (``sqlite3.Error``,
``psycopg.Error``) as a :class:`~tillgate.core.errors.StoreError`, here and nowhere else."""

from __future__ import annotations

import sqlite3

from tillgate.core.errors import StorageFullError, StoreError


class DuplicateKey(StoreError):
    """A row's key (a primary key or a unique column) is already in its table."""


class LockBusy(StoreError):
    """A lock another transaction holds was not granted within the statement's wait
    (PostgreSQL's ``lock_timeout``)."""


# SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE
_SQLITE_DUPLICATE = frozenset({1555, 2067})


def translate(exc: BaseException, what: str) -> BaseException:
    """A database driver's exception as a StoreError (other exceptions pass unchanged)."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, sqlite3.Error):
        text = str(exc).lower()
        code = getattr(exc, "sqlite_errorcode", None)
        if code == 13 or "disk is full" in text:
            return StorageFullError(f"{what}: the disk is full; nothing was written ({exc})")
        if code in _SQLITE_DUPLICATE:
            return DuplicateKey(f"{what}: {exc}")
        return StoreError(f"{what}: {exc}")
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return exc
    if isinstance(exc, psycopg.errors.DiskFull):
        return StorageFullError(f"{what}: the disk is full; nothing was written")
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return LockBusy(f"{what}: {first_line(exc)}")
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return DuplicateKey(f"{what}: {first_line(exc)}")
    if isinstance(exc, psycopg.Error):
        return StoreError(f"{what}: {first_line(exc)}")
    return exc


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
