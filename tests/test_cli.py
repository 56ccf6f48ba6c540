"""The ``tillgate`` command: verbs, exit codes, and one clear line for every foreseeable error."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, spawn_agent
from tillgate.cli import main
from tillgate.core import __version__

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("config.example.toml", "program.example.toml", "cards.example.csv")


def tillgate(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the command as a user does, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "tillgate.cli", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **env},
        timeout=60,
    )


def one_error_line(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The single ``tillgate: error: …`` line a failure must print, and nothing else."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("tillgate: error: "), lines
    return lines[0].removeprefix("tillgate: error: ")


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    for name in EXAMPLES:
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_version() -> None:
    result = tillgate("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"tillgate {__version__}" == "tillgate 0.1.0"


@pytest.mark.parametrize("verb", [[], ["run"], ["schema"], ["check-program"]])
def test_every_verb_has_help(verb: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*verb, "--help"]) == 0
    assert "usage: tillgate" in capsys.readouterr().out


def test_every_verb_is_offered_and_unknown_ones_refused(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--help"])
    out = capsys.readouterr().out
    for verb in (
        "run",
        "schema",
        "check-program",
        "decode",
        "intercept",
        "enroll",
        "sync",
        "hq",
        "demo",
        "doctor",
    ):
        assert verb in out
    assert main(["no-such-verb"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_no_verb_is_a_usage_error() -> None:
    assert "choose a verb" in one_error_line(tillgate())


def test_unknown_flag_is_one_line() -> None:
    assert "unrecognized arguments: --colour" in one_error_line(tillgate("run", "--colour"))


def test_bad_flag_value_is_one_line() -> None:
    assert "--port: invalid int value" in one_error_line(tillgate("run", "--port", "http"))


def test_schema_promotions() -> None:
    result = tillgate("schema", "promotions")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["title"] == "tillgate program and promotions"
    assert "promotions" in schema["properties"]
    assert "\\u" not in result.stdout  # ensure_ascii=False: Russian stays readable


def test_schema_of_something_else() -> None:
    assert "invalid choice: 'cards'" in one_error_line(tillgate("schema", "cards"))


def test_check_program_ok() -> None:
    result = tillgate("check-program", str(ROOT / "program.example.toml"))
    assert result.returncode == 0, result.stderr
    assert "Ромашка Бонус" in result.stdout
    assert re.search(r"\b\d+ promotions, 3 tiers$", result.stdout.strip())


def test_check_program_lists_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[program]\nname = "X"\npoint_value = 1.555\n'
        '[[promotions]]\nid = "a"\nname = "A"\nreward = { kind = "percent", value = 0 }\n'
        '[[promotions]]\nid = "b"\nname = "B"\nreward = { kind = "teleport" }\n',
        encoding="utf-8",
    )
    result = tillgate("check-program", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 3, lines
    assert all(line.startswith(f"tillgate: error: {bad}: ") for line in lines)
    assert any("program.point_value:" in line for line in lines)
    assert any("promotions[0].reward.value: must be > 0" in line for line in lines)
    assert any("promotions[1].reward: unknown kind 'teleport'" in line for line in lines)


def test_check_program_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[program\n", encoding="utf-8")
    assert "not valid TOML" in one_error_line(tillgate("check-program", str(bad)))
    assert "file not found" in one_error_line(tillgate("check-program", str(tmp_path / "no")))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[till]\nid = "t"\nstore = "s"\ncolour = "red"\n', "till.colour: unknown key"),
        ('[till]\nid = "t"\nstore = "s"\n[pos_api]\nport = 70000\n', "pos_api.port: must be <="),
        ('[till]\nid = "t"\nstore = "s"\ntimezone = "Mars/Olympus"\n', "till.timezone: unknown"),
        ('[till]\nid = "t"\nstore = \n', "not valid TOML"),
    ],
)
def test_run_with_a_bad_config(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text + '[standalone]\nprogram_file = "p.toml"\n', encoding="utf-8")
    line = one_error_line(tillgate("run", "--config", str(config)))
    assert line.startswith(f"{config}: {expected}"), line


def test_run_with_a_missing_config(tmp_path: Path) -> None:
    line = one_error_line(tillgate("run", cwd=tmp_path))
    assert line.startswith("config.toml: file not found")
    line = one_error_line(tillgate("run", cwd=tmp_path, TILLGATE_CONFIG="elsewhere.toml"))
    assert line.startswith("elsewhere.toml: file not found")


def test_run_flag_is_checked_like_the_file(examples: Path) -> None:
    line = one_error_line(
        tillgate("run", "--config", "config.example.toml", "--port", "70000", cwd=examples)
    )
    assert line == "config.example.toml: pos_api.port: must be <= 65535"


def test_run_with_an_invalid_program(examples: Path) -> None:
    program = examples / "program.example.toml"
    program.write_text('[program]\nname = ""\npoint_value = 1.555\n', encoding="utf-8")
    result = tillgate("run", "--config", "config.example.toml", "--port", "0", cwd=examples)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("tillgate: error:")]
    assert len(errors) == 2, result.stderr
    assert errors[0].startswith(f"tillgate: error: {program}: program.name: ")
    assert errors[1].startswith(f"tillgate: error: {program}: program.point_value: ")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=30)[1]


def test_run_flags_override_the_config(examples: Path) -> None:
    port = free_port()
    proc = spawn_agent(
        examples / "config.example.toml",
        port=port,
        cwd=examples,
        args=["--host", "127.0.0.1", "--log-level", "warning"],
        stderr=subprocess.PIPE,
    )
    err = stop(proc)
    assert proc.returncode == 0, err
    assert " INFO " not in err  # --log-level warning won over the file's level


def test_run_uses_the_environment(examples: Path, tmp_path: Path) -> None:
    port = free_port()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = spawn_agent(
        None,
        port=port,
        cwd=elsewhere,
        stderr=subprocess.PIPE,
        env={"TILLGATE_CONFIG": str(examples / "config.example.toml")},
    )
    status = httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=10).json()
    assert status["till"] == "till-1"
    stop(proc)
    assert proc.returncode == 0


def test_run_time_failure_is_one_line_and_exit_1(examples: Path) -> None:
    config = examples / "config.example.toml"
    # data_dir under a file: the data directory cannot be created
    (examples / "blocker").write_text("not a directory", encoding="utf-8")
    text = config.read_text(encoding="utf-8").replace(
        'data_dir = "var/tillgate"', 'data_dir = "blocker/tillgate"'
    )
    config.write_text(text, encoding="utf-8")
    result = tillgate("run", "--config", str(config), "--port", "0", cwd=examples)
    assert result.returncode == 1, result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("tillgate: error:")]
    assert len(errors) == 1 and "data directory" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="stops the agent with SIGINT")
def test_run_the_example_config_for_real(examples: Path) -> None:
    """``tillgate run --config config.example.toml`` serves the POS API and stops on SIGINT."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tillgate.cli",
            "run",
            "--config",
            "config.example.toml",
            "--port",
            "0",
        ],
        cwd=examples,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        url = None
        deadline = time.monotonic() + 30
        lines: list[str] = []
        assert proc.stderr is not None
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if m := re.search(r"POS API on (http://\S+)", line):
                url = m.group(1)
        assert url, "".join(lines)
        status: dict[str, Any] = httpx.get(f"{url}/v1/status", timeout=10).json()
        assert status["till"] == "till-1"
        card = httpx.get(f"{url}/v1/cards/2900000012345", timeout=10)
        assert card.status_code == 200, card.text  # cards.example.csv was loaded
        assert "2900000012345" not in card.text
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=30)[1]
        assert proc.returncode == 0, rest  # SIGINT is a clean stop
        assert "tillgate stopped" in rest
        assert "Traceback" not in "".join(lines) + rest
        assert "2900000012345" not in "".join(lines) + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
