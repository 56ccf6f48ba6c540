"""The house rule: no module outside the tests is over 600 lines (``../shared/STYLE.md``).

A module is read in one sitting; one that grows past that is split along a seam, not chopped.
Checked here for every ``.py`` file of the packages, the benchmarks, the build scripts and the
top level of the tree.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 600
FOLDERS = ("core", "agent", "drivers", "sync", "hq", "bench", "build")


def _output(path: Path) -> bool:
    """Not source: bytecode, and the copies setuptools leaves in build/ on ``pip install``."""
    parts = path.relative_to(ROOT).parts
    in_build = parts[0] == "build" and len(parts) > 2
    return "__pycache__" in parts or (
        in_build and (parts[1] == "lib" or parts[1].startswith("bdist."))
    )


def _modules() -> list[Path]:
    found = sorted(ROOT.glob("*.py"))
    for folder in FOLDERS:
        found += sorted(p for p in (ROOT / folder).rglob("*.py") if not _output(p))
    return found


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_the_modules_are_found() -> None:
    # A wrong ROOT or a renamed folder would make the rule below pass on nothing.
    names = {p.relative_to(ROOT).as_posix() for p in _modules()}
    assert {"core/errors.py", "agent/api/panel.py", "build/bundle.py"} <= names
    assert all(not name.startswith("tests/") for name in names)


def test_no_module_is_over_600_lines() -> None:
    over = {
        path.relative_to(ROOT).as_posix(): n for path in _modules() if (n := _lines(path)) > LIMIT
    }
    assert not over, f"over {LIMIT} lines; split each along a seam: " + ", ".join(
        f"{name} ({n} lines)" for name, n in sorted(over.items())
    )
