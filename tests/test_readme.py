"""The README's first screen: two commands, the demo and the tests; CI runs the latter."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_screen = text[: text.index("\n## ")]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", first_screen, re.S)]


def test_the_first_screen_has_the_demo_and_the_tests_commands() -> None:
    demo, tests = commands()
    assert demo.endswith(".venv/bin/tillgate demo")
    assert demo.startswith("python3.11 -m venv .venv && .venv/bin/pip install .")
    assert tests.endswith(".venv/bin/python -m pytest -q")


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install, _, run = tests.partition(" && .venv/bin/python")
    assert "pip install --quiet -e '.[test]'" in ci and "'.[test]'" in install
    assert ".venv/bin/python" + run in ci


def test_every_picture_the_readme_shows_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert pictures
    for picture in pictures:
        assert (ROOT / picture).is_file(), picture
