"""The sample files shipped beside the code: ``program.example.toml``, ``cards.example.csv``,
``products.example.csv`` and ``config.example.toml``.

They live at the top of the source tree (where an operator looks for them) and are installed
as package data of ``tillgate.examples``; a frozen build carries them under the same name.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

NAMES = (
    "config.example.toml",
    "program.example.toml",
    "cards.example.csv",
    "products.example.csv",
)


def example_file(name: str) -> Path:
    """The path of one sample file, installed, frozen or in a source checkout."""
    if name not in NAMES:
        raise ValueError(f"no sample file {name!r}")
    # A namespace package (no __init__.py): importlib.resources trips over it in an editable
    # install, so look through its search locations directly.
    try:
        spec = importlib.util.find_spec("tillgate.examples")
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        found = Path(location) / name
        if found.is_file():
            return found
    # A source checkout run without installing: the files sit at the top of the tree.
    here = Path(__file__).resolve().parents[1] / name
    if here.is_file():
        return here
    raise FileNotFoundError(f"{name}: the sample file is missing from this installation")
