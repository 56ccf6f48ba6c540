"""Packaging: what `pip install .` ships is what the repository holds."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tillgate.core.config import load_config
from tillgate.core.rules.program import load_program_file

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


TOP = ("agent", "drivers", "sync", "hq")


def test_every_package_is_listed() -> None:
    # setuptools installs only the packages named in `packages`; a subpackage missing there
    # works in an editable install and breaks on a real till.
    tool = pyproject()["tool"]["setuptools"]
    # tillgate.examples: the top level itself, for the sample files only.
    assert tool["package-dir"] == {f"tillgate.{top}": top for top in TOP} | {
        "tillgate.examples": "."
    }
    listed = set(tool["packages"]) - {"tillgate.examples"}
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
    module, _, name = target.partition(":")
    assert callable(getattr(importlib.import_module(module), name))


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
