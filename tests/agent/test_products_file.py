"""A standalone shop's ``[standalone] products_file``: loaded at start, reloaded on change,
a bad file kept out (and said so) with the list in force untouched."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.test_daemon import write_config
from tests.conftest import free_port, spawn_agent
from tillgate.agent.daemon import FileWatcher, build_service
from tillgate.agent.store import products as store_products
from tillgate.core import errors
from tillgate.core.config import load_config

GOOD = "sku;name;category;barcodes;age_restricted\nA-1;Молоко 1 л;dairy;4600000000011;\n"
WINE = "A-2;Вино красное 0,75;alcohol;4600000000189;1\n"


def with_products(tmp: Path, text: str | None, name: str = "products.csv") -> Path:
    config = write_config(tmp)
    if text is not None:
        (tmp / name).write_text(text, encoding="utf-8")
    with config.open("a", encoding="utf-8") as f:
        f.write(f'products_file = "{name}"\n')
    return config


def touch(path: Path, text: str, *, ahead: float) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, (time.time() + ahead, time.time() + ahead))


def in_force(service: Any) -> tuple[str | None, int, set[str]]:
    with service.db.read() as conn:
        return (
            store_products.SqliteProducts(conn).version,
            store_products.count(conn),
            store_products.categories(conn),
        )


def watcher_of(config: Path) -> tuple[FileWatcher, Any]:
    cfg = load_config(config)
    service = build_service(cfg)
    assert cfg.standalone.program_file is not None
    watcher = FileWatcher(
        service=service,
        program_file=cfg.standalone.program_file,
        cards_file=cfg.standalone.cards_file,
        products_file=cfg.standalone.products_file,
    )
    watcher.load_program(strict=True)
    return watcher, service


def test_the_path_is_resolved_beside_the_config_and_empty_is_none(tmp_path: Path) -> None:
    cfg = load_config(with_products(tmp_path, GOOD))
    assert cfg.standalone.products_file == tmp_path / "products.csv"
    assert load_config(write_config(tmp_path)).standalone.products_file is None


def test_loaded_at_start_reloaded_on_change_and_a_bad_change_keeps_the_list(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watcher, service = watcher_of(with_products(tmp_path, GOOD))
    try:
        watcher.load_products(strict=True)
        first, n, cats = in_force(service)
        assert first is not None and first.startswith("file-") and (n, cats) == (1, {"dairy"})
        assert watcher.products_status() == {
            "file": str(tmp_path / "products.csv"),
            "file_error": None,
        }

        path = tmp_path / "products.csv"
        touch(path, GOOD + WINE, ahead=5)
        watcher.poll()
        second, n, cats = in_force(service)
        assert second != first and (n, cats) == (2, {"dairy", "alcohol"})
        with service.db.read() as conn:
            wine = store_products.SqliteProducts(conn).by_codes(["4600000000189"])
        assert wine["4600000000189"][0].age_restricted is True

        # Broken: a duplicate sku and an empty category. The list in force stays, whole.
        touch(path, GOOD + "A-1;Кефир;;;\n", ahead=10)
        with caplog.at_level(logging.ERROR):
            watcher.poll()
        assert in_force(service) == (second, 2, {"dairy", "alcohol"})
        problem = watcher.products_status()["file_error"]
        assert "row 3, category: empty (required)" in problem
        assert "keeping the list in force" in caplog.text

        # Mended: in force again, and no error shown.
        touch(path, GOOD, ahead=15)
        watcher.poll()
        assert in_force(service)[1:] == (1, {"dairy"})
        assert watcher.products_status()["file_error"] is None
    finally:
        service.db.close()


def test_the_same_file_again_changes_nothing_and_no_file_removes_a_file_list(
    tmp_path: Path,
) -> None:
    config = with_products(tmp_path, GOOD)
    watcher, service = watcher_of(config)
    try:
        watcher.load_products(strict=True)
        version = in_force(service)[0]
        assert service.install_products([], version=version) is False  # already in force
    finally:
        service.db.close()
    # The config no longer names a file: the list that file gave goes at the next start.
    config.write_text(
        config.read_text(encoding="utf-8").replace('products_file = "products.csv"\n', "")
    )
    watcher, service = watcher_of(config)
    try:
        watcher.load_products(strict=True)
        assert in_force(service) == (None, 0, set())
        assert watcher.products_status() == {"file": None, "file_error": None}
    finally:
        service.db.close()


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        (None, "file not found"),
        ("name,category\nМолоко,dairy\n", "missing required column(s) sku"),
        ("sku,name,category\nA-1,Молоко,dairy,extra\n", "row 2: 4 fields, the header has 3"),
    ],
)
def test_a_bad_file_at_start_refuses_the_start_with_each_problem(
    tmp_path: Path, text: str | None, expect: str
) -> None:
    watcher, service = watcher_of(with_products(tmp_path, text))
    try:
        with pytest.raises(errors.ProductsError) as caught:
            watcher.load_products(strict=True)
        assert expect in str(caught.value)
        assert in_force(service) == (None, 0, set())
    finally:
        service.db.close()


def test_tillgate_run_refuses_a_bad_file_with_exit_2_and_the_row(tmp_path: Path) -> None:
    config = with_products(tmp_path, "sku,name,category\nA-1,Молоко,\n")
    done = subprocess.run(
        [sys.executable, "-m", "tillgate.cli", "run", "--config", str(config), "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "products.csv: row 2, category: empty (required)" in done.stderr
    assert "Traceback" not in done.stderr


def test_status_says_the_file_is_not_in_force_while_it_is_bad(tmp_path: Path) -> None:
    config = with_products(tmp_path, GOOD)
    port = free_port()
    log = (tmp_path / "agent.log").open("w")
    proc = spawn_agent(config, port=port, cwd=tmp_path, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}/v1/status"
        products = httpx.get(url, timeout=5).json()["products"]
        assert products["file"] == str(tmp_path / "products.csv") and products["file_error"] is None
        version = products["version"]
        assert version.startswith("file-") and products["count"] == 1

        touch(tmp_path / "products.csv", "sku,name,category\nA-1,Молоко,dairy,x\n", ahead=5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            products = httpx.get(url, timeout=5).json()["products"]
            if products["file_error"]:
                break
            time.sleep(0.2)
        assert "row 2: 4 fields" in products["file_error"]
        assert products["version"] == version and products["count"] == 1  # still in force
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_doctor_checks_the_products_file(tmp_path: Path) -> None:
    from tillgate.agent.doctor import Level, run_checks

    config = with_products(tmp_path, GOOD + WINE)
    check = next(c for c in run_checks(config) if c.name == "products file")
    assert check.level is Level.OK and "2 products, 2 categories" in check.detail
    (tmp_path / "products.csv").write_text("sku,name,category\nA-1,,dairy\n", encoding="utf-8")
    check = next(c for c in run_checks(config) if c.name == "products file")
    assert check.level is Level.FAIL and "row 2, name: empty (required)" in check.detail
    assert "products_file" in check.fix
