"""``tillgate hq …`` as a user runs it: a real ``hq serve`` process and the admin verbs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, free_port, free_socket
from tests.hq.helpers import make_cert
from tillgate.cli import main
from tillgate.core.rules.coupons import CouponSigner

PROGRAM = ROOT / "program.example.toml"
CARDS = ROOT / "cards.example.csv"
ANNA = "2900000012345"  # in cards.example.csv, opening balance 1240


def tillgate(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``tillgate`` as a user would, in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "tillgate.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


class Verbs:
    """Admin verbs run as a real ``tillgate`` process, or in this process (same code, faster)."""

    def __init__(
        self,
        *,
        real: bool,
        cwd: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.real, self.cwd, self.monkeypatch, self.capsys = real, cwd, monkeypatch, capsys

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Any:
        if self.real:
            return tillgate(*args, cwd=self.cwd, env=env)
        with self.monkeypatch.context() as mp:
            mp.chdir(self.cwd)
            for k, v in (env or {}).items():
                mp.setenv(k, v)
            self.capsys.readouterr()
            code = main(list(args))
            out, err = self.capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)


def spawn_hq(args: Sequence[str], *, cwd: Path, url: str, timeout: float = 30) -> Any:
    """A real ``tillgate hq serve``, returned once it answers ``/healthz``."""
    log = (cwd / "hq.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tillgate.cli", "hq", "serve", *args],
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1, verify=False).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    raise AssertionError(f"hq serve did not start:\n{(cwd / 'hq.log').read_text()}")


def stop(proc: Any) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``hq serve`` on the test database, in its own data directory; (url, data dir)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "hq"
    data.mkdir()
    proc = spawn_hq(
        ["--port", str(port), "--db", db_url, "--data-dir", str(data)], cwd=tmp_path, url=url
    )
    try:
        yield url, data
    finally:
        stop(proc)


def test_an_admin_runs_head_office_with_the_verbs(
    served: tuple[str, Path],
    tmp_path: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, data = served
    token_file = data / "hq-admin.token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert "admin token created in" in (tmp_path / "hq.log").read_text()
    # Admin verbs find the token in the current directory, as the spec says.
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(token_file, work / "hq-admin.token")
    hq = ["--hq", url]
    # Real processes on one backend; the other runs the same verbs in this process.
    tillgate = Verbs(
        real=db_url.startswith("sqlite"), cwd=work, monkeypatch=monkeypatch, capsys=capsys
    )

    r = tillgate("hq", "enroll-code", "--store", "store-01", "--till", "till-1", *hq)
    assert r.returncode == 0, r.stderr
    code = r.stdout.strip().splitlines()[-1]
    assert len(code) == 14 and code.count("-") == 2
    enrolled = httpx.post(f"{url}/v1/enroll", json={"code": code}, timeout=10).json()
    assert enrolled["till"] == "till-1"

    r = tillgate("hq", "push", str(PROGRAM), *hq)
    assert r.returncode == 0, r.stderr
    assert "published as version 1" in r.stdout

    r = tillgate("hq", "cards", "import", str(CARDS), *hq)
    assert r.returncode == 0, r.stderr
    assert "6 cards imported, 0 updated" in r.stdout

    r = tillgate("hq", "cards", "snapshot", *hq)
    assert r.returncode == 0, r.stderr
    assert re.match(r"card snapshot 1: 6 cards as of change \d+, 0\.0 MiB in 1 parts", r.stdout)
    offered = httpx.get(
        f"{url}/v1/sync/card-snapshot",
        headers={"Authorization": f"Bearer {enrolled['credential']}"},
        timeout=10,
    )
    assert offered.json()["cards"] == 6

    r = tillgate("hq", "cards", "show", ANNA, "--json", *hq)
    assert r.returncode == 0, r.stderr
    card = json.loads(r.stdout)
    assert {k: card[k] for k in ("number", "holder", "tier", "status", "balance", "pending")} == {
        "number": ANNA,
        "holder": "Анна Иванова",
        "tier": "gold",
        "status": "active",
        "balance": 1240,
        "pending": 0,
    }
    assert [(e["till"], e["kind"], e["points"]) for e in card["entries"]] == [
        ("hq", "adjust", 1240)
    ]
    assert set(card["entries"][0]) >= {"id", "till", "seq", "kind", "points", "receipt_id"}
    r = tillgate("hq", "cards", "show", ANNA, *hq)
    assert r.returncode == 0 and "balance  1240" in r.stdout

    out = work / "codes.txt"
    r = tillgate(
        "hq",
        "coupons",
        "issue",
        "mailing-coupon-300",
        "--count",
        "5",
        "--out",
        str(out),
        *hq,
    )
    assert r.returncode == 0, r.stderr
    codes = out.read_text().split()
    signer = CouponSigner(bytes.fromhex(enrolled["coupon_key"]))
    assert len(codes) == 5 and all(signer.verify(c) for c in codes)

    r = tillgate("hq", "tills", "revoke", "till-1", *hq)
    assert r.returncode == 0 and "revoked" in r.stdout
    refused = httpx.get(
        f"{url}/v1/sync/changes",
        headers={"Authorization": f"Bearer {enrolled['credential']}"},
        timeout=10,
    )
    assert refused.status_code == 401


def test_bad_files_are_exit_2_with_every_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # On the default database (SQLite in the working directory): this is about the CLI.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = spawn_hq(["--port", str(port)], cwd=tmp_path, url=url)
    tillgate = Verbs(real=False, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    try:
        bad = tmp_path / "bad.toml"
        bad.write_text(
            '[program]\nname = "x"\npoint_value = -1\n[[promotions]]\nid = "a"\nname = "A"\n'
            'reward = { kind = "percent", value = 0, on = "order" }\n',
            encoding="utf-8",
        )
        r = tillgate("hq", "push", str(bad), "--hq", url)
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 2 and all(ln.startswith("tillgate: error: ") for ln in lines)
        assert "program.point_value: must be > 0" in r.stderr
        assert "promotions[0].reward.value: must be > 0" in r.stderr

        csv = tmp_path / "bad.csv"
        csv.write_text(f"number,birthday\n{ANNA},1985-13-01\n123,\n", encoding="utf-8")
        r = tillgate("hq", "cards", "import", str(csv), "--hq", url)
        assert r.returncode == 2
        assert "row 2: birthday '1985-13-01' is not YYYY-MM-DD" in r.stderr
        assert "row 3:" in r.stderr and ANNA not in r.stderr
        assert "Traceback" not in r.stderr

        r = tillgate("hq", "cards", "import", str(tmp_path / "nope.csv"), "--hq", url)
        assert r.returncode == 2 and "not found" in r.stderr

        r = tillgate(
            "hq",
            "cards",
            "show",
            ANNA,
            "--hq",
            url,
            env={"TILLGATE_HQ_TOKEN": "x" * 20},
        )
        assert r.returncode == 2 and "refused the admin token" in r.stderr

        r = tillgate("hq", "cards", "show", ANNA, "--hq", url)
        assert r.returncode == 1 and "not known at head office" in r.stderr
        assert ANNA not in r.stderr
    finally:
        stop(proc)


def test_admin_verbs_without_token_or_hq(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no token file here
    monkeypatch.delenv("TILLGATE_HQ_TOKEN", raising=False)
    monkeypatch.delenv("TILLGATE_CONFIG", raising=False)
    assert main(["hq", "tills", "list", "--hq", "http://127.0.0.1:1"]) == 2
    assert "no admin token" in capsys.readouterr().err
    port = free_port()  # nobody listens there
    code = main(["hq", "tills", "list", "--hq", f"http://127.0.0.1:{port}", "--token", "t" * 20])
    assert code == 1
    err = capsys.readouterr().err
    assert "does not answer" in err and len(err.strip().splitlines()) == 1
    assert main(["hq"]) == 2 and "choose a verb" in capsys.readouterr().err
    assert main(["hq", "coupons", "issue", "p", "--count", "0", "--token", "t" * 20]) == 2


def test_an_admin_verb_does_not_load_the_server(tmp_path: Path) -> None:
    """An admin verb is a client of head office: it loads neither the server nor its web
    framework (0.5 s of the 0.7 s ``hq cards import`` took before it sent a byte)."""
    port = free_port()  # nobody listens there
    probe = (
        "import sys\n"
        "from tillgate.cli import main\n"
        f"code = main(['hq', 'tills', 'list', '--hq', 'http://127.0.0.1:{port}',"
        " '--token', 't' * 20])\n"
        "print(code, sorted(m for m in ('fastapi', 'starlette', 'uvicorn', 'tillgate.hq.server')"
        " if m in sys.modules))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert r.stdout.split("\n")[0] == "1 []", r.stdout + r.stderr


def test_serve_start_up_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hq", "serve", "--db", "mysql://x/y", "--data-dir", str(tmp_path)]) == 2
    assert "unknown kind of database 'mysql'" in capsys.readouterr().err
    code = main(
        ["hq", "serve", "--db", "postgresql://u:secret@127.0.0.1:1/x", "--data-dir", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 1 and "cannot connect" in err and "secret" not in err
    busy = free_socket()
    try:
        port = busy.getsockname()[1]
        assert main(["hq", "serve", "--port", str(port), "--data-dir", str(tmp_path)]) == 1
        assert "cannot listen" in capsys.readouterr().err
    finally:
        busy.close()
    cert = tmp_path / "missing.pem"
    assert main(["hq", "serve", "--tls-cert", str(cert), "--data-dir", str(tmp_path)]) == 2
    assert "cannot load the TLS certificate" in capsys.readouterr().err


def test_serve_over_tls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = make_cert(tmp_path)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    proc = spawn_hq(
        ["--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)], cwd=tmp_path, url=url
    )
    tillgate = Verbs(real=False, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    try:
        r = tillgate(
            "hq", "enroll-code", "--store", "s", "--till", "t", "--hq", url,
            env={"SSL_CERT_FILE": str(cert)},
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        code = r.stdout.strip().splitlines()[-1]
        # Without trusting the certificate the verb fails cleanly.
        r = tillgate("hq", "tills", "list", "--hq", url)
        assert r.returncode == 1 and "does not answer" in r.stderr
        # A till with no [hq] ca_file trusts what the operating system's store trusts
        # (here OpenSSL's SSL_CERT_FILE), not only a bundled list.
        config = tmp_path / "till.toml"
        config.write_text(
            f'[till]\nid = "t"\nstore = "s"\ndata_dir = "data"\n'
            f'[hq]\nurl = "{url}"\ncredential_file = "data/credential.json"\n',
            encoding="utf-8",
        )
        r = tillgate("enroll", code, "--config", str(config))
        assert r.returncode == 1 and not (tmp_path / "data" / "credential.json").exists()
        r = tillgate("enroll", code, "--config", str(config), env={"SSL_CERT_FILE": str(cert)})
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "data" / "credential.json").exists()
    finally:
        stop(proc)


def test_flags_and_adjust_verbs(
    served: tuple[str, Path],
    tmp_path: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, data = served
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(data / "hq-admin.token", work / "hq-admin.token")
    hq = ["--hq", url]
    tillgate = Verbs(
        real=db_url.startswith("sqlite"), cwd=work, monkeypatch=monkeypatch, capsys=capsys
    )
    assert tillgate("hq", "push", str(PROGRAM), *hq).returncode == 0
    assert tillgate("hq", "cards", "import", str(CARDS), *hq).returncode == 0
    r = tillgate("hq", "enroll-code", "--store", "s", "--till", "till-1", *hq)
    code = r.stdout.strip().splitlines()[-1]
    till = httpx.post(f"{url}/v1/enroll", json={"code": code}, timeout=10).json()
    now = datetime.now(UTC).isoformat()
    base = {"till": "till-1", "card": ANNA, "created_at": now, "receipt_id": "R-1"}
    pushed = httpx.post(
        f"{url}/v1/sync/push",
        json={
            "till": "till-1",
            "entries": [
                base | {"id": "e1", "seq": 1, "kind": "adjust", "points": 10**9},
                base | {"id": "e2", "seq": 2, "kind": "accrue", "points": 10},
            ],
        },
        headers={"Authorization": f"Bearer {till['credential']}"},
        timeout=10,
    )
    assert pushed.status_code == 200, pushed.text

    r = tillgate("hq", "flags", "list", *hq)
    assert r.returncode == 0, r.stderr
    (row,) = [ln for ln in r.stdout.splitlines() if ln.strip()[:1].isdigit()]
    flag, till_id, card, kind, points, reason = row.split()[:6]
    assert (till_id, card, kind, points, reason) == (
        "till-1",
        "2900•••••2345",
        "adjust",
        "+1000000000",
        "hq_only_kind",
    )
    assert ANNA not in r.stdout and "total: 1 quarantined entries open" in r.stdout

    r = tillgate("hq", "flags", "reject", flag, "--reason", "forged", *hq)
    assert r.returncode == 0, r.stderr
    assert "rejected" in r.stdout and "balance now 1250" in r.stdout
    r = tillgate("hq", "flags", "release", flag, *hq)
    assert r.returncode == 2 and "already rejected" in r.stderr
    r = tillgate("hq", "flags", "release", "999", *hq)
    assert r.returncode == 1 and "no quarantined entry 999" in r.stderr
    r = tillgate("hq", "flags", "list", "--all", "--json", *hq)
    assert [q["status"] for q in json.loads(r.stdout)["quarantined"]] == ["rejected"]

    r = tillgate("hq", "cards", "adjust", ANNA, "-50", "--reason", "typo", *hq)
    assert r.returncode == 0, r.stderr
    assert "-50 points by head office (typo); balance now 1200" in r.stdout
    assert ANNA not in r.stdout
    shown = json.loads(tillgate("hq", "cards", "show", ANNA, "--json", *hq).stdout)
    assert [(e["till"], e["kind"], e["points"], e["quarantine"]) for e in shown["entries"]] == [
        ("hq", "adjust", 1240, None),
        ("till-1", "adjust", 10**9, "rejected"),
        ("till-1", "accrue", 10, None),
        ("hq", "adjust", -50, None),
    ]
    assert tillgate("hq", "cards", "adjust", ANNA, "0", "--reason", "x", *hq).returncode == 2
    assert tillgate("hq", "cards", "adjust", ANNA, "5", *hq).returncode == 2  # no --reason
    r = tillgate("hq", "cards", "adjust", "2900000099999", "5", "--reason", "x", *hq)
    assert r.returncode == 1 and "not known at head office" in r.stderr
    assert "2900000099999" not in r.stderr

    audit = httpx.get(
        f"{url}/v1/admin/audit",
        headers={"Authorization": f"Bearer {(data / 'hq-admin.token').read_text().strip()}"},
        timeout=10,
    ).json()["audit"]
    # The log has every change (the set-up's program, cards and code too); these are points.
    audit = [a for a in audit if a["action"] in ("flag.reject", "card.adjust")]
    assert [(a["action"], a["reason"]) for a in audit] == [
        ("flag.reject", "forged"),
        ("card.adjust", "typo"),
    ]
    assert all(a["actor"] == "admin-token" and "@" in (a["operator"] or "@") for a in audit)
    r = tillgate("hq", "audit", "--since", "2000-01-01", *hq)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if "flag.reject" in ln or "card.adjust" in ln]
    assert len(lines) == 2 and "flag.reject" in lines[0] and "forged" in lines[0]
    assert "card.adjust" in lines[1] and "2900•••••2345" in lines[1]
    assert "balance=1250 -> balance=1200" in lines[1] and ANNA not in r.stdout
    r = tillgate("hq", "audit", "--since", "yesterday", *hq)
    assert r.returncode == 2 and "since:" in r.stderr
