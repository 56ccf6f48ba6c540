"""Files: what the till and head office keep on disk is their user's alone (issue 13).

Observed before: ``hq.sqlite3`` (holding the coupon key) and the till's
``tillgate.sqlite3`` (every holder's name, phone and birthday) were 0644, so any local user
read them. Now every database with its ``-wal``/``-shm``, key, token, credential and spool
file is 0600 in 0700 folders, an older install is mended at start, and ``tillgate doctor``
names what is still too open. Real ``tillgate run`` and ``tillgate hq serve`` processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import copy_examples, free_port, spawn_agent
from tests.sync.procs import Hq
from tillgate.agent.store.db import Database
from tillgate.core.files import fix_modes, private_file, too_open, write_secret

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")

# A shop's own sale: a card, a line, confirmed (the data file and its journal then exist).
SALE = {
    "receipt_id": "R-1",
    "card": "2900000000011",
    "lines": [{"sku": "A", "name": "a", "qty": 1, "price": "100.00"}],
}


def modes(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """Every file and folder under ``root`` (itself included) → its permission bits."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        if path.name in skip or path.is_symlink():
            continue
        found[path.relative_to(root).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(found: dict[str, int], root: Path) -> None:
    loose = {
        name: f"{mode:04o}" for name, mode in found.items() if mode & 0o077 or mode & 0o600 != 0o600
    }
    assert loose == {}, f"readable by others under {root}"
    for name in found:
        path = root / name
        assert found[name] == (0o700 if path.is_dir() else 0o600), name


def standalone(tmp_path: Path) -> Path:
    config = copy_examples(tmp_path)
    return config


def run_till(tmp_path: Path, config: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = tmp_path / "agent.stderr"
    with log.open("ab") as err:
        proc = spawn_agent(config, port=port, cwd=tmp_path, stderr=err)
    return proc, f"http://127.0.0.1:{port}", log


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def sell(url: str) -> None:
    r = httpx.post(f"{url}/v1/receipts/calculate", json=SALE, timeout=10)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{url}/v1/receipts/R-1/confirm", timeout=10)
    assert r.status_code == 200, r.text


def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var" / "tillgate"


# ---------------------------------------------------------------- the till


def test_a_running_till_keeps_everything_private(tmp_path: Path) -> None:
    config = standalone(tmp_path)
    proc, url, _ = run_till(tmp_path, config)
    try:
        sell(url)
        data = data_dir(tmp_path)
        found = modes(data)
        # The database with its journal, and the coupon key in its own file.
        assert {"tillgate.sqlite3", "tillgate.sqlite3-wal", "tillgate.sqlite3-shm"} <= set(found)
        assert "keys/coupon-1.key" in found
        assert_private(found, data)
    finally:
        stop(proc)


def test_an_install_with_open_files_is_closed_at_start_with_one_line(tmp_path: Path) -> None:
    config = standalone(tmp_path)
    proc, url, _ = run_till(tmp_path, config)
    sell(url)
    stop(proc)
    data = data_dir(tmp_path)
    # As an install from before this rule left them (the umask's 0644 and 0755).
    for path in [data, *data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert too_open([data])

    proc, url, log = run_till(tmp_path, config)
    try:
        assert_private(modes(data), data)
        lines = [ln for ln in log.read_text().splitlines() if "closed" in ln]
        assert len(lines) == 1, lines
        assert "tillgate.sqlite3 0644→0600" in lines[0] and f"{data} 0755→0700" in lines[0]
    finally:
        stop(proc)


def test_doctor_reports_a_file_others_can_read_with_the_fix(tmp_path: Path) -> None:
    config = standalone(tmp_path)
    proc, url, _ = run_till(tmp_path, config)
    sell(url)
    stop(proc)
    db = data_dir(tmp_path) / "tillgate.sqlite3"

    def doctor() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tillgate.cli", "doctor", "--config", str(config)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    good = doctor()
    line = next(ln for ln in good.stdout.splitlines() if "file modes" in ln)
    assert "FAIL" not in line, good.stdout

    db.chmod(0o644)
    bad = doctor()
    assert bad.returncode == 1, bad.stdout + bad.stderr
    line = next(ln for ln in bad.stdout.splitlines() if "file modes" in ln)
    assert "FAIL" in line and str(db) in line and f"chmod 600 {db}" in bad.stdout, bad.stdout
    assert stat.S_IMODE(db.stat().st_mode) == 0o644  # doctor changes nothing


# ---------------------------------------------------------------- head office


def test_head_office_keeps_its_database_token_and_keys_private(tmp_path: Path) -> None:
    hq = Hq(tmp_path / "hq").start()
    try:
        hq.import_cards("number,holder\n2900000000011,Анна\n")  # something in the WAL
        root = hq.root
        ours = [
            "hq.sqlite3",
            "hq.sqlite3-wal",
            "hq.sqlite3-shm",
            "hq-admin.token",
            "keys",
            "keys/coupon-1.key",
        ]
        found = modes(root, skip=("hq.log",))  # the test's own log of the process
        assert set(ours) <= set(found), sorted(found)
        assert_private({k: v for k, v in found.items() if k != "."}, root)
    finally:
        hq.stop()


def test_head_office_closes_an_older_install_at_start(tmp_path: Path) -> None:
    hq = Hq(tmp_path / "hq").start()
    hq.stop()
    root = hq.root
    for name in ("hq.sqlite3", "hq-admin.token", "keys/coupon-1.key"):
        (root / name).chmod(0o644)
    (root / "keys").chmod(0o755)
    hq.start()
    try:
        found = modes(root, skip=("hq.log",))
        assert_private({k: v for k, v in found.items() if k != "."}, root)
        text = (root / "hq.log").read_text()
        assert "hq.sqlite3 0644→0600" in text and "keys 0755→0700" in text
    finally:
        hq.stop()


# ---------------------------------------------------------------- another user


def _as_nobody(path: Path) -> subprocess.CompletedProcess[bytes] | None:
    """``cat FILE`` as the ``nobody`` user (None when this machine cannot switch users)."""
    if os.geteuid() != 0:
        return None
    for tool in (["runuser", "-u", "nobody", "--"], ["setpriv", "--reuid=nobody",
                 "--regid=nogroup", "--clear-groups", "--"]):  # fmt: skip
        if shutil.which(tool[0]):
            return subprocess.run([*tool, "cat", str(path)], capture_output=True, timeout=30)
    return None


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user can reach (pytest's own tmp folders are 0700): only the files'
    own modes can then keep another user out."""
    folder = Path(tempfile.mkdtemp(prefix="tillgate-security-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_another_local_user_can_read_none_of_it(open_folder: Path) -> None:
    hq = Hq(open_folder / "hq").start()
    try:
        hq.import_cards("number,holder,phone\n2900000000011,Анна Иванова,+79161234567\n")
        secret = [
            hq.root / "hq.sqlite3",
            hq.root / "hq-admin.token",
            hq.root / "keys" / "coupon-1.key",
        ]
        for path in secret:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, f"{path}: {mode:04o}"
        if os.geteuid() != 0:
            pytest.skip("not root: cannot switch to the nobody user to try reading (modes checked)")
        (hq.root / "public.txt").write_text("anyone may read this\n")
        (hq.root / "public.txt").chmod(0o644)
        hq.root.chmod(0o755)  # even with the folder open, the files stay closed
        control = _as_nobody(hq.root / "public.txt")
        if control is None:
            pytest.skip("neither runuser nor setpriv is installed (modes checked)")
        assert control.returncode == 0, control.stderr  # the method works
        for path in secret:
            tried = _as_nobody(path)
            assert tried is not None and tried.returncode != 0, path
            assert b"Permission denied" in tried.stderr and tried.stdout == b""
    finally:
        hq.stop()


# ---------------------------------------------------------------- the helpers themselves


def test_sqlite_journal_files_get_the_database_mode_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a typical login umask: files 0644, folders 0755
    try:
        db = Database(tmp_path / "data" / "tillgate.sqlite3")
        with db.write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
        names = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "data").iterdir()}
        db.close()
    finally:
        os.umask(old)
    assert names["tillgate.sqlite3-wal"] == names["tillgate.sqlite3-shm"] == 0o600, names
    assert names["tillgate.sqlite3"] == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700


def test_hq_sqlite_open_makes_a_private_file(tmp_path: Path) -> None:
    from tillgate.hq.db import open_database

    old = os.umask(0o022)
    try:
        db = open_database(None, data_dir=tmp_path / "hq")
        with db.write() as tx:
            tx.execute("CREATE TABLE t (x TEXT)")
        db.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "hq" / "hq.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "hq").stat().st_mode) == 0o700


def test_write_secret_is_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "k.key"
    write_secret(path, b"one")
    write_secret(path, b"two")
    assert path.read_bytes() == b"two" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["k.key"]  # no temporary left


def test_fix_modes_leaves_symlinks_and_devices_alone(tmp_path: Path) -> None:
    target = tmp_path / "outside.txt"
    target.write_text("x")
    target.chmod(0o660)  # as a pty: port's device keeps its group access
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "port").symlink_to(target)
    private_file(data / "f")
    (data / "f").chmod(0o640)
    fixed, failed = fix_modes([data])
    assert failed == [] and sorted(fixed) == sorted(
        [f"{data} 0755→0700", f"{data / 'f'} 0640→0600"]
    )
    assert stat.S_IMODE(target.stat().st_mode) == 0o660
    assert too_open([data]) == []


def test_a_sqlite_file_made_by_the_old_code_is_narrowed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "tillgate.sqlite3"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    Database(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
