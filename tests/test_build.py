"""The frozen build's recipe (build/), checked without building: CI builds in ``.ci/run``.

What can go wrong without anyone noticing until a till runs the bundle: a verb's module
left out (verbs import their modules when they run), a module imported by name, the build
writing into the source tree, the service files drifting from the install guide.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import importlib.util
import inspect
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tillgate.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
BASH = shutil.which("bash")
needs_bash = pytest.mark.skipif(BASH is None, reason="bash is not installed")


def _bundle() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tillgate_build_bundle", BUILD / "bundle.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    before, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in build/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = before
    return module


bundle = _bundle()
COLLECTED = set(bundle.tillgate_modules(ROOT))


def _module_of(path: Path) -> str:
    top, *rest = path.relative_to(ROOT).with_suffix("").parts
    if rest and rest[-1] == "__init__":
        rest = rest[:-1]
    return ".".join(("tillgate", top, *rest))


def _sources() -> Iterator[Path]:
    for top in bundle.PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "__pycache__" not in path.parts:
                yield path
    for module in bundle.TOP_MODULES:
        yield ROOT / f"{module}.py"


def _imports(tree: ast.AST, module: str, *, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, module) for every tillgate module a piece of code imports, at any depth."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tillgate."):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            elif node.module and node.module.startswith("tillgate."):
                name = node.module
            else:
                continue
            yield node.lineno, name
            # `from . import credential`: the names may be modules themselves.
            for alias in node.names:
                if f"{name}.{alias.name}" in COLLECTED:
                    yield node.lineno, f"{name}.{alias.name}"


# ---------------------------------------------------------------- what goes in


def test_packages_and_examples_match_pyproject() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    mapped = {
        name.removeprefix("tillgate.")
        for name in tool["setuptools"]["package-dir"]
        if name not in {"tillgate", "tillgate.examples"}
    }
    assert set(bundle.PACKAGES) == mapped
    # The package "tillgate" is the top level: its modules are the top level's .py files.
    assert tool["setuptools"]["package-dir"]["tillgate"] == "."
    assert set(bundle.TOP_MODULES) == {p.stem for p in ROOT.glob("*.py")} == {"cli"}
    data = tool["setuptools"].get("package-data", {}).get("tillgate.examples")
    if data is not None:
        assert set(bundle.EXAMPLES) == set(data)
    for name in bundle.EXAMPLES:
        assert (ROOT / name).is_file(), name
    # agent/examples.py looks for them as the package tillgate.examples.
    assert bundle.EXAMPLES_DEST == "tillgate/examples"


def test_the_project_data_files_ship_and_go_in() -> None:
    # Every file beside the code that is not Python is data the code reads (the hint panel
    # page): pyproject's package-data must ship it in a wheel, and build/bundle.py must put
    # it in the bundle where importlib.resources looks (its folder under tillgate/). A file
    # missing from either works in a source checkout and breaks on a till.
    found = {
        path.relative_to(ROOT).as_posix()
        for top in bundle.PACKAGES
        for path in (ROOT / top).rglob("*")
        if path.is_file()
        and path.suffix not in {".py", ".pyc"}
        and "__pycache__" not in path.parts
        and not path.name.startswith(".")
    }
    assert "agent/api/static/panel.html" in found
    assert set(bundle.PACKAGE_DATA) == found, "list them in build/bundle.py PACKAGE_DATA"

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    package_dir = tool["setuptools"]["package-dir"]
    shipped = set()
    for package, patterns in tool["setuptools"]["package-data"].items():
        # The package's folder: its nearest mapped parent's, then the rest of its name.
        parts = package.split(".")
        k = max(k for k in range(1, len(parts) + 1) if ".".join(parts[:k]) in package_dir)
        folder = ROOT / package_dir[".".join(parts[:k])] / Path(*parts[k:])
        for pattern in patterns:
            shipped |= {p.relative_to(ROOT).as_posix() for p in folder.glob(pattern)}
    # The top level's sample files are EXAMPLES, checked above.
    shipped = {name for name in shipped if name.split("/")[0] in bundle.PACKAGES}
    assert shipped == found, "list them in pyproject [tool.setuptools.package-data]"

    datas = bundle.package_datas(ROOT)
    assert (str(ROOT / "agent/api/static/panel.html"), "tillgate/agent/api/static") in datas
    for source, dest in datas:
        assert Path(source).is_file(), source
        assert dest == f"tillgate/{Path(source).parent.relative_to(ROOT).as_posix()}"


def test_every_module_goes_in() -> None:
    assert {_module_of(p) for p in _sources()} <= COLLECTED
    assert "tillgate.cli" in COLLECTED
    assert "tillgate.agent.verbs" in COLLECTED
    assert "tillgate.hq.server" in COLLECTED


def test_every_imported_tillgate_module_exists_and_goes_in() -> None:
    # Imports inside functions too: a verb's module is imported only when the verb runs, so
    # a missing one passes every test that does not run that verb, and breaks the bundle.
    missing = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = _module_of(path)
        for line, name in _imports(tree, module, is_package=path.name == "__init__.py"):
            if name not in COLLECTED:
                missing.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert not missing, "imported but not in the source tree (nor the bundle): " + ", ".join(
        missing
    )


def _verbs(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, Callable[..., int]]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _verbs(sub, (*prefix, name))
    handler = parser.get_default("handler")
    if handler is not None:
        yield " ".join(prefix), handler


def test_every_verb_module_goes_in() -> None:
    verbs = dict(_verbs(build_parser()))
    assert {"run", "decode", "check-program", "hq serve"} <= set(verbs)
    for verb, handler in verbs.items():
        module = handler.__module__
        assert module in COLLECTED, f"{verb}: {module}"
        source = textwrap.dedent(inspect.getsource(handler))
        is_package = Path(inspect.getfile(handler)).name == "__init__.py"
        for _, name in _imports(ast.parse(source), module, is_package=is_package):
            assert name in COLLECTED, f"tillgate {verb}: imports {name}, not in the bundle"


def test_modules_imported_by_name_go_in() -> None:
    # PyInstaller follows `import x` anywhere, but not importlib.import_module("x").
    named = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute | ast.Name)
                and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
                == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                named.append(str(node.args[0].value))
    assert named, "expected drivers/ports.py's usb.core import"
    for name in named:
        covered = name in bundle.MODULES or any(
            name == p or name.startswith(p + ".") for p in bundle.SUBMODULES
        )
        assert covered, f"{name} is imported by name: add it to build/bundle.py MODULES"


def test_the_spec_uses_every_list() -> None:
    spec = (BUILD / "tillgate.spec").read_text(encoding="utf-8")
    tree = ast.parse(spec)  # a spec is Python
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    lists = {
        "PACKAGES",
        "TOP_MODULES",
        "EXAMPLES",
        "EXAMPLES_DEST",
        "SUBMODULES",
        "MODULES",
        "DATA",
    }
    assert lists | {"METADATA", "EXCLUDES", "tillgate_modules", "package_datas"} <= used
    # The parts the issue names, and the python-escpos capability data above all.
    assert "escpos" in bundle.DATA and "barcode" in bundle.DATA
    assert {"uvicorn", "apscheduler", "serial.urlhandler", "usb", "psycopg"} <= set(
        bundle.SUBMODULES
    )
    assert "APScheduler" in bundle.METADATA
    # Test tools never ride along.
    assert {"pytest", "hypothesis", "playwright"} <= set(bundle.EXCLUDES)


def test_build_extra_has_pyinstaller() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    build = project["optional-dependencies"]["build"]
    assert any(req.replace(" ", "").startswith("pyinstaller>=6.6") for req in build)


# ---------------------------------------------------------------- the scripts


@needs_bash
@pytest.mark.parametrize("script", ["build/build.sh", "build/smoke.sh", ".ci/run"])
def test_shell_scripts_parse(script: str) -> None:
    done = subprocess.run([BASH or "bash", "-n", str(ROOT / script)], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def _build(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH or "bash", str(BUILD / "build.sh"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


@needs_bash
@pytest.mark.parametrize("inside", ["dist", ".", "build", "build/work", "agent/../x"])
def test_build_refuses_an_output_dir_inside_the_tree(inside: str) -> None:
    target = ROOT / inside
    existed = target.exists()
    done = _build("--out", str(target))
    assert done.returncode == 2
    assert "inside the source tree" in done.stderr
    assert done.stdout == ""
    assert target.exists() == existed  # refused before anything was made


@needs_bash
def test_build_refuses_a_symlink_into_the_tree(tmp_path: Path) -> None:
    link = tmp_path / "looks-outside"
    link.symlink_to(ROOT)
    done = _build("--out", str(link / "out"))
    assert done.returncode == 2
    assert "inside the source tree" in done.stderr


@needs_bash
def test_build_refuses_the_tree_from_the_environment() -> None:
    done = _build(env={"TILLGATE_BUILD_DIR": str(ROOT / "dist")})
    assert done.returncode == 2
    assert "inside the source tree" in done.stderr


@needs_bash
def test_build_usage() -> None:
    done = _build("--help")
    assert done.returncode == 0
    assert "--onefile" in done.stderr and "--out DIR" in done.stderr
    done = _build("--bogus")
    assert done.returncode == 2
    assert "unknown option '--bogus'" in done.stderr


def test_nothing_built_is_committed_under_build() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(
        ["git", "ls-files", "build"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    # setuptools' build/lib and build/bdist.* (from `pip install .`) and PyInstaller's output
    # look like source files; only these folders and kinds of file are the build's source.
    folders = {"build", "build/linux", "build/windows"}
    suffixes = {".spec", ".sh", ".ps1", ".py", ".service", ".xml", ".md"}
    stray = [
        f
        for f in done.stdout.split()
        if str(Path(f).parent) not in folders or Path(f).suffix not in suffixes
    ]
    assert not stray, f"build output committed under build/: {stray}"


# ---------------------------------------------------------------- service files


def test_systemd_unit() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((BUILD / "linux" / "tillgate.service").read_text(encoding="utf-8"))
    service = unit["Service"]
    assert service["Type"] == "simple"
    assert service["ExecStart"] == "/opt/tillgate/tillgate run --config /etc/tillgate/config.toml"
    assert service["User"] == "tillgate"
    assert "dialout" in service["SupplementaryGroups"].split()
    assert service["RuntimeDirectory"] == "tillgate"  # pty:/run/tillgate/pos-printer
    assert service["StateDirectory"] == "tillgate"  # /var/lib/tillgate
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert "TimeoutStopSec" in service
    # Options that would cut the agent off its serial, pty and USB devices.
    for key in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock"):
        assert key not in service, f"{key} closes /dev to the agent"
    assert "AF_NETLINK" in service.get("RestrictAddressFamilies", "AF_NETLINK")


def test_winsw_config() -> None:
    root = ET.parse(BUILD / "windows" / "tillgate-service.xml").getroot()
    assert root.tag == "service"
    assert root.findtext("id") == "tillgate"
    assert root.findtext("executable") == r"C:\Program Files\tillgate\tillgate.exe"
    assert root.findtext("arguments") == r'run --config "C:\ProgramData\tillgate\config.toml"'
    onfailure = root.find("onfailure")
    assert onfailure is not None and onfailure.get("action") == "restart"
    assert root.findtext("stoptimeout")


def test_install_guide_names_the_service_files() -> None:
    guide = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
    for name in ("build/linux/tillgate.service", "build/windows/tillgate-service.xml"):
        assert name in guide
    assert "/etc/tillgate/config.toml" in guide and "/var/lib/tillgate" in guide
