"""What the frozen build carries, as plain data: read by ``tillgate.spec`` and by tests.

Kept apart from the spec so that ``tests/test_build.py`` can check it without PyInstaller
and without building anything. Nothing here imports PyInstaller or tillgate.

Why each third-party entry is needed (PyInstaller follows static imports on its own, even
ones inside functions; what it cannot see are imports by name and data files):

- ``escpos``: its printer database ``capabilities.json`` is data; without it python-escpos
  quietly falls back to a "BrokenDefault" profile and every real profile name is refused.
- ``barcode``: its fonts (``DejaVuSansMono.ttf``), the receipt picture's font wherever the
  system has no DejaVu (every Windows till).
- ``serial.urlhandler``: pyserial imports ``protocol_<scheme>`` by name for ``loop://``,
  ``socket://``, ``rfc2217://``; ``serial.tools``: port listing.
- ``usb``: ``drivers/ports.py`` imports ``usb.core``/``usb.util`` by name; its backends are
  chosen at run time.
- ``uvicorn``: protocols and loops are imported by name (``"auto"``).
- ``apscheduler``: triggers, executors and job stores are entry points, found through the
  distribution's metadata (``APScheduler.dist-info/entry_points.txt``).
- ``psycopg``/``psycopg_binary``: the libpq wrapper is picked at run time.
- ``qrcode``: image factories are imported lazily.
- ``tzdata``: zoneinfo's fallback when the system has no time zone database (Windows, a
  minimal Linux).
"""

from __future__ import annotations

from pathlib import Path

# Source folders and the names they install as (pyproject's package-dir), and the sample
# files installed as ``tillgate.examples`` (pyproject's package-data).
PACKAGES = ("core", "agent", "drivers", "sync", "hq")
# Modules of the top level itself, installed as tillgate.<name> (pyproject's package
# "tillgate" is the top level): cli.py, the command, which build/entry.py runs.
TOP_MODULES = ("cli",)
EXAMPLES = (
    "config.example.toml",
    "program.example.toml",
    "cards.example.csv",
    "products.example.csv",
)
EXAMPLES_DEST = "tillgate/examples"
# The project's own data files, from the top of the tree (pyproject's package-data for the
# packages above): the hint panel page, which agent/api/panel.py reads with
# importlib.resources. Each goes where that looks in a bundle: its folder under tillgate/.
PACKAGE_DATA = ("agent/api/static/panel.html",)

# Packages whose every submodule goes in (imported by name somewhere).
SUBMODULES = (
    "uvicorn",
    "httptools",  # uvicorn imports its parser and loop by name when they are there
    "uvloop",
    "apscheduler",
    "serial.urlhandler",
    "serial.tools",
    "usb",
    "escpos",
    "qrcode",
    "psycopg",
)
# Single modules imported by name (``importlib.import_module("...")`` in tillgate).
# psycopg_binary by name too: importing it as a package first is refused, so PyInstaller
# cannot walk it.
MODULES = (
    "usb.core",
    "usb.util",
    "usb.backend.libusb1",
    "psycopg_binary.pq",
    "psycopg_binary._psycopg",
)
# Packages whose data files go in.
DATA = ("escpos", "barcode", "tzdata")
# Distributions whose metadata goes in (entry points).
METADATA = ("APScheduler",)
# Never in a till's bundle: test and build tools that happen to share the venv, and GUI
# toolkits that optional imports would otherwise drag in.
EXCLUDES = (
    "tkinter",
    "pytest",
    "_pytest",
    "hypothesis",
    "schemathesis",
    "playwright",
    "mypy",
    "ruff",
    "zxingcpp",
    "IPython",
    "matplotlib",
    "numpy",
    "PyInstaller",
)


def tillgate_modules(root: Path) -> list[str]:
    """Every tillgate module in the source tree under its installed name, sorted.

    All of them go in as hidden imports: verbs import their modules when they run, so the
    entry script alone does not lead PyInstaller to ``tillgate.hq.server`` or the demo.
    """
    names: set[str] = set()
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            parts = path.relative_to(root / package).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.add(".".join(("tillgate", package, *parts)))
            # A folder without __init__.py is a namespace package: name its parents too.
            for k in range(1, len(parts)):
                names.add(".".join(("tillgate", package, *parts[:k])))
    names.update(f"tillgate.{module}" for module in TOP_MODULES)
    return sorted(names)


def package_datas(root: Path) -> list[tuple[str, str]]:
    """PACKAGE_DATA as PyInstaller's ``(source file, destination folder)`` pairs.

    A file at ``agent/api/static/x`` goes to ``tillgate/agent/api/static``: where
    ``importlib.resources.files("tillgate.agent.api")`` finds it in the bundle.
    """
    return [(str(root / name), f"tillgate/{Path(name).parent.as_posix()}") for name in PACKAGE_DATA]
