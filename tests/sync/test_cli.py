"""``tillgate enroll`` and ``tillgate sync``: one clear line and the right exit code."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, program
from tests.sync.realhq import ChainHq
from tillgate.cli import main
from tillgate.sync import credential as cred_file
from tillgate.sync.client import HqClient

# A credential as enrolment writes it, for the tests where no head office answers.
REPLY = {
    "till": "till-1",
    "store": "store-01",
    "credential": "s3cret-credential",
    "coupon_key": "ab" * 32,
    "hq": "hq-test",
}


@pytest.fixture
def enroll_hq(hq: ChainHq) -> str:
    """The real head office's URL, with a program published (what a new till pulls)."""
    hq.publish(program())
    return hq.url


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


def test_enroll_writes_the_credential_0600(
    tmp_path: Path, enroll_hq: str, hq: ChainHq, capsys: Any
) -> None:
    config = write_config(tmp_path, hq_url=enroll_hq)
    code = hq.enroll_code("till-1")
    out_code, out, err = run(capsys, "enroll", code, "--config", str(config))
    assert out_code == 0, err
    assert "enrolled as till till-1 of store store-01" in out
    path = tmp_path / "data" / "credential.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cred = cred_file.load(path)
    assert (cred.till, cred.store, cred.url) == ("till-1", "store-01", enroll_hq)
    assert (cred.hq, cred.key) == (hq.api.hq.instance_id, hq.api.hq.coupon_key)
    assert cred.credential not in repr(cred) and cred.credential not in out + err
    assert [t["till"] for t in hq.ok("GET", "/v1/admin/tills")["tills"]] == ["till-1"]
    with HqClient(url=cred.url, credential=cred.credential) as client:
        assert client.changes(0, 10).program is not None  # HQ knows the till by it
    # The code was single use: a second try is refused, the credential stays.
    out_code, _, err = run(capsys, "enroll", code, "--config", str(config))
    assert out_code == 1 and err.count("\n") == 1 and "403 enrolment_refused" in err
    assert cred_file.load(path) == cred


def test_enroll_then_sync_takes_the_program(
    tmp_path: Path, enroll_hq: str, hq: ChainHq, capsys: Any
) -> None:
    config = write_config(tmp_path, hq_url=enroll_hq)
    code, _, err = run(capsys, "enroll", hq.enroll_code("till-1"), "--config", str(config))
    assert code == 0, err
    code, out, err = run(capsys, "sync", "--config", str(config))
    assert code == 0, err
    assert out.startswith("synced: 0 entries sent (0 already at HQ)")
    assert "program version 1 in force" in out
    till = next(t for t in hq.ok("GET", "/v1/admin/tills")["tills"] if t["till"] == "till-1")
    assert till["last_seen"] is not None


def test_enroll_warns_when_the_config_names_another_till(
    tmp_path: Path, enroll_hq: str, hq: ChainHq, capsys: Any
) -> None:
    config = write_config(tmp_path, till="till-9")
    code, _, err = run(
        capsys, "enroll", hq.enroll_code("till-1"), "--hq", enroll_hq, "--config", str(config)
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
