"""The till config: every bad file or value is refused with its path and the reason."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tillgate.core.config import (
    Config,
    load_config,
    parse_device_url,
    resolve_config_path,
)
from tillgate.core.errors import ConfigError

MINIMAL = """
[till]
id = "till-7"
store = "store-02"

[standalone]
program_file = "program.toml"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path, overrides: dict[str, object] | None = None) -> list[str]:
    """The lines of the ConfigError that loading ``path`` raises."""
    with pytest.raises(ConfigError) as exc:
        load_config(path, overrides)
    lines = str(exc.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    return [line.removeprefix(f"{path}: ") for line in lines]


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert isinstance(config, Config)
    assert (config.till.id, config.till.store) == ("till-7", "store-02")
    assert config.till.timezone == "Europe/Moscow"
    assert (config.till.language, config.till.hold_seconds) == ("ru", 900)
    assert (config.pos_api.host, config.pos_api.port, config.pos_api.token) == (
        "127.0.0.1",
        8765,
        "",
    )
    assert (config.pos_api.max_body_bytes, config.pos_api.max_lines) == (1_048_576, 1000)
    assert (config.sync.interval_seconds, config.sync.offline_after_seconds) == (30, 60)
    assert config.sync.batch_size == 500
    assert config.devices.printer.url == "none"
    assert config.devices.printer.columns == 42
    assert config.intercept.enabled is False
    assert (config.logging.level, config.logging.file) == ("INFO", None)
    assert config.standalone_mode


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, MINIMAL + '[logging]\nfile = "log/tillgate.log"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("..") / "config.toml")
    base = tmp_path.resolve()
    assert config.till.data_dir.resolve() == base / "var" / "tillgate"
    assert config.till.data_dir.is_absolute()
    assert config.hq.credential_file.resolve() == base / "var" / "tillgate" / "credential.json"
    assert config.standalone.program_file is not None
    assert config.standalone.program_file.resolve() == base / "program.toml"
    assert config.standalone.cards_file is None
    assert config.logging.file is not None
    assert config.logging.file.resolve() == base / "log" / "tillgate.log"


def test_absolute_paths_stay(tmp_path: Path) -> None:
    data = (tmp_path / "data").absolute()
    text = MINIMAL.replace('store = "store-02"', f'store = "s"\ndata_dir = "{data.as_posix()}"')
    path = write(tmp_path, text)
    assert load_config(path).till.data_dir == data


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    config = load_config(
        path, {"pos_api.port": 0, "pos_api.host": "localhost", "logging.level": "debug"}
    )
    assert (config.pos_api.port, config.pos_api.host, config.logging.level) == (
        0,
        "localhost",
        "DEBUG",
    )


def test_override_is_validated_like_the_file(tmp_path: Path) -> None:
    assert problems(write(tmp_path, MINIMAL), {"pos_api.port": 70000}) == [
        "pos_api.port: must be <= 65535"
    ]


def test_till_id_is_a_plain_name(tmp_path: Path) -> None:
    (line,) = problems(write(tmp_path, MINIMAL), {"till.id": "till 1/../x"})
    assert line.startswith("till.id: ") and "letters, digits" in line


def test_override_into_a_value_is_refused(tmp_path: Path) -> None:
    assert problems(write(tmp_path, MINIMAL), {"till.id.x": 1}) == [
        "till.id: must be a table to set till.id.x"
    ]


def test_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('store = "store-02"', 'store = "s"\ncolour = "red"'))
    assert problems(path) == ["till.colour: unknown key"]


def test_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '\n[devices.drawer]\nurl = "none"\n[extra]\na = 1\n')
    assert problems(path) == ["devices.drawer: unknown key", "extra: unknown key"]


@pytest.mark.parametrize(
    ("section", "line", "expected"),
    [
        ("pos_api", "port = 70000", "pos_api.port: must be <= 65535"),
        ("pos_api", "port = -1", "pos_api.port: must be >= 0"),
        ("pos_api", 'port = "http"', "pos_api.port: Input should be a valid integer"),
        ("pos_api", "max_lines = 0", "pos_api.max_lines: must be >= 1"),
        ("till", 'timezone = "Europe/Mscow"', "till.timezone: unknown time zone 'Europe/Mscow'"),
        ("till", 'language = "de"', "till.language: Input should be 'ru' or 'en'"),
        ("till", "card_session_seconds = 0", "till.card_session_seconds: must be > 0"),
        ("till", "hold_seconds = -5", "till.hold_seconds: must be > 0"),
        ("till", 'data_dir = ""', "till.data_dir: must not be empty"),
        ("hq", 'credential_file = " "', "hq.credential_file: must not be empty"),
        ("sync", "interval_seconds = 0", "sync.interval_seconds: must be > 0"),
        ("sync", "batch_size = 0", "sync.batch_size: must be >= 1"),
        ("hq", 'url = "ftp://hq"', "hq.url: 'ftp://hq' is not an http(s) URL"),
        ("hq", 'url = "http://hq:99999"', "hq.url: 'http://hq:99999': Port out of range"),
        ("devices.printer", 'url = "lpt1"', "devices.printer.url: unknown device URL 'lpt1'"),
        ("devices.printer", 'codepage = "cp9999"', "devices.printer.codepage: unknown code page"),
        ("devices.printer", "columns = 8", "devices.printer.columns: must be >= 16"),
        ("devices.scanner", 'url = "usb://epson"', "devices.scanner.url: 'usb://epson': write"),
        ("devices.card_reader", 'url = "tcp://:9100"', "devices.card_reader.url: 'tcp://:9100'"),
        ("logging", 'level = "chatty"', "logging.level: Input should be 'DEBUG'"),
        ("intercept", 'pos_side = "bogus"', "intercept.pos_side: unknown device URL"),
    ],
)
def test_bad_values(tmp_path: Path, section: str, line: str, expected: str) -> None:
    text = MINIMAL if section in ("till", "standalone") else MINIMAL + f"\n[{section}]\n"
    if section == "till":
        text = text.replace('store = "store-02"', f'store = "store-02"\n{line}')
    else:
        text += line + "\n"
    found = problems(write(tmp_path, text))
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL
        + '[pos_api]\nport = 70000\nhots = "x"\n[till.extra]\n[devices.printer]\nurl = "lpt1"\n',
    )
    found = problems(path)
    assert len(found) == 4, found


def test_missing_till_keys(tmp_path: Path) -> None:
    path = write(tmp_path, '[standalone]\nprogram_file = "p.toml"\n[till]\n')
    assert problems(path) == ["till.id: is required", "till.store: is required"]


def test_standalone_needs_a_program_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[till]\nid = "t"\nstore = "s"\n[standalone]\nprogram_file = ""\n')
    (line,) = problems(path)
    assert line.startswith("standalone.program_file: required when hq.url is empty")


def test_a_till_with_head_office_needs_no_program_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[till]\nid = "t"\nstore = "s"\n[hq]\nurl = "https://hq.example:8700/"\n'
    )
    config = load_config(path)
    assert config.hq.url == "https://hq.example:8700"
    assert not config.standalone_mode


def test_api_off_loopback_needs_a_token(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[pos_api]\nhost = "0.0.0.0"\n')
    (line,) = problems(path)
    assert line.startswith("pos_api.token: required when pos_api.host (0.0.0.0) is not loopback")
    config = load_config(path, {"pos_api.token": "s3cret-token-" + "x" * 20})
    assert not config.pos_api.loopback
    assert load_config(write(tmp_path, MINIMAL + '[pos_api]\nhost = "::1"\n')).pos_api.loopback


def test_offline_after_is_not_shorter_than_the_interval(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[sync]\ninterval_seconds = 120\n")
    (line,) = problems(path)
    assert line == "sync.offline_after_seconds: must be >= sync.interval_seconds (120)"


def test_interception_needs_a_printer_to_forward_to(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[intercept]\nenabled = true\n")
    (line,) = problems(path)
    assert line.startswith("intercept.printer_side: forwards to devices.printer")
    ok = load_config(path, {"devices.printer.url": "file:///tmp/printer.bin"})
    assert ok.intercept.enabled


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    (line,) = problems(path)
    assert line.startswith("file not found")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (line,) = problems(tmp_path)
    assert "is a directory" in line


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    path.chmod(0)
    if os.geteuid() != 0:
        (line,) = problems(path)
        assert "permission denied" in line
        return
    # Root reads any file: load it as an ordinary user instead, in a forked child.
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                load_config(path)
                said = "loaded"
            except ConfigError as exc:
                said = str(exc)
            os.write(write_end, said.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    said = b""
    while chunk := os.read(read_end, 4096):
        said += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    assert said.decode().startswith(f"{path}: ") and "permission denied" in said.decode()


def test_bad_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[till]\nid = "t"\nstore = \n')
    (line,) = problems(path)
    assert line.startswith("not valid TOML:")
    assert "line 3" in line


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes('[till]\nid = "касса"\n'.encode("cp1251"))
    (line,) = problems(path)
    assert "not UTF-8" in line


def test_resolve_config_path() -> None:
    assert resolve_config_path("a.toml", {"TILLGATE_CONFIG": "b.toml"}) == Path("a.toml")
    assert resolve_config_path(None, {"TILLGATE_CONFIG": "b.toml"}) == Path("b.toml")
    assert resolve_config_path(None, {"TILLGATE_CONFIG": ""}) == Path("config.toml")
    assert resolve_config_path(None, {}) == Path("config.toml")


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(ValueError):
        config.till.id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "scheme", "detail"),
    [
        ("none", "none", {}),
        ("serial:///dev/ttyUSB0?baudrate=38400", "serial", {"path": "/dev/ttyUSB0"}),
        ("serial://COM4?baudrate=9600&parity=E", "serial", {"path": "COM4"}),
        ("COM3", "serial", {"path": "COM3"}),
        ("com12", "serial", {"path": "COM12"}),
        ("pty:/run/tillgate/pos-printer", "pty", {"path": "/run/tillgate/pos-printer"}),
        ("tcp://192.168.1.50:9100", "tcp", {"host": "192.168.1.50", "port": 9100}),
        ("tcp://printer.local", "tcp", {"host": "printer.local", "port": 9100}),
        ("usb://04b8:0202", "usb", {"vendor_id": 0x04B8, "product_id": 0x0202}),
        ("file:///tmp/printer.bin", "file", {"path": "/tmp/printer.bin"}),
        ("evdev:/dev/input/by-id/usb-scanner-event-kbd", "evdev", {}),
        ("loop://", "loop", {}),
        ("socket://localhost:7000", "socket", {"host": "localhost", "port": 7000}),
    ],
)
def test_device_urls(url: str, scheme: str, detail: dict[str, object]) -> None:
    address = parse_device_url(url)
    assert address.scheme == scheme
    for key, value in detail.items():
        assert getattr(address, key) == value


@pytest.mark.parametrize(
    "url",
    [
        "",
        "lpt1",
        "serial://",
        "serial:///dev/ttyUSB0?baud=9600",
        "serial:///dev/ttyUSB0?baudrate=fast",
        "pty:",
        "evdev:",
        "tcp://:9100",
        "tcp://host:0",
        "tcp://host:99999",
        "socket://host",
        "usb://04b8",
        "usb://printer",
        "file://",
        "http://printer/",
        "COM0",
    ],
)
def test_bad_device_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_device_url(url)


def test_example_config_validates() -> None:
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "config.example.toml")
    assert config.standalone_mode
    assert config.standalone.program_file == root / "program.example.toml"
    assert config.standalone.program_file.is_file()
    assert config.standalone.cards_file is not None and config.standalone.cards_file.is_file()
    for device in (config.devices.printer, config.devices.scanner, config.devices.card_reader):
        assert device.url == "none"
    assert config.intercept.enabled is False
