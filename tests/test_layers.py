"""The layering contract (``.importlinter``), checked as CI checks it: ``bash .ci/layers``.

The real tree must keep it; and fixture trees that break it one way each must fail it, naming
the broken contract and the import, so a contract that silently checks nothing (a typo in a
module name, imports inside functions or under ``TYPE_CHECKING`` going uncounted, a shim that
hides the tree) does not pass as green.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ROOT / ".ci" / "layers"
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(BASH is None, reason=".ci/layers is a bash script")

LAYERED = "layers: cli > assembly > edges > use cases > store > core"
DRIVERS = "drivers import only the kernel"
HQ = "head office imports only the kernel"
CORE = "the kernel imports nothing else of the project"
CLI = "nothing imports the command"


def run_layers(root: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``bash .ci/layers [root]`` with this interpreter, which has import-linter."""
    return subprocess.run(
        [BASH or "bash", str(LAYERS), *([str(root)] if root is not None else [])],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHON": sys.executable},
        timeout=60,
    )


def verdicts(output: str) -> dict[str, str]:
    """Each contract's name → KEPT or BROKEN, from lint-imports' summary."""
    return {m[1]: m[2] for m in re.finditer(r"^(.+) (KEPT|BROKEN)$", output, re.MULTILINE)}


def contract_modules() -> set[str]:
    """Every module the contract names (layers, sources, forbidden)."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter", encoding="utf-8")
    names: set[str] = set()
    for section in config.sections():
        if section.startswith("importlinter:contract:"):
            for key in ("layers", "source_modules", "forbidden_modules"):
                for line in config[section].get(key, "").splitlines():
                    names.update(n.strip() for n in re.split(r"[:|]", line) if n.strip())
    return names


def write_module(root: Path, name: str, text: str = "") -> Path:
    """The module ``name`` (``tillgate.x.y``) in a source tree laid out like this one.

    Packages are folders with ``__init__.py`` (made as needed); ``tillgate.cli`` is
    ``cli.py`` at the top, as .ci/layers expects.
    """
    top, *rest = name.removeprefix("tillgate.").split(".")
    if not rest and top == "cli":
        path = root / "cli.py"
    else:
        folder = root / top
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").touch()
        for part in rest[:-1]:
            folder = folder / part
            folder.mkdir(exist_ok=True)
            (folder / "__init__.py").touch()
        path = folder / f"{rest[-1]}.py" if rest else folder / "__init__.py"
    if text or not path.exists():
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A tree that keeps the contract: every module it names, empty, and nothing else.

    .ci/layers checks it against this checkout's .importlinter (the tree has none).
    """
    names = contract_modules()
    assert {"tillgate.cli", "tillgate.core", "tillgate.agent.store"} <= names
    for name in sorted(names):
        # A package each, so that fixture modules can go inside; tillgate.cli is a file.
        if name == "tillgate.cli":
            write_module(tmp_path, name)
        else:
            write_module(tmp_path, f"{name}.__init__")
    write_module(tmp_path, "tillgate.agent.store.db")
    return tmp_path


def test_the_tree_keeps_the_contract() -> None:
    result = run_layers()
    assert result.returncode == 0, (
        "the layering contract (.importlinter) is broken; the imports that break it:\n"
        + result.stdout
        + result.stderr
    )
    assert set(verdicts(result.stdout).values()) == {"KEPT"}
    assert set(verdicts(result.stdout)) == {LAYERED, DRIVERS, HQ, CORE, CLI}


def test_ci_checks_the_contract() -> None:
    steps = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'bash .ci/typecheck\necho "== layering contract"\nbash .ci/layers\n' in steps
    done = subprocess.run([BASH or "bash", "-n", str(LAYERS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_fixture_tree_keeps_the_contract(tree: Path) -> None:
    # The control for the cases below: what breaks them is their one wrong import.
    result = run_layers(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdicts(result.stdout) == dict.fromkeys((LAYERED, DRIVERS, HQ, CORE, CLI), "KEPT")


FUNCTION_LEVEL = """\
from __future__ import annotations


def f() -> None:
    from tillgate.agent import daemon
"""
TYPE_CHECKING_ONLY = """\
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tillgate.sync import engine
"""


@pytest.mark.parametrize(
    ("modules", "broken", "shown"),
    [
        pytest.param(
            {"tillgate.core._wrong": "from tillgate.agent.store import db\n"},
            {CORE, LAYERED},
            "tillgate.core._wrong -> tillgate.agent.store.db (l.1)",
            id="core-imports-the-store",
        ),
        pytest.param(
            {"tillgate.drivers._wrong": FUNCTION_LEVEL},
            {DRIVERS},
            "tillgate.drivers._wrong -> tillgate.agent.daemon (l.5)",
            id="drivers-import-the-daemon-inside-a-function",
        ),
        pytest.param(
            {"tillgate.sync.engine": "", "tillgate.hq._wrong": TYPE_CHECKING_ONLY},
            {HQ},
            "tillgate.hq._wrong -> tillgate.sync.engine (l.6)",
            id="hq-imports-sync-for-type-checking",
        ),
        pytest.param(
            {"tillgate.agent.store._wrong": "def f():\n    import tillgate.agent.usecases\n"},
            {LAYERED},
            "tillgate.agent.store._wrong -> tillgate.agent.usecases (l.2)",
            id="store-imports-a-use-case",
        ),
        pytest.param(
            {"tillgate.sync._wrong": "from tillgate.cli import main\n"},
            {CLI, LAYERED},
            "tillgate.sync._wrong -> tillgate.cli (l.1)",
            id="sync-imports-the-command",
        ),
        pytest.param(
            # A chain through a module that is in no layer breaks it as a direct import does.
            {
                "tillgate.agent._hop": "from tillgate.agent.api import app\n",
                "tillgate.agent.api.app": "",
                "tillgate.agent.usecases._wrong": "from tillgate.agent import _hop\n",
            },
            {LAYERED},
            "tillgate.agent._hop -> tillgate.agent.api.app (l.1)",
            id="use-case-reaches-the-api-through-another-module",
        ),
    ],
)
def test_a_wrong_import_breaks_its_contract(
    tree: Path, modules: dict[str, str], broken: set[str], shown: str
) -> None:
    for name, text in modules.items():
        write_module(tree, name, text)
    result = run_layers(tree)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    found = verdicts(result.stdout)
    assert {name for name, verdict in found.items() if verdict == "BROKEN"} == broken, output
    assert len(found) == 5, output
    assert shown in output
