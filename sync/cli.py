"""The till's sync verbs: ``tillgate enroll`` and ``tillgate sync``."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(verbs: argparse._SubParsersAction[Any]) -> None:
    """Add ``enroll`` and ``sync`` to the ``tillgate`` command line."""
