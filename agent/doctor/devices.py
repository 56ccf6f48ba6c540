"""Checks of the POS API port and the devices: printer, scanner, card reader, interception.

A running agent holds the device ports, and opening one beside it would steal its reads
(a swipe gone to doctor is a swipe the till never saw). So doctor first asks the POS API's
``/healthz`` on the configured host and port: when the agent answers, each device's state is
read from its ``/v1/status``; when nothing listens there, the port must be free for
``tillgate run``, and each configured device is opened, asked (a printer: ``DLE EOT``) and
closed at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tillgate.core.config import Config, DeviceAddress, PrinterSection, parse_device_url
from tillgate.core.errors import DeviceError, TillgateError

from .files import writable
from .headoffice import net_why
from .report import Check, fail, ok, skip, warn

if TYPE_CHECKING:
    from tillgate.drivers.base import BytePort
    from tillgate.drivers.printer_status import PrinterState

AGENT_TIMEOUT = 1.0  # the agent's own POS API, on this machine
DEVICE_TIMEOUT = 2.0  # connecting to a network device
STATUS_TIMEOUT = 0.5  # a printer's answer to one DLE EOT query

BUSY_FIX = "stop the program that holds the port, or set [pos_api] port to a free one"
PAPER_FIX = "load a new paper roll and close the cover"
COVER_FIX = "close the printer's cover"
ERROR_FIX = "switch the printer off and on; clear any paper jammed at the cutter"
LOW_FIX = "have a new roll ready"
SILENT_FIX = (
    "switch the printer on and check its cable; a model that does not answer DLE EOT needs "
    "status_poll = false in [devices.printer]"
)
_NOT_CONFIGURED = 'not configured (url = "none")'
_INTERCEPT_OFF = "off ([intercept] enabled = false)"


def devices(config: Config) -> Iterator[Check]:
    """The pos api line, then one line per device."""
    check, status = probe_agent(config)
    yield check
    if status is None:
        yield from _opened(config)
    elif isinstance(status.get("devices"), dict):
        yield from _reported_all(config, status["devices"])
    else:
        for name, _, _ in _roles(config):
            yield skip(name, f"not checked: the agent runs, but {status.get('error')}")


def probe_agent(config: Config) -> tuple[Check, dict[str, Any] | None]:
    """The pos api line, and the running agent's ``/v1/status`` (None: it does not run)."""
    from tillgate.core.serving import bind

    host, port = config.pos_api.host, config.pos_api.port
    if port == 0:
        return warn(
            "pos api",
            "pos_api.port = 0 (any free port): cannot tell whether the agent runs; the "
            "devices are opened directly",
            "stop the agent before running doctor, or give it a fixed port",
        ), None
    connect = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    base = f"http://{f'[{connect}]' if ':' in connect else connect}:{port}"
    token = config.pos_api.token
    # trust_env off: no proxy from the environment may stand between us and this machine.
    with httpx.Client(
        base_url=base,
        timeout=AGENT_TIMEOUT,
        trust_env=False,
        headers={"Authorization": f"Bearer {token}"} if token else {},
    ) as http:
        try:
            health = http.get("/healthz")
        except httpx.ConnectError:
            try:
                bind(host, port).close()  # what `tillgate run` does first
            except TillgateError as exc:
                return fail("pos api", str(exc), BUSY_FIX), None
            return ok(
                "pos api", f"{host}:{port} free for `tillgate run` (the agent is not running)"
            ), None
        except httpx.HTTPError as exc:
            why = net_why(exc, AGENT_TIMEOUT)
            return fail("pos api", f"{base}: the port is held, but {why}", BUSY_FIX), None
        if not _is_agent(health):
            detail = f"{base}: another program answers there (HTTP {health.status_code})"
            return fail("pos api", detail, BUSY_FIX), None
        try:
            reply = http.get("/v1/status")
            why = f"its /v1/status answered HTTP {reply.status_code}"
            status = reply.json() if reply.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            why, status = f"its /v1/status failed: {exc}", None
    if not isinstance(status, dict):
        fix = "see the agent's log"
        if "HTTP 401" in why:
            fix = "[pos_api] token in this config must be the running agent's"
        return fail("pos api", f"agent running at {base}, but {why}", fix), {"error": why}
    detail = (
        f"agent running at {base} (till {status.get('till')}, version {status.get('version')}); "
        "the devices below are as it reports them (it holds their ports)"
    )
    if status.get("till") != config.till.id:
        return warn(
            "pos api",
            f"{detail}; that is not this config's till {config.till.id}",
            "is the agent running with another config? check its --config / TILLGATE_CONFIG",
        ), status
    return ok("pos api", detail), status


def _is_agent(reply: httpx.Response) -> bool:
    # The agent's /healthz says {"status": "ok"}; head office's adds its id.
    try:
        return reply.status_code == 200 and reply.json() == {"status": "ok"}
    except ValueError:
        return False


def _roles(config: Config) -> list[tuple[str, DeviceAddress, str]]:
    """Each device line's name, its address and the config key the address is set by."""
    d = config.devices
    out = [
        ("printer", d.printer.address, "[devices.printer] url"),
        ("scanner", d.scanner.address, "[devices.scanner] url"),
        ("card reader", d.card_reader.address, "[devices.card_reader] url"),
    ]
    if config.intercept.enabled:
        out.append(("intercept", config.intercept.address, "[intercept] pos_side"))
        side = config.intercept.printer_side
        if side != "printer":
            out.append(("intercept printer", parse_device_url(side), "[intercept] printer_side"))
    return out


# ---------------------------------------------------------------- the agent does not run


def _opened(config: Config) -> Iterator[Check]:
    """Open every configured device: nothing holds them."""
    printer = config.devices.printer
    for name, address, key in _roles(config):
        if name == "printer":
            yield _printer(name, printer, key)
        elif name == "intercept printer":
            other = {**printer.model_dump(), "url": config.intercept.printer_side}
            yield _printer(name, PrinterSection.model_validate(other), key)
        else:
            yield _input(name, address, key)
    if not config.intercept.enabled:
        yield ok("intercept", _INTERCEPT_OFF)


def _port(address: DeviceAddress) -> BytePort:
    from tillgate.drivers.keyboard import EvdevKeySource, KeyboardPort
    from tillgate.drivers.ports import open_port

    if address.scheme == "evdev":
        return KeyboardPort(EvdevKeySource(address.path))
    return open_port(address, connect_timeout=DEVICE_TIMEOUT)


def _file(name: str, address: DeviceAddress, key: str) -> Check:
    # Opening a file: port would create the file: check that it could be, instead.
    return writable(name, Path(address.path).parent, what=f"file {address.path}: dir", key=key)


def _printer(name: str, section: PrinterSection, key: str) -> Check:
    from tillgate.drivers.printer import default_status_poll

    address = section.address
    port = _open_port(name, address, key)
    if isinstance(port, Check):
        return port
    try:
        polled = section.status_poll
        if not (default_status_poll(address.scheme) if polled is None else polled):
            return ok(name, f"{port.name} opens (status not asked: status_poll is off)")
        state = ask_status(port)
    except DeviceError as exc:
        return fail(name, str(exc), device_fix(address, key))
    finally:
        port.close()
    return _printer_state(name, port.name, state)


def ask_status(port: BytePort, timeout: float = STATUS_TIMEOUT) -> PrinterState | None:
    """The printer's answers to ``DLE EOT 1..4``, decoded; None if it answered nothing."""
    from tillgate.drivers.printer_status import QUERIES, decode, is_status_answer

    port.read(4096, timeout=0)  # whatever was waiting is no answer to us
    answers: dict[int, int] = {}
    for n, query in QUERIES.items():
        port.write(query, timeout=1.0)
        deadline = time.monotonic() + timeout
        got = None
        while got is None and (left := deadline - time.monotonic()) > 0:
            got = next((b for b in port.read(64, timeout=left) if is_status_answer(b)), None)
        if got is None:
            break
        answers[n] = got
    return decode(answers) if answers else None


def _printer_state(name: str, port: str, state: PrinterState | None) -> Check:
    if state is None:
        return fail(
            name, f"{port} opens, but the printer does not answer status queries", SILENT_FIX
        )
    if state.cover_open:
        return fail(name, f"{port}: cover open", COVER_FIX)
    if state.paper_end:
        return fail(name, f"{port}: out of paper", PAPER_FIX)
    if state.error:
        return fail(name, f"{port}: the printer reports an error ({state.error})", ERROR_FIX)
    if state.paper_near_end:
        return warn(name, f"{port}: online, paper running low", LOW_FIX)
    return ok(name, f"{port}: online, paper ok")


def _open_port(name: str, address: DeviceAddress, key: str) -> BytePort | Check:
    """The device's port, opened; or the check that ends here (not configured, a file, or
    the port does not open)."""
    if address.scheme == "none":
        return ok(name, _NOT_CONFIGURED)
    if address.scheme == "file":
        return _file(name, address, key)
    port = _port(address)
    try:
        port.open()
    except DeviceError as exc:
        return fail(name, str(exc), device_fix(address, key))
    return port


def _input(name: str, address: DeviceAddress, key: str) -> Check:
    port = _open_port(name, address, key)
    if isinstance(port, Check):
        return port
    port.close()
    if name == "intercept":
        return ok(name, f"{port.name} can be made (the POS prints there while the agent runs)")
    return ok(name, f"{port.name} opens (reads are not tried: swipe or scan with the agent on)")


# ---------------------------------------------------------------- the agent runs


def _reported_all(config: Config, devices: dict[str, Any]) -> Iterator[Check]:
    """Each device line from the running agent's ``/v1/status`` ``devices`` section."""
    where = {name: (address, key) for name, address, key in _roles(config)}
    for name, role in (
        ("printer", "printer"),
        ("scanner", "scanner"),
        ("card reader", "card_reader"),
    ):
        yield _reported(name, _dict(devices.get(role)), *where[name])
    intercept = _dict(devices.get("intercept"))
    if intercept.get("status", "disabled") == "disabled":
        if config.intercept.enabled:
            yield warn(
                "intercept",
                "off in the running agent, on in this config",
                "restart the agent to apply the config",
            )
        else:
            yield ok("intercept", _INTERCEPT_OFF)
        return
    address, key = where.get("intercept", (config.intercept.address, "[intercept] pos_side"))
    yield _reported("intercept", intercept, address, key)
    if isinstance(intercept.get("printer"), dict):
        side = config.intercept.printer_side
        address = parse_device_url("none" if side == "printer" else side)
        yield _reported(
            "intercept printer", intercept["printer"], address, "[intercept] printer_side"
        )


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _reported(name: str, state: dict[str, Any], address: DeviceAddress, key: str) -> Check:
    """A device as the running agent reports it (its hint texts are the cashier's language;
    the line is written from the status and the port's error)."""
    status = str(state.get("status", "unknown"))
    error = str(state.get("error") or "")
    queued = int(state.get("queued") or 0)
    said = (f", {queued} print jobs waiting" if queued else "") + " (the running agent's view)"
    if status == "not_configured":
        return ok(name, _NOT_CONFIGURED)
    if status == "online":
        if state.get("paper_near_end"):
            return warn(name, f"online, paper running low{said}", LOW_FIX)
        return ok(name, f"online{said}")
    if status == "starting":
        return warn(name, f"connecting{said}", "run doctor again in a few seconds")
    if status == "offline" and error:
        return fail(name, f"offline: {error}{said}", device_fix(address, key))
    known = {
        "offline": ("offline: the printer does not answer status queries", SILENT_FIX),
        "paper_out": ("out of paper", PAPER_FIX),
        "cover_open": ("cover open", COVER_FIX),
        "error": ("the printer reports an error", ERROR_FIX),
        "stopped": ("stopped", "restart the agent"),
    }
    if status in known:
        what, fix = known[status]
        return fail(name, f"{what}{said}", fix)
    return warn(name, f"status {status!r}{said}", "see the agent's log")


def device_fix(address: DeviceAddress, key: str) -> str:
    """What to check when a device does not open, by the kind of port."""
    scheme = address.scheme
    if scheme == "serial" and address.path.upper().startswith("COM"):
        return f"check the cable, and the COM port in Device Manager against {key}"
    if scheme == "serial":
        return (
            f"check the cable and the device path in {key} (`ls -l /dev/serial/by-id/` lists "
            "serial devices by a name that does not change: use that path); add the agent's "
            "user to the dialout group (`usermod -aG dialout USER`, then log in again)"
        )
    if scheme == "pty":
        return (
            f"the directory of the path in {key} must be writable by the agent's user, and the "
            "path must not be a real file; on Windows pair two COM ports with com0com instead"
        )
    if scheme == "tcp":
        return (
            f"check the device is on and on the network (`ping {address.host}`), and its "
            f"address and port in {key}"
        )
    if scheme == "usb":
        return (
            f"check the cable, and that VID:PID in {key} matches `lsusb`; USB printers need "
            "pyusb and libusb (apt install libusb-1.0-0)"
        )
    if scheme == "evdev":
        return (
            f"check the path in {key} (`ls -l /dev/input/by-id/`), and add the agent's user "
            "to the input group"
        )
    return f"check the address in {key}"
