"""``tillgate enroll`` and ``tillgate sync``: one clear line and the right exit code."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.conftest import free_port
from tillgate.agent.cli import main
from tillgate.sync import credential as cred_file

REPLY = {
    "till": "till-1",
    "store": "store-01",
    "credential": "s3cret-credential",
    "coupon_key": "ab" * 32,
    "hq": "hq-test",
}


class _Enroll(BaseHTTPRequestHandler):
    codes: ClassVar[dict[str, dict[str, str]]] = {}

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        reply = self.codes.pop(body.get("code"), None)
        if self.path == "/v1/enroll" and reply is not None:
            status, data = 200, reply
        else:
            status = 403
            data = {"error": {"code": "enrolment_refused", "message": "unknown or used code"}}
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def enroll_hq() -> Iterator[str]:
    _Enroll.codes = {"GOOD-CODE-1234": REPLY}
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Enroll)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def write_config(tmp_path: Path, *, hq_url: str = "", till: str = "till-1") -> Path:
    path = tmp_path / "config.toml"
    standalone = "" if hq_url else '[standalone]\nprogram_file = "program.toml"\n'
    path.write_text(
        f'[till]\nid = "{till}"\nstore = "store-01"\ndata_dir = "data"\n'
        f'[hq]\nurl = "{hq_url}"\ncredential_file = "data/credential.json"\n' + standalone,
        encoding="utf-8",
    )
    return path


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_enroll_writes_the_credential_0600(tmp_path: Path, enroll_hq: str, capsys: Any) -> None:
    config = write_config(tmp_path, hq_url=enroll_hq)
    code, out, err = run(capsys, "enroll", "GOOD-CODE-1234", "--config", str(config))
    assert code == 0, err
    assert "enrolled as till till-1 of store store-01" in out
    path = tmp_path / "data" / "credential.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cred = cred_file.load(path)
    assert (cred.till, cred.url, cred.key) == ("till-1", enroll_hq, bytes.fromhex("ab" * 32))
    assert "s3cret" not in repr(cred)
    # The code was single use: a second try is refused, the credential stays.
    code, _, err = run(capsys, "enroll", "GOOD-CODE-1234", "--config", str(config))
    assert code == 1 and err.count("\n") == 1 and "403 enrolment_refused" in err
    assert cred_file.load(path) == cred


def test_enroll_warns_when_the_config_names_another_till(
    tmp_path: Path, enroll_hq: str, capsys: Any
) -> None:
    config = write_config(tmp_path, till="till-9")
    code, _, err = run(
        capsys, "enroll", "GOOD-CODE-1234", "--hq", enroll_hq, "--config", str(config)
    )
    assert code == 0
    assert "set [till] id = 'till-1'" in err and f"set [hq] url = '{enroll_hq}'" in err


@pytest.mark.parametrize(
    ("argv", "exit_code", "message"),
    [
        (["enroll", "X"], 2, "no head office URL"),
        (["enroll", "X", "--hq", "ftp://hq"], 2, "is not an http(s) URL"),
        (["enroll", "X", "--hq", "http://127.0.0.1:{closed}"], 1, "cannot reach head office"),
        (["sync"], 2, "hq.url is empty"),
    ],
)
def test_usage_and_run_time_errors(
    tmp_path: Path, capsys: Any, argv: list[str], exit_code: int, message: str
) -> None:
    config = write_config(tmp_path)
    argv = [a.replace("{closed}", str(free_port())) for a in argv]
    code, out, err = run(capsys, *argv, "--config", str(config))
    assert code == exit_code and message in err and err.count("\n") == 1 and out == ""
    assert "Traceback" not in err


def test_sync_before_enrolment_says_what_to_do(tmp_path: Path, capsys: Any) -> None:
    config = write_config(tmp_path, hq_url=f"http://127.0.0.1:{free_port()}")
    code, _, err = run(capsys, "sync", "--config", str(config))
    assert code == 2 and "not enrolled" in err and "tillgate enroll CODE --hq URL" in err


def test_sync_with_hq_down_fails_in_one_line(tmp_path: Path, capsys: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = write_config(tmp_path, hq_url=url)
    cred_file.save(tmp_path / "data" / "credential.json", cred_file.Credential(url=url, **REPLY))
    code, _, err = run(capsys, "sync", "--config", str(config))
    assert code == 1 and "cannot reach head office" in err and err.count("\n") == 1


def test_a_damaged_credential_is_a_config_error(tmp_path: Path, capsys: Any) -> None:
    config = write_config(tmp_path, hq_url="http://127.0.0.1:1")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "credential.json").write_text('{"till": "till-1"}')
    code, _, err = run(capsys, "sync", "--config", str(config))
    assert code == 2 and "damaged credential file" in err and "enroll the till again" in err
