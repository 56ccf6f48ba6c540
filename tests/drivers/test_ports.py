"""Byte ports for every device URL scheme, with real ptys, sockets and files."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tillgate.core.config import parse_device_url
from tillgate.core.errors import DeviceError
from tillgate.drivers.base import BytePort
from tillgate.drivers.ports import (
    FilePort,
    NonePort,
    PtyPort,
    SerialPort,
    TcpPort,
    UsbPort,
    open_port,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="ptys are POSIX")


def free_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    return sock


def read_until(port: BytePort, want: bytes, timeout: float = 5.0) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while want not in got and time.monotonic() < deadline:
        got += port.read(4096, 0.05)
    return got


def read_fd(fd: int, want: int, timeout: float = 5.0) -> bytes:
    import select

    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.05)[0]:
            got += os.read(fd, 4096)
    return got


@pytest.fixture
def pty_port(tmp_path: Path) -> Iterator[PtyPort]:
    port = PtyPort(str(tmp_path / "run" / "tillgate" / "pos-printer"))
    port.open()
    yield port
    port.close()


def test_open_port_picks_the_class_for_each_scheme(tmp_path: Path) -> None:
    cases = {
        "serial:///dev/ttyUSB0?baudrate=38400": SerialPort,
        "COM3": SerialPort,
        "loop://": SerialPort,
        "socket://127.0.0.1:7000": SerialPort,
        "rfc2217://127.0.0.1:7000": SerialPort,
        "pty:/run/x": PtyPort,
        "tcp://10.0.0.5:9100": TcpPort,
        "usb://04b8:0202": UsbPort,
        f"file://{tmp_path}/p.bin": FilePort,
        "none": NonePort,
    }
    for url, cls in cases.items():
        port = open_port(parse_device_url(url))
        assert isinstance(port, cls), url
        assert isinstance(port, BytePort)
    with pytest.raises(DeviceError, match="evdev"):
        open_port(parse_device_url("evdev:/dev/input/event3"))


def test_loop_echoes() -> None:
    port = open_port(parse_device_url("loop://?"))
    port.open()
    try:
        port.write(b"\x1b@hello")
        assert read_until(port, b"hello") == b"\x1b@hello"
        assert port.read(10, 0.01) == b""
    finally:
        port.close()


def test_serial_on_a_real_pty_with_settings() -> None:
    master, slave = os.openpty()
    try:
        url = f"serial://{os.ttyname(slave)}?baudrate=38400&bytesize=8&parity=N&stopbits=1"
        port = open_port(parse_device_url(url))
        port.open()
        try:
            os.write(master, b";2900000000011=2812?\r")
            assert read_until(port, b"\r") == b";2900000000011=2812?\r"
            port.write(b"ok")
            assert read_fd(master, 2) == b"ok"
        finally:
            port.close()
    finally:
        os.close(master)
        os.close(slave)


def test_missing_serial_device_is_a_clear_error(tmp_path: Path) -> None:
    port = open_port(parse_device_url(f"serial://{tmp_path}/ttyUSB9"))
    with pytest.raises(DeviceError, match=r"cannot be opened: no such device \(is it plugged"):
        port.open()
    with pytest.raises(DeviceError, match="not open"):
        port.read()


def test_pty_pair_both_ways(pty_port: PtyPort, tmp_path: Path) -> None:
    link = pty_port.path
    assert link.is_symlink() and os.readlink(link).startswith("/dev/")
    pos = os.open(link, os.O_RDWR | os.O_NOCTTY)  # what the POS software does
    try:
        os.write(pos, b"\x1b@receipt\r\n")  # raw: no CR/LF translation on the way
        assert read_until(pty_port, b"\n") == b"\x1b@receipt\r\n"
        pty_port.write(b"\x10\x04\x01")
        assert read_fd(pos, 3) == b"\x10\x04\x01"
    finally:
        os.close(pos)
    # The POS closed its side: we see nothing, not an error, and it can come back.
    assert pty_port.read(64, 0.05) == b""
    pos = os.open(link, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(pos, b"again")
        assert read_until(pty_port, b"again") == b"again"
    finally:
        os.close(pos)


def test_pty_is_open_to_the_agents_group_and_nobody_else(pty_port: PtyPort) -> None:
    # The POS software runs as its own user, in the agent's group (docs/install.md).
    device = os.path.realpath(pty_port.path)
    st = os.stat(device)
    assert st.st_mode & 0o777 == 0o660 and st.st_gid == os.getegid()
    if os.geteuid() != 0:
        return  # only root can start a process as another user
    import subprocess

    opens = ["/bin/sh", "-c", f"printf hi > {device}"]  # a shell: nobody may run anything
    nobody = 65534
    member = subprocess.run(
        opens, user=nobody, group=nobody, extra_groups=[os.getegid()], capture_output=True
    )
    assert member.returncode == 0, member.stderr
    assert read_until(pty_port, b"hi") == b"hi"
    stranger = subprocess.run(
        opens, user=nobody, group=nobody, extra_groups=[], capture_output=True, text=True
    )
    assert stranger.returncode != 0 and "Permission denied" in stranger.stderr


def test_pty_close_removes_its_link(tmp_path: Path) -> None:
    port = PtyPort(str(tmp_path / "link"))
    port.open()
    assert (tmp_path / "link").is_symlink()
    port.close()
    assert not (tmp_path / "link").exists() and not (tmp_path / "link").is_symlink()
    port.close()  # twice is harmless


def test_pty_replaces_a_stale_link_but_not_a_file(tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    stale.symlink_to("/dev/pts/nonexistent")
    port = PtyPort(str(stale))
    port.open()
    try:
        assert os.readlink(stale) != "/dev/pts/nonexistent"
    finally:
        port.close()

    real = tmp_path / "real"
    real.write_text("keep me")
    with pytest.raises(DeviceError, match=r"refusing to replace .*real file"):
        PtyPort(str(real)).open()
    assert real.read_text() == "keep me"


def test_pty_in_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DeviceError, match="cannot be created"):
        PtyPort(str(blocker / "sub" / "link")).open()


def test_pty_write_times_out_when_nobody_reads(pty_port: PtyPort) -> None:
    with pytest.raises(DeviceError, match=r"write timed out after 0.2 s \(nothing reads"):
        pty_port.write(b"x" * (4 << 20), timeout=0.2)


def test_tcp_both_ways_and_peer_close() -> None:
    server = free_socket()
    host, port_no = server.getsockname()
    port = open_port(parse_device_url(f"tcp://{host}:{port_no}"))
    port.open()
    conn, _ = server.accept()
    try:
        port.write(b"print")
        assert conn.recv(5) == b"print"
        conn.sendall(b"\x12")
        assert read_until(port, b"\x12") == b"\x12"
        conn.close()
        with pytest.raises(DeviceError, match="closed the connection"):
            read_until(port, b"never")
    finally:
        port.close()
        server.close()


def test_tcp_refused_on_a_closed_port() -> None:
    server = free_socket()
    host, port_no = server.getsockname()
    server.close()  # nobody listens there now
    with pytest.raises(DeviceError, match=f"tcp {host}:{port_no} cannot be reached: .*refused"):
        TcpPort(host, port_no, connect_timeout=2).open()


def test_socket_url_through_pyserial() -> None:
    server = free_socket()
    host, port_no = server.getsockname()
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            # pyserial empties its input when it opens a socket: answer once it is open.
            received.append(conn.recv(16))
            conn.sendall(b"4600000000008\r")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = open_port(parse_device_url(f"socket://{host}:{port_no}"))
    port.open()
    try:
        port.write(b"hi")
        assert read_until(port, b"\r") == b"4600000000008\r"
        thread.join(5)
        assert received == [b"hi"]
    finally:
        port.close()
        server.close()


def test_usb_without_pyusb_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import usb.core` fail, as on a till without pyusb.
    monkeypatch.setitem(sys.modules, "usb", None)
    monkeypatch.setitem(sys.modules, "usb.core", None)
    port = open_port(parse_device_url("usb://04b8:0202"))
    with pytest.raises(DeviceError, match="usb 04b8:0202: USB devices need pyusb and libusb"):
        port.open()
    with pytest.raises(DeviceError, match="not open"):
        port.write(b"x")


def test_usb_printer_that_is_not_there_is_a_clear_device_error() -> None:
    # pyusb is installed with the agent; this machine has no such printer (and maybe no
    # libusb): either way a DeviceError that says which, never a crash.
    port = open_port(parse_device_url("usb://04b8:0202"))
    with pytest.raises(DeviceError, match=r"usb 04b8:0202: (libusb is not installed|no such USB)"):
        port.open()


def test_file_port_appends_and_never_answers(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "printer.bin"
    port = open_port(parse_device_url(f"file://{path}"))
    port.open()
    port.write(b"one")
    port.close()
    port.open()
    port.write(b"two")
    assert port.read(10, 0.01) == b""
    port.close()
    assert path.read_bytes() == b"onetwo"


def test_file_port_on_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match=f"file {tmp_path} cannot be opened"):
        FilePort(str(tmp_path)).open()


def test_none_port_drops_everything() -> None:
    port = NonePort()
    port.open()
    port.write(b"anything")
    assert port.read(10, 0.01) == b""
    port.close()
