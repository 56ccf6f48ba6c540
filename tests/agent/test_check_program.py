"""``tillgate check-program``: every error in one pass, by path and id; warnings do not fail.

Run as a user runs it: a fresh interpreter, real files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PRODUCTS = "sku,name,category\n1,Молоко 1 л,dairy\n2,Хлеб бородинский,bakery\n3,Сигареты,tobacco\n"
PROGRAM = """
[program]
name = "X"
no_discount_categories = ["tobacco"]

[[program.tiers]]
name = "silver"
min_spend = "0"

[[promotions]]
id = "dairy-10"
name = "Dairy"
priority = 100
when = { items = { categories = ["dary"] } }
reward = { kind = "percent", value = 10, on = "matching" }

[[promotions]]
id = "order-50"
name = "Order"
priority = 100
reward = { kind = "amount", value = "50.00" }
"""


def tillgate(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "TILLGATE_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "tillgate.cli", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        env={**environ, "PYTHONIOENCODING": "utf-8", **env},
        timeout=60,
    )


def test_every_error_at_once_named_by_id(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[program]\nname = "X"\n'
        '[[program.tiers]]\nname = "silver"\nmin_spend = "0"\n'
        '[[promotions]]\nid = "dairy-10"\nname = "D"\n'
        'reward = { kind = "percent", value = 0, on = "order" }\n'
        '[[promotions]]\nid = "gold-5"\nname = "G"\nwho = { tiers = ["gold"] }\n'
        'reward = { kind = "percent", value = 5, on = "order" }\n',
        encoding="utf-8",
    )
    r = tillgate("check-program", str(bad), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [
        f"tillgate: error: {bad}: promotions[0].reward.value: must be > 0 (promotion 'dairy-10')",
        f"tillgate: error: {bad}: promotions[1].who.tiers: unknown tier 'gold' "
        "(promotion 'gold-5')",
    ]


def test_warnings_are_printed_and_do_not_fail(tmp_path: Path) -> None:
    program = tmp_path / "p.toml"
    program.write_text(PROGRAM, encoding="utf-8")
    products = tmp_path / "products.csv"
    products.write_text(PRODUCTS, encoding="utf-8")
    r = tillgate("check-program", str(program), "--products", str(products), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{program}: ok: 'X', 2 promotions, 1 tiers"
    warnings = r.stderr.splitlines()
    assert len(warnings) == 2, warnings
    assert all(w.startswith(f"tillgate: warning: {program}: ") for w in warnings)
    assert (
        "promotions[0].when.items.categories: no product in the product list has " in (warnings[0])
    )
    assert "'dary' (promotion 'dairy-10')" in warnings[0]
    assert (
        "promotions[1].priority: 'order-50' has the same priority (100) as 'dairy-10'"
        in (warnings[1])
    )
    # without a product list, categories are not judged; the priorities still are
    r = tillgate("check-program", str(program), cwd=tmp_path)
    assert r.returncode == 0 and len(r.stderr.splitlines()) == 1


def test_the_standalone_configs_product_list(tmp_path: Path) -> None:
    program = tmp_path / "p.toml"
    program.write_text(PROGRAM, encoding="utf-8")
    (tmp_path / "products.csv").write_text(PRODUCTS, encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        '[till]\nid = "t"\nstore = "s"\n'
        '[standalone]\nprogram_file = "p.toml"\nproducts_file = "products.csv"\n',
        encoding="utf-8",
    )
    r = tillgate("check-program", str(program), "--config", str(config), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "'dary'" in r.stderr
    r = tillgate("check-program", str(program), cwd=tmp_path, TILLGATE_CONFIG=str(config))
    assert r.returncode == 0 and "'dary'" in r.stderr


def test_a_bad_product_list_is_an_error(tmp_path: Path) -> None:
    products = tmp_path / "products.csv"
    products.write_text("sku,name\n1,Молоко\n", encoding="utf-8")
    r = tillgate(
        "check-program",
        str(ROOT / "program.example.toml"),
        "--products",
        str(products),
        cwd=tmp_path,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith(f"tillgate: error: {products}: ")
    r = tillgate(
        "check-program", str(ROOT / "program.example.toml"), "--products", "nope.csv", cwd=tmp_path
    )
    assert r.returncode == 2 and "file not found" in r.stderr


def test_the_example_program_is_clean(tmp_path: Path) -> None:
    r = tillgate("check-program", str(ROOT / "program.example.toml"), cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == "", r.stderr
