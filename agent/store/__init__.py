"""The till's SQLite cache and ledger: one file, one writer, crash-consistent."""

from .db import Database

__all__ = ["Database"]
