"""The documentation names only files a user of the repository has.

The product's contracts were written outside the repository (``spec/…``); the docs must
point at the repository's own pages (or carry the text themselves), and every relative
link must lead to a file that exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Files of the contracts that live outside the repository.
OUTSIDE = re.compile(
    r"(?<![\w./-])spec/\w|\.\./shared|(?<![\w/-])(domain|pos-api|cli-and-config)\.md\b"
)
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_names_a_contract_file_outside_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    found = [
        f"{page.name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
        for m in OUTSIDE.finditer(text)
    ]
    assert not found, found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = [
        target
        for target in LINK.findall(text)
        if "://" not in target
        and not target.startswith(("mailto:", "/"))
        and not (page.parent / target).exists()
    ]
    assert not missing, f"{page.name} links to files that do not exist: {missing}"


def test_the_check_finds_what_it_looks_for() -> None:
    for text in ("see `spec/domain.md`", "(`../shared/spec/pos-api.md`)", "as domain.md says"):
        assert OUTSIDE.search(text), text
    for text in ("docs/pos-integration.md", "[promotions](docs/promotions.md)", "/v1/spec/x"):
        assert not OUTSIDE.search(text), text
