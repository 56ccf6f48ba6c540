"""The ``tillgate hq …`` verbs: serve, push, cards import/show, enroll-code, coupons issue."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(verbs: argparse._SubParsersAction[Any]) -> None:
    """Add ``hq`` and its sub-verbs to the ``tillgate`` command line."""
