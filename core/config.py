"""The till configuration: ``config.toml`` as validated, frozen models.

:func:`load_config` reads the file, applies command-line overrides, and validates the
result in one go; every problem becomes one line of a :class:`ConfigError` naming the
file, the key and the reason (``config.toml: pos_api.port: must be <= 65535``). Relative
paths in the file are taken relative to the file's own directory, so a till runs the same
from any working directory. Nothing here reads the environment or a file at import time.
"""

from __future__ import annotations

import codecs
import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, cast
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .rules.program import validation_errors

DEFAULT_CONFIG = "config.toml"
ENV_CONFIG = "TILLGATE_CONFIG"

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
Seconds = Annotated[int, Field(gt=0, le=7 * 24 * 3600)]
MIN_REMOTE_TOKEN = 32  # characters of pos_api.token when the API is reachable beyond loopback


# ---------------------------------------------------------------- device addresses


Scheme = Literal[
    "none", "serial", "pty", "tcp", "usb", "file", "evdev", "loop", "socket", "rfc2217"
]


@dataclass(frozen=True, kw_only=True)
class DeviceAddress:
    """A parsed device URL: which transport, and where (``serial:///dev/ttyUSB0?baudrate=…``)."""

    scheme: Scheme
    url: str
    path: str = ""  # serial device, pty symlink, file or evdev node
    host: str = ""
    port: int = 0
    vendor_id: int = 0
    product_id: int = 0
    params: Mapping[str, str] = field(default_factory=dict)


_DEVICE_FORMS = (
    "serial:///dev/ttyUSB0?baudrate=38400, COM3, pty:/path, tcp://host:9100, usb://VID:PID, "
    "file:///path, evdev:/dev/input/…, loop://, socket://host:port or none"
)
_SERIAL_PARAMS = {
    "baudrate": re.compile(r"^[1-9]\d{1,6}$"),
    "bytesize": re.compile(r"^[5-8]$"),
    "parity": re.compile(r"^[NEOMS]$"),
    "stopbits": re.compile(r"^(1|1\.5|2)$"),
    "rtscts": re.compile(r"^(0|1|true|false)$"),
    "xonxoff": re.compile(r"^(0|1|true|false)$"),
    "dsrdtr": re.compile(r"^(0|1|true|false)$"),
    "timeout": re.compile(r"^\d+(\.\d+)?$"),
}
_COM = re.compile(r"^COM[1-9]\d{0,2}$", re.IGNORECASE)
_USB = re.compile(r"^usb://(?:0x)?([0-9a-fA-F]{4}):(?:0x)?([0-9a-fA-F]{4})$")


def parse_device_url(url: str) -> DeviceAddress:
    """Parse and check a device URL; raise ValueError saying what a valid one looks like."""
    url = url.strip()
    if url == "none":
        return DeviceAddress(scheme="none", url=url)
    if _COM.match(url):
        return DeviceAddress(scheme="serial", url=url, path=url.upper())
    if m := _USB.match(url):
        return DeviceAddress(
            scheme="usb", url=url, vendor_id=int(m.group(1), 16), product_id=int(m.group(2), 16)
        )
    scheme, _, rest = url.partition(":")
    if scheme in ("pty", "evdev"):
        if not rest.lstrip("/"):
            raise ValueError(f"{url!r}: {scheme}: needs a path, e.g. {scheme}:/path")
        return DeviceAddress(scheme=cast(Scheme, scheme), url=url, path=rest)
    if scheme == "usb":
        raise ValueError(
            f"{url!r}: write a USB device as usb://VID:PID in hex, e.g. usb://04b8:0202"
        )
    parts = urlsplit(url)
    if scheme == "serial":
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        for key, value in params.items():
            rule = _SERIAL_PARAMS.get(key)
            if rule is None:
                raise ValueError(f"{url!r}: unknown serial setting {key!r}")
            if not rule.match(value):
                raise ValueError(f"{url!r}: bad {key} {value!r}")
        device = parts.netloc + parts.path  # serial:///dev/ttyUSB0 and serial://COM3
        if not device:
            raise ValueError(f"{url!r}: needs a device, e.g. serial:///dev/ttyUSB0")
        return DeviceAddress(scheme="serial", url=url, path=device, params=params)
    if scheme == "file":
        if not parts.path:
            raise ValueError(f"{url!r}: needs a path, e.g. file:///var/lib/tillgate/printer.bin")
        return DeviceAddress(scheme="file", url=url, path=parts.netloc + parts.path)
    if scheme == "loop":
        return DeviceAddress(scheme="loop", url=url)
    if scheme in ("tcp", "socket", "rfc2217"):
        try:
            host, port = parts.hostname, parts.port
        except ValueError as exc:  # a port that is not a number or out of range
            raise ValueError(f"{url!r}: {exc}") from exc
        if not host:
            raise ValueError(f"{url!r}: needs a host, e.g. {scheme}://192.168.1.50:9100")
        if port is None:
            if scheme != "tcp":
                raise ValueError(f"{url!r}: needs a port, e.g. {scheme}://{host}:7000")
            port = 9100  # the raw printing port every network receipt printer listens on
        if port == 0:
            raise ValueError(f"{url!r}: port must be 1..65535")
        return DeviceAddress(scheme=cast(Scheme, scheme), url=url, host=host, port=port)
    raise ValueError(f"unknown device URL {url!r}; expected {_DEVICE_FORMS}")


def _device_url(value: str) -> str:
    parse_device_url(value)
    return value.strip()


# ---------------------------------------------------------------- sections


class _Section(BaseModel):
    # validate_default: default paths are resolved against the config file like written ones.
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, validate_default=True
    )


def _section() -> Any:
    # A missing section is validated as an empty table, so its defaults see the context too.
    return Field(default_factory=dict)


def _resolve(value: Path | None, info: ValidationInfo) -> Path | None:
    # Relative to the config file, not the working directory: a service manager and a
    # person in a shell must get the same data directory.
    if value is None:
        return None
    value = value.expanduser()
    base = (info.context or {}).get("base")
    if base is None or value.is_absolute():
        return value
    return Path(base) / value


def _empty_is_none(value: Any) -> Any:
    return None if value == "" else value


def _not_empty(value: Any) -> Any:
    # Path("") is the working directory: an empty value would scatter data where we start.
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


class TillSection(_Section):
    """[till]: who this till is, where it keeps its data, its time zone and language."""

    id: Ident
    store: Ident
    data_dir: Path = Path("var/tillgate")
    timezone: str = "Europe/Moscow"
    card_session_seconds: Seconds = 120
    language: Literal["ru", "en"] = "ru"
    hold_seconds: Seconds = 900  # how long a redemption hold placed by calculate lives
    # Receipts (and their refunds and facts) are kept this long, then forgotten once synced.
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 90

    _empty = field_validator("data_dir", mode="before")(_not_empty)
    _paths = field_validator("data_dir")(_resolve)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {v!r} (use an IANA name like Europe/Moscow)"
            ) from exc
        return v

    @property
    def zone(self) -> ZoneInfo:
        """The till's time zone; promotions are written in its wall time."""
        return ZoneInfo(self.timezone)


class PosApiSection(_Section):
    """[pos_api]: where the POS API listens and what it accepts."""

    host: Annotated[str, StringConstraints(min_length=1, pattern=r"^[^\s/]+$")] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8765  # 0: any free port (tests, demo)
    token: str = ""
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1_048_576
    max_lines: Annotated[int, Field(ge=1, le=100_000)] = 1000

    @property
    def loopback(self) -> bool:
        """True when only this machine can reach the API."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class HqSection(_Section):
    """[hq]: the head office this till syncs with; empty url for a standalone shop."""

    url: str = ""  # empty: a standalone till
    credential_file: Path = Path("var/tillgate/credential.json")
    ca_file: Path | None = None  # PEM bundle HQ's certificate is checked against (https)
    verify: bool = True  # false: do not check HQ's certificate (a lab only, never a shop)

    _empty = field_validator("credential_file", mode="before")(_not_empty)
    _none = field_validator("ca_file", mode="before")(_empty_is_none)
    _paths = field_validator("credential_file", "ca_file")(_resolve)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v:
            return v
        parts = urlsplit(v)
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"{v!r}: {exc}") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{v!r} is not an http(s) URL like http://hq.example:8700")
        return v.rstrip("/")


_STANDALONE_FILES = ("program_file", "cards_file", "products_file")


class StandaloneSection(_Section):
    """[standalone]: the local program, cards and product list files of a shop without
    head office."""

    program_file: Path | None = None
    cards_file: Path | None = None
    products_file: Path | None = None  # a product list CSV (core/productfile.py); optional

    _empty = field_validator(*_STANDALONE_FILES, mode="before")(_empty_is_none)
    _paths = field_validator(*_STANDALONE_FILES)(_resolve)


class SyncSection(_Section):
    """[sync]: how often the till syncs and when it counts itself offline."""

    interval_seconds: Seconds = 30
    offline_after_seconds: Seconds = 60
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 500
    # Online, calculate reserves points and coupons at head office within this many
    # milliseconds, else prices the receipt by the offline rules (no retry).
    hold_timeout_ms: Annotated[int, Field(ge=10, le=10_000)] = 300


class PrinterSection(_Section):
    """[devices.printer]: the receipt printer the agent prints coupons and prompts on."""

    url: str = "none"
    profile: Annotated[str, StringConstraints(min_length=1)] = "default"  # python-escpos profile
    codepage: str = "cp866"
    columns: Annotated[int, Field(ge=16, le=96)] = 42
    # DLE EOT status polls; None: on for serial/pty/usb/rfc2217, off for file/tcp/none.
    status_poll: bool | None = None
    poll_seconds: Annotated[float, Field(ge=0.5, le=3600)] = 5.0
    queue_limit: Annotated[int, Field(ge=1, le=10_000)] = 100  # jobs held while it is away
    coupon_code: Literal["auto", "barcode", "qr", "text"] = "auto"  # how a code is printed

    _url = field_validator("url")(_device_url)

    @model_validator(mode="after")
    def _profile_has_codepage(self) -> PrinterSection:
        if self.url == "none":
            return self  # nothing will print: spare every start the printer database load
        from .printers import escpos_codepage  # python-escpos's printer database

        try:
            escpos_codepage(self.profile, self.codepage)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
        return self

    @field_validator("codepage")
    @classmethod
    def _codepage(cls, v: str) -> str:
        try:
            codecs.lookup(v)
        except LookupError as exc:
            raise ValueError(f"unknown code page {v!r} (e.g. cp866, cp1251)") from exc
        return v

    @property
    def address(self) -> DeviceAddress:
        return parse_device_url(self.url)


class InputDeviceSection(_Section):
    """[devices.scanner] / [devices.card_reader]: where card swipes and scans come from."""

    url: str = "none"
    prefix: str = ""  # sent by the reader before each read (e.g. "\u0002" STX, a reader id)
    suffix: str = ""  # sent after each read (e.g. "\u0003" ETX); CR, LF and TAB always end one
    card_number_pattern: str = ""  # empty: the program's card_number_pattern
    track_number_pattern: str = ""  # regex whose group 1 is the card number in track data
    scan_timeout_ms: Annotated[int, Field(ge=10, le=5000)] = 150  # a pause that ends a read
    encodings: tuple[str, ...] = ("utf-8", "cp1251")  # tried in order on each read

    _url = field_validator("url")(_device_url)

    @field_validator("card_number_pattern", "track_number_pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return v

    @field_validator("encodings")
    @classmethod
    def _encodings(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError('needs at least one encoding, e.g. ["utf-8"]')
        for name in v:
            try:
                codecs.lookup(name)
            except LookupError as exc:
                raise ValueError(f"unknown encoding {name!r} (e.g. utf-8, cp1251)") from exc
        return v

    @property
    def address(self) -> DeviceAddress:
        return parse_device_url(self.url)


class DevicesSection(_Section):
    """[devices]: the hardware attached to the till."""

    printer: PrinterSection = _section()
    scanner: InputDeviceSection = _section()
    card_reader: InputDeviceSection = _section()


class InterceptSection(_Section):
    """[intercept]: reading the POS's own receipts on their way to the printer."""

    enabled: bool = False
    pos_side: str = "pty:/run/tillgate/pos-printer"  # the POS software prints to this port
    printer_side: str = "printer"  # "printer": forward to [devices.printer]; or a device URL
    template: Annotated[str, StringConstraints(min_length=1)] = "default"
    # [intercept.templates.NAME]: role = regex (or a list of them); see docs/devices.md.
    templates: dict[Ident, dict[str, str | list[str]]] = Field(default_factory=dict)
    # The printer's code page table (ESC t n → codec) when it differs from Epson's,
    # e.g. { 17 = "cp866" }; used to read the POS's bytes.
    codepages: dict[int, str] = Field(default_factory=dict)
    # Seconds of silence from the POS after which a receipt with no cut is read anyway.
    idle_seconds: Annotated[float, Field(gt=0, le=600)] = 3.0

    _pos = field_validator("pos_side")(_device_url)

    @property
    def address(self) -> DeviceAddress:
        """Where the POS prints to: the agent's end of that port."""
        return parse_device_url(self.pos_side)

    @model_validator(mode="after")
    def _template_known(self) -> InterceptSection:
        from .templates import load_template  # the regexes are compiled (and checked) here

        try:
            for name in self.templates:
                load_template(name, self.templates)
            load_template(self.template, self.templates)
        except ConfigError as exc:  # reported with the others, under [intercept]
            raise ValueError(str(exc)) from exc
        return self

    @field_validator("codepages")
    @classmethod
    def _codecs(cls, v: dict[int, str]) -> dict[int, str]:
        for n, name in v.items():
            if not 0 <= n <= 255:
                raise ValueError(f"code page number {n} is not 0..255")
            try:
                codecs.lookup(name)
            except LookupError as exc:
                raise ValueError(f"{name!r} is not a known code page") from exc
        return v

    @field_validator("printer_side")
    @classmethod
    def _printer_side(cls, v: str) -> str:
        return v if v == "printer" else _device_url(v)


class LoggingSection(_Section):
    """[logging]: how much to log, and where (stderr or a rotated file)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    file: Path | None = None  # None: stderr

    _empty = field_validator("file", mode="before")(_empty_is_none)
    _paths = field_validator("file")(_resolve)

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v


class Config(_Section):
    """The whole till configuration."""

    till: TillSection
    pos_api: PosApiSection = _section()
    hq: HqSection = _section()
    standalone: StandaloneSection = _section()
    sync: SyncSection = _section()
    devices: DevicesSection = _section()
    intercept: InterceptSection = _section()
    logging: LoggingSection = _section()

    @property
    def standalone_mode(self) -> bool:
        """True for a single shop with no head office: the program comes from a local file."""
        return not self.hq.url

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        # Rules that tie keys together live here, where the message can name both keys.
        problems = []
        if not self.pos_api.loopback and len(self.pos_api.token) < MIN_REMOTE_TOKEN:
            # Anyone on the shop's network could otherwise spend a customer's points, and a
            # short token is guessed. The token itself is never echoed.
            why = "too short" if self.pos_api.token else "required"
            problems.append(
                f"pos_api.token: {why} when pos_api.host ({self.pos_api.host}) is not "
                f"loopback: at least {MIN_REMOTE_TOKEN} characters; "
                "`tillgate token new` prints one"
            )
        if self.sync.offline_after_seconds < self.sync.interval_seconds:
            # Otherwise the till would call itself offline between two ordinary syncs.
            problems.append(
                "sync.offline_after_seconds: must be >= sync.interval_seconds "
                f"({self.sync.interval_seconds})"
            )
        if self.standalone_mode and self.standalone.program_file is None:
            problems.append(
                "standalone.program_file: required when hq.url is empty "
                "(a till without head office needs its program file)"
            )
        if self.intercept.enabled:
            if self.intercept.pos_side == "none":
                problems.append("intercept.pos_side: must be a device URL when interception is on")
            if self.intercept.printer_side == "printer" and self.devices.printer.url == "none":
                problems.append(
                    "intercept.printer_side: forwards to devices.printer, whose url is 'none'"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self


# ---------------------------------------------------------------- loading


def resolve_config_path(arg: str | None, env: Mapping[str, str]) -> Path:
    """Which config file to use: ``--config``, else ``$TILLGATE_CONFIG``, else ./config.toml."""
    if arg:
        return Path(arg)
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    return Path(DEFAULT_CONFIG)


def load_config(path: Path, overrides: Mapping[str, object] | None = None) -> Config:
    """Read, override and validate a config file; raise ConfigError with one line per problem.

    ``overrides`` maps dotted keys to values (``{"pos_api.port": 0}``) and wins over the
    file, as command-line flags do.
    """
    path = Path(path)
    data = _read_toml(path)
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value, source=path)
    try:
        return Config.model_validate(data, context={"base": path.absolute().parent})
    except ValidationError as exc:
        raise ConfigError("\n".join(f"{path}: {line}" for line in validation_errors(exc))) from exc


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: file not found (pass --config FILE or set {ENV_CONFIG}; "
            "config.example.toml is a starting point)"
        ) from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a directory, not a config file") from exc
    except PermissionError as exc:
        raise ConfigError(f"{path}: cannot read: permission denied") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: the file is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def _set_dotted(data: dict[str, Any], dotted: str, value: object, *, source: Path) -> None:
    *tables, key = dotted.split(".")
    node = data
    for i, name in enumerate(tables):
        child = node.setdefault(name, {})
        if not isinstance(child, dict):
            where = ".".join(tables[: i + 1])
            raise ConfigError(f"{source}: {where}: must be a table to set {dotted}")
        node = child
    node[key] = value
