"""Byte ports: one :class:`~tillgate.drivers.base.BytePort` per device URL scheme.

:func:`open_port` turns a parsed device URL into a port (not yet opened):

- ``serial``, ``loop``, ``socket``, ``rfc2217`` → :class:`SerialPort` (pyserial's
  ``serial_for_url``, so its URL handlers work as they do everywhere else);
- ``pty:/path`` → :class:`PtyPort`, a virtual serial port pair whose other end appears as a
  symlink at ``/path``; the POS software is pointed at that path. On Windows there are no
  ptys: install com0com, create a pair (``COM3``↔``COM4``), point the POS at one end and the
  agent at the other (``url = "COM4"``);
- ``tcp://host:port`` → :class:`TcpPort`; ``usb://VID:PID`` → :class:`UsbPort` (pyusb);
- ``file:///path`` → :class:`FilePort` (appends what is written, never answers);
- ``none`` → :class:`NonePort`; ``evdev:`` is a keyboard, see :mod:`.keyboard`.

Every failure leaves a port as :class:`DeviceError` with a message saying what to check;
foreign exceptions (OSError, SerialException, socket errors) are translated here. No write
blocks forever: each has a timeout, after which it raises.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import select
import socket
import threading
import time
from pathlib import Path
from typing import Any

import serial

from tillgate.core.config import DeviceAddress
from tillgate.core.errors import DeviceError

from .base import BytePort

CONNECT_TIMEOUT = 3.0  # seconds to reach a network device before calling it offline
DEFAULT_BAUDRATE = 9600
_TRUE = ("1", "true")


def open_port(address: DeviceAddress, *, connect_timeout: float = CONNECT_TIMEOUT) -> BytePort:
    """The byte port for ``address`` (call ``.open()`` on it); DeviceError for ``evdev:``."""
    scheme = address.scheme
    if scheme in ("serial", "loop", "socket", "rfc2217"):
        return SerialPort(address)
    if scheme == "pty":
        return PtyPort(address.path)
    if scheme == "tcp":
        return TcpPort(address.host, address.port, connect_timeout=connect_timeout)
    if scheme == "usb":
        return UsbPort(address.vendor_id, address.product_id)
    if scheme == "file":
        return FilePort(address.path)
    if scheme == "none":
        return NonePort()
    raise DeviceError(f"{address.url}: not a byte port (evdev: devices are keyboards)")


def _why(exc: BaseException) -> str:
    """A short human reason for an OS-level failure."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT:
        return "no such device (is it plugged in? check the path)"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied (on Linux add the service user to the dialout group)"
    if code == errno.EBUSY:
        return "busy (another program has it open)"
    if code == errno.ECONNREFUSED:
        return "connection refused (is the device on and listening on that port?)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class SerialPort:
    """A serial port or pyserial URL (``loop://``, ``socket://``, ``rfc2217://``)."""

    def __init__(self, address: DeviceAddress) -> None:
        self.address = address
        self._url = address.path if address.scheme == "serial" else address.url
        self._serial: serial.Serial | None = None
        self._timeout: float | None = -1.0  # what the open port is set to; -1: not yet
        self._write_timeout: float = -1.0

    @property
    def name(self) -> str:
        return f"serial {self._url}"

    def _settings(self) -> dict[str, Any]:
        p = self.address.params
        out: dict[str, Any] = {"baudrate": int(p.get("baudrate", DEFAULT_BAUDRATE))}
        if "bytesize" in p:
            out["bytesize"] = int(p["bytesize"])
        if "parity" in p:
            out["parity"] = p["parity"]
        if "stopbits" in p:
            out["stopbits"] = float(p["stopbits"]) if p["stopbits"] == "1.5" else int(p["stopbits"])
        for flag in ("rtscts", "xonxoff", "dsrdtr"):
            if flag in p:
                out[flag] = p[flag].lower() in _TRUE
        return out

    def open(self) -> None:
        try:
            port = serial.serial_for_url(self._url, do_not_open=True, **self._settings())
            port.timeout = 0.1
            port.write_timeout = 5.0
            port.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(f"{self.name} cannot be opened: {_why(exc)}") from exc
        self._serial = port
        self._timeout, self._write_timeout = 0.1, 5.0

    def _port(self) -> serial.Serial:
        if self._serial is None:
            raise DeviceError(f"{self.name} is not open")
        return self._serial

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        port = self._port()
        try:
            if timeout != self._timeout:  # setting it reconfigures the tty: only on change
                port.timeout = self._timeout = timeout
            # read(size) would wait out the whole timeout for `size` bytes; wait for the
            # first byte only, then take what has already arrived.
            data = bytearray(port.read(1))
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(f"{self.name} stopped answering: {_why(exc)}") from exc
        try:
            while data and len(data) < size and (waiting := port.in_waiting):
                data += port.read(min(waiting, size - len(data)))
        except (serial.SerialException, OSError):
            pass  # return what did arrive; the next read reports the failure
        return bytes(data)

    def write(self, data: bytes, timeout: float = 5.0) -> None:
        port = self._port()
        try:
            if timeout != self._write_timeout:
                port.write_timeout = self._write_timeout = timeout
            port.write(data)
            port.flush()
        except serial.SerialTimeoutException as exc:
            raise DeviceError(f"{self.name}: write timed out after {timeout:g} s") from exc
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(f"{self.name}: write failed: {_why(exc)}") from exc

    def close(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            with contextlib.suppress(Exception):  # closing a vanished device may fail
                port.close()


class PtyPort:
    """A virtual serial port: we hold the master end, ``path`` links to the slave end.

    The POS software opens ``path`` as if it were a serial port. We keep our own descriptor
    of the slave open, so the master never sees EIO when the POS closes and reopens its
    side (as many POS programs do around each receipt).
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_name = ""

    @property
    def name(self) -> str:
        return f"pty {self.path}"

    def open(self) -> None:
        if not hasattr(os, "openpty"):
            raise DeviceError(
                f"{self.name}: virtual ports need Linux or macOS; on Windows install com0com, "
                "create a port pair and use one end as a COM port"
            )
        import tty  # POSIX only: imported here so the module loads on Windows

        if self.path.exists() and not self.path.is_symlink():
            raise DeviceError(
                f"{self.name}: refusing to replace {self.path}: it is a real file, not a "
                "symlink this agent made (remove it or choose another path)"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            master, slave = os.openpty()
        except OSError as exc:
            raise DeviceError(f"{self.name} cannot be created: {_why(exc)}") from exc
        try:
            tty.setraw(slave)  # bytes pass unchanged: no echo, no CR/LF translation
            os.set_blocking(master, False)
            self._slave_name = os.ttyname(slave)
            # The POS software usually runs as another user: a new pty is its owner's only
            # (crw--w----, group tty). Make it read-write for the agent's group, whose
            # members (the POS's user) can then open the port; nobody else can.
            os.fchown(slave, -1, os.getegid())
            os.fchmod(slave, 0o660)
            # Replace a stale link from a previous run atomically: the POS never sees no link.
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._slave_name)
            os.replace(tmp, self.path)
        except OSError as exc:
            os.close(master)
            os.close(slave)
            raise DeviceError(f"{self.name} cannot be created: {_why(exc)}") from exc
        self._master, self._slave = master, slave

    def _fd(self) -> int:
        if self._master is None:
            raise DeviceError(f"{self.name} is not open")
        return self._master

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        fd = self._fd()
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return b""
            return os.read(fd, size)
        except BlockingIOError:
            return b""
        except (OSError, ValueError) as exc:
            raise DeviceError(f"{self.name} stopped answering: {_why(exc)}") from exc

    def write(self, data: bytes, timeout: float = 5.0) -> None:
        fd = self._fd()
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        try:
            while view:
                left = deadline - time.monotonic()
                _, ready, _ = select.select([], [fd], [], max(left, 0))
                if not ready:
                    raise DeviceError(
                        f"{self.name}: write timed out after {timeout:g} s "
                        "(nothing reads the other end)"
                    )
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    continue
        except (OSError, ValueError) as exc:
            raise DeviceError(f"{self.name}: write failed: {_why(exc)}") from exc

    def close(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
        # Remove the link only if it is still ours: a newer agent may have replaced it.
        with contextlib.suppress(OSError):
            if self._slave_name and os.readlink(self.path) == self._slave_name:
                self.path.unlink()


class TcpPort:
    """A network device on a raw TCP port (receipt printers listen on 9100)."""

    def __init__(self, host: str, port: int, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.host, self.port = host, port
        self.connect_timeout = connect_timeout
        self._sock: socket.socket | None = None

    @property
    def name(self) -> str:
        return f"tcp {self.host}:{self.port}"

    def open(self) -> None:
        try:
            self._sock = socket.create_connection(
                (self.host, self.port), timeout=self.connect_timeout
            )
        except OSError as exc:
            raise DeviceError(f"{self.name} cannot be reached: {_why(exc)}") from exc
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise DeviceError(f"{self.name} is not open")
        return self._sock

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        sock = self._socket()
        try:
            ready, _, _ = select.select([sock], [], [], timeout)
            if not ready:
                return b""
            data = sock.recv(size)
        except (OSError, ValueError) as exc:
            raise DeviceError(f"{self.name} stopped answering: {_why(exc)}") from exc
        if not data:
            raise DeviceError(f"{self.name} closed the connection")
        return data

    def write(self, data: bytes, timeout: float = 5.0) -> None:
        sock = self._socket()
        try:
            sock.settimeout(timeout)
            sock.sendall(data)
        except OSError as exc:
            raise DeviceError(f"{self.name}: write failed: {_why(exc)}") from exc

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class UsbPort:
    """A USB device (printer) by vendor and product id, through pyusb and libusb."""

    def __init__(self, vendor_id: int, product_id: int) -> None:
        self.vendor_id, self.product_id = vendor_id, product_id
        self._dev: Any = None
        self._out: Any = None
        self._in: Any = None
        self._usb: Any = None

    @property
    def name(self) -> str:
        return f"usb {self.vendor_id:04x}:{self.product_id:04x}"

    def open(self) -> None:
        try:
            # Imported by name: pyusb is optional (python-escpos' `usb` extra) and untyped.
            core = importlib.import_module("usb.core")
            util = importlib.import_module("usb.util")
        except ImportError as exc:
            raise DeviceError(
                f"{self.name}: USB devices need pyusb and libusb: pip install pyusb, and "
                "install libusb-1.0 (apt install libusb-1.0-0; on Windows use Zadig)"
            ) from exc
        try:
            dev = core.find(idVendor=self.vendor_id, idProduct=self.product_id)
            if dev is None:
                raise DeviceError(f"{self.name}: no such USB device (is it plugged in and on?)")
            with contextlib.suppress(NotImplementedError, core.USBError):
                if dev.is_kernel_driver_active(0):
                    dev.detach_kernel_driver(0)
            with contextlib.suppress(core.USBError):
                dev.set_configuration()
            intf = dev.get_active_configuration()[(0, 0)]

            def direction(want: int) -> Any:
                return util.find_descriptor(
                    intf,
                    custom_match=lambda e: util.endpoint_direction(e.bEndpointAddress) == want,
                )

            self._out = direction(util.ENDPOINT_OUT)
            self._in = direction(util.ENDPOINT_IN)
        except core.NoBackendError as exc:
            raise DeviceError(
                f"{self.name}: libusb is not installed (apt install libusb-1.0-0)"
            ) from exc
        except core.USBError as exc:
            raise DeviceError(f"{self.name} cannot be opened: {_why(exc)}") from exc
        if self._out is None:
            raise DeviceError(f"{self.name}: the device has no output endpoint")
        self._dev, self._usb = dev, core

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        if self._dev is None:
            raise DeviceError(f"{self.name} is not open")
        if self._in is None:
            time.sleep(timeout or 0)
            return b""
        try:
            return bytes(self._in.read(size, timeout=int((timeout or 0) * 1000) or 1))
        except self._usb.USBTimeoutError:
            return b""
        except self._usb.USBError as exc:
            raise DeviceError(f"{self.name} stopped answering: {_why(exc)}") from exc

    def write(self, data: bytes, timeout: float = 5.0) -> None:
        if self._dev is None:
            raise DeviceError(f"{self.name} is not open")
        try:
            self._out.write(data, timeout=int(timeout * 1000))
        except self._usb.USBError as exc:
            raise DeviceError(f"{self.name}: write failed: {_why(exc)}") from exc

    def close(self) -> None:
        dev, self._dev = self._dev, None
        if dev is not None:
            with contextlib.suppress(Exception):
                importlib.import_module("usb.util").dispose_resources(dev)


class FilePort:
    """Appends everything written to a file: a printer for tests and demos; never answers."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._file: Any = None
        self._closed = threading.Event()

    @property
    def name(self) -> str:
        return f"file {self.path}"

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
        except OSError as exc:
            raise DeviceError(f"{self.name} cannot be opened: {_why(exc)}") from exc
        self._closed.clear()

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        if self._file is None:
            raise DeviceError(f"{self.name} is not open")
        self._closed.wait(timeout)  # nothing ever arrives; do not let a reader spin
        return b""

    def write(self, data: bytes, timeout: float = 5.0) -> None:
        if self._file is None:
            raise DeviceError(f"{self.name} is not open")
        try:
            self._file.write(data)
            self._file.flush()
        except OSError as exc:
            raise DeviceError(f"{self.name}: write failed: {_why(exc)}") from exc

    def close(self) -> None:
        f, self._file = self._file, None
        self._closed.set()
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()


class NonePort:
    """``url = "none"``: accepts and drops writes, never reads anything."""

    def __init__(self) -> None:
        self._closed = threading.Event()

    @property
    def name(self) -> str:
        return "none"

    def open(self) -> None:
        self._closed.clear()

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        self._closed.wait(timeout)
        return b""

    def write(self, data: bytes, timeout: float = 5.0) -> None:
        pass

    def close(self) -> None:
        self._closed.set()
