"""Packaging: what `pip install .` ships is what the repository holds."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tillgate.core.config import load_config
from tillgate.core.rules.program import load_program_file

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


TOP = ("core", "agent", "drivers", "sync", "hq")


def test_every_package_is_listed() -> None:
    # setuptools installs only the packages named in `packages`; a subpackage missing there
    # works in an editable install and breaks on a real till.
    tool = pyproject()["tool"]["setuptools"]
    # tillgate: the top level itself, for cli.py; tillgate.examples: the top level itself,
    # for the sample files only.
    assert tool["package-dir"] == {f"tillgate.{top}": top for top in TOP} | {
        "tillgate": ".",
        "tillgate.examples": ".",
    }
    listed = set(tool["packages"]) - {"tillgate", "tillgate.examples"}
    found = {
        ".".join((f"tillgate.{top}", *init.parent.relative_to(ROOT / top).parts))
        for top in TOP
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found <= listed, f"add to pyproject [tool.setuptools] packages: {sorted(found - listed)}"
    assert listed <= found, f"listed but missing: {sorted(listed - found)}"


def test_the_sample_files_ship_as_package_data() -> None:
    # `tillgate demo` runs wherever tillgate is installed: it needs them beside the code.
    from tillgate.agent.examples import NAMES, example_file

    data = pyproject()["tool"]["setuptools"]["package-data"]["tillgate.examples"]
    assert sorted(data) == sorted(NAMES)
    for name in NAMES:
        assert example_file(name).read_bytes() == (ROOT / name).read_bytes()


def test_console_script_points_at_a_function() -> None:
    import importlib

    target = pyproject()["project"]["scripts"]["tillgate"]
    assert target == "tillgate.cli:entry"
    module, _, name = target.partition(":")
    assert callable(getattr(importlib.import_module(module), name))


def test_the_command_is_the_top_level_cli_py() -> None:
    # The package "tillgate" is the top level (package-dir "."), listed so that both a wheel
    # and an editable install find tillgate.cli in ./cli.py. Every .py file at the top level
    # would ship as a tillgate.* module, so cli.py must stay the only one; and the package is
    # a namespace package, as the subpackages' parent is in every install.
    import tillgate.cli

    tool = pyproject()["tool"]["setuptools"]
    assert tool["package-dir"]["tillgate"] == "."
    assert "tillgate" in tool["packages"]
    assert "py-modules" not in tool  # "tillgate" listed as a package already ships cli.py
    assert sorted(p.name for p in ROOT.glob("*.py")) == ["cli.py"]
    assert not (ROOT / "__init__.py").exists()
    assert Path(tillgate.cli.__file__).read_bytes() == (ROOT / "cli.py").read_bytes()


def test_example_program_validates() -> None:
    loaded = load_program_file(ROOT / "program.example.toml")
    assert loaded.program.name == "Ромашка Бонус"
    kinds = {p.reward.kind for p in loaded.promotions}
    assert kinds == {
        "percent",
        "amount",
        "price",
        "free_item",
        "points",
        "points_percent",
        "multiplier",
        "coupon",
        "stamp",
        "message",
    }
    assert {p.stacking for p in loaded.promotions} == {"stackable", "exclusive", "best"}


def test_example_config_validates() -> None:
    config = load_config(ROOT / "config.example.toml")
    assert config.standalone.program_file == ROOT / "program.example.toml"
