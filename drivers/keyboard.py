"""Keyboard-wedge scanners and card readers on Linux, read from evdev without python-evdev.

Most USB scanners and stripe readers pretend to be a keyboard. Reading them as text from
the desktop would depend on the keyboard layout (with a Russian layout ``;`` arrives as
``ж``) and would type into the POS window. So the agent opens the device node
(``/dev/input/by-id/…-event-kbd``), grabs it exclusively (``EVIOCGRAB``: nothing else sees
its keys) and turns key codes into characters with a fixed US map, whatever the layout.

:class:`KeySource` is the seam: something that yields ``(code, value)`` key events
(value 1 = press, 0 = release, 2 = auto-repeat). :class:`EvdevKeySource` reads
``struct input_event`` records from a device node; :class:`FakeKeySource` is fed by tests.
:class:`KeyboardPort` turns a key source into a read-only
:class:`~tillgate.drivers.base.BytePort`, so scanners and readers on evdev and on serial
lines go through the same framing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import select
import struct
import threading
from typing import Protocol

from tillgate.core.errors import DeviceError

KeyEvent = tuple[int, int]  # (key code, value)

# struct input_event { struct timeval time; __u16 type; __u16 code; __s32 value; }
# (native long for the timeval: 24 bytes on 64-bit Linux, 16 on 32-bit).
EVENT = struct.Struct("@llHHi")
EV_KEY = 1
EVIOCGRAB = 0x40044590  # _IOW('E', 0x90, int)

KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_CAPSLOCK = 42, 54, 58

# Linux input key codes → (unshifted, shifted) characters of a US keyboard.
_US: dict[int, tuple[str, str]] = {
    **{
        code: (ch, sh)
        for code, ch, sh in zip(range(2, 14), "1234567890-=", "!@#$%^&*()_+", strict=True)
    },
    **{code: (ch, ch.upper()) for code, ch in zip(range(16, 26), "qwertyuiop", strict=True)},
    26: ("[", "{"),
    27: ("]", "}"),
    **{code: (ch, ch.upper()) for code, ch in zip(range(30, 39), "asdfghjkl", strict=True)},
    39: (";", ":"),
    40: ("'", '"'),
    41: ("`", "~"),
    43: ("\\", "|"),
    **{code: (ch, ch.upper()) for code, ch in zip(range(44, 51), "zxcvbnm", strict=True)},
    51: (",", "<"),
    52: (".", ">"),
    53: ("/", "?"),
    57: (" ", " "),
    15: ("\t", "\t"),  # TAB
    28: ("\r", "\r"),  # ENTER
    96: ("\r", "\r"),  # KP ENTER
    55: ("*", "*"),  # keypad
    74: ("-", "-"),
    78: ("+", "+"),
    83: (".", "."),
    98: ("/", "/"),
    **{
        code: (ch, ch)
        for code, ch in zip((71, 72, 73, 75, 76, 77, 79, 80, 81, 82), "7894561230", strict=True)
    },
}


class KeySource(Protocol):
    """Key events from a keyboard-like device."""

    @property
    def name(self) -> str: ...

    def open(self) -> None: ...

    def read_keys(self, timeout: float | None) -> list[KeyEvent]:
        """The key events that arrived within ``timeout``; DeviceError when the device is gone."""
        ...

    def close(self) -> None: ...


class KeyMap:
    """Turns key events into characters with the US map, tracking shift and caps lock."""

    def __init__(self) -> None:
        self._shift: set[int] = set()
        self._caps = False

    def feed(self, code: int, value: int) -> str:
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            if value:
                self._shift.add(code)
            else:
                self._shift.discard(code)
            return ""
        if value == 0:
            return ""
        if code == KEY_CAPSLOCK:
            if value == 1:
                self._caps = not self._caps
            return ""
        chars = _US.get(code)
        if chars is None:
            return ""  # function keys, ctrl, alt: not part of a code
        plain, shifted = chars
        shift = bool(self._shift)
        if plain.isalpha() and self._caps:
            shift = not shift
        return shifted if shift else plain


class EvdevKeySource:
    """Key events read from a Linux input device node, grabbed exclusively.

    ``grab=False`` skips the exclusive grab (keys then also reach the desktop); a node
    that cannot be grabbed (not an input device) is a DeviceError saying so.
    """

    def __init__(self, path: str, *, grab: bool = True) -> None:
        self.path = path
        self.grab = grab
        self._fd: int | None = None
        self._partial = b""
        self._closed = threading.Event()

    @property
    def name(self) -> str:
        return f"evdev {self.path}"

    def open(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            why = {
                errno.ENOENT: "no such device (is it plugged in? check /dev/input/by-id/)",
                errno.EACCES: "permission denied (add the service user to the input group)",
            }.get(exc.errno or 0, exc.strerror or str(exc))
            raise DeviceError(f"{self.name} cannot be opened: {why}") from exc
        if self.grab:
            try:
                import fcntl  # POSIX only

                fcntl.ioctl(fd, EVIOCGRAB, 1)
            except (OSError, ImportError) as exc:
                os.close(fd)
                why = (
                    "another program has grabbed it"
                    if getattr(exc, "errno", None) == errno.EBUSY
                    else "not an input event device"
                )
                raise DeviceError(f"{self.name} cannot be grabbed exclusively: {why}") from exc
        self._fd, self._partial = fd, b""
        self._closed.clear()

    def read_keys(self, timeout: float | None) -> list[KeyEvent]:
        fd = self._fd
        if fd is None:
            raise DeviceError(f"{self.name} is not open")
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
            data = os.read(fd, EVENT.size * 64) if ready else b""
        except BlockingIOError:
            return []
        except (OSError, ValueError) as exc:  # ENODEV: unplugged
            raise DeviceError(f"{self.name} stopped answering: {exc}") from exc
        if ready and not data:
            # End of file: a FIFO without a writer or a recorded file. A real device never
            # says this; wait instead of spinning.
            self._closed.wait(timeout)
            return []
        data = self._partial + data
        whole = len(data) - len(data) % EVENT.size
        self._partial = data[whole:]
        return [
            (code, value)
            for _, _, kind, code, value in EVENT.iter_unpack(data[:whole])
            if kind == EV_KEY
        ]

    def close(self) -> None:
        fd, self._fd = self._fd, None
        self._closed.set()
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the node also releases the grab


class FakeKeySource:
    """A key source fed by tests: :meth:`press` types text as a US keyboard would."""

    def __init__(self, name: str = "fake keyboard") -> None:
        self._name = name
        self._queue: queue.Queue[KeyEvent | Exception] = queue.Queue()
        self.opened = 0

    @property
    def name(self) -> str:
        return self._name

    def open(self) -> None:
        self.opened += 1

    def keys(self, events: list[KeyEvent]) -> None:
        for event in events:
            self._queue.put(event)

    def press(self, text: str) -> None:
        """Queue the key events that type ``text`` (ASCII) on a US keyboard."""
        self.keys(key_events(text))

    def fail(self, error: Exception) -> None:
        """Make the next read raise ``error`` (a device that went away)."""
        self._queue.put(error)

    def read_keys(self, timeout: float | None) -> list[KeyEvent]:
        out: list[KeyEvent] = []
        try:
            item = self._queue.get(timeout=timeout)
            while True:
                if isinstance(item, Exception):
                    raise item
                out.append(item)
                item = self._queue.get_nowait()
        except queue.Empty:
            return out

    def close(self) -> None:
        pass


def key_events(text: str) -> list[KeyEvent]:
    """The press/release events a US keyboard sends to type ``text``."""
    reverse: dict[str, tuple[int, bool]] = {}
    for code, (plain, shifted) in _US.items():
        reverse.setdefault(plain, (code, False))
        reverse.setdefault(shifted, (code, plain != shifted))
    out: list[KeyEvent] = []
    for ch in text:
        if ch == "\n":
            ch = "\r"
        if ch not in reverse:
            raise ValueError(f"{ch!r} cannot be typed on a US keyboard")
        code, shift = reverse[ch]
        if shift:
            out.append((KEY_LEFTSHIFT, 1))
        out += [(code, 1), (code, 0)]
        if shift:
            out.append((KEY_LEFTSHIFT, 0))
    return out


class KeyboardPort:
    """A key source seen as a read-only byte port: the characters typed, as ASCII bytes."""

    def __init__(self, source: KeySource) -> None:
        self.source = source
        self._keys = KeyMap()

    @property
    def name(self) -> str:
        return self.source.name

    def open(self) -> None:
        self._keys = KeyMap()
        self.source.open()

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        events = self.source.read_keys(timeout)
        return "".join(self._keys.feed(code, value) for code, value in events).encode("ascii")

    def write(self, data: bytes, timeout: float = 5.0) -> None:
        raise DeviceError(f"{self.name}: a keyboard device cannot be written to")

    def close(self) -> None:
        self.source.close()
