"""The coupon keys on disk: one 0600 file per key in a 0700 folder, never in a database.

A folder (the till's ``<data dir>/keys``, head office's ``<data dir>/keys``) holds::

    coupon-1.key       the key's 32 bytes as hex, one line
    coupon-2.key
    coupon-1.revoked   key 1 is revoked (its .key file is gone)

A key's file never changes once written: a second, different key under the same id is
refused. Revocation removes the key and leaves the marker, so a revoked key can neither
sign nor come back. The folder is read again only when its listing changes, so asking for
the keys on every coupon costs one directory read.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from .errors import StoreError
from .files import private_dir, private_file, write_secret
from .rules.coupons import CouponKeys, check_key_id, fingerprint

_NAME = re.compile(r"^coupon-([0-9]{1,2})\.(key|revoked)$")
_HEX = re.compile(r"^[0-9a-f]{32,256}$")


class KeyFolder:
    """A folder of coupon key files; a :class:`~tillgate.core.rules.coupons.KeySource`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: tuple[frozenset[str], CouponKeys] | None = None

    def __repr__(self) -> str:
        return f"KeyFolder({str(self.path)!r})"

    def key_file(self, key_id: int) -> Path:
        return self.path / f"coupon-{check_key_id(key_id)}.key"

    def coupon_keys(self) -> CouponKeys:
        """The keys in the folder now (an empty set when there is no folder yet)."""
        try:
            names = frozenset(p.name for p in self.path.iterdir() if _NAME.match(p.name))
        except FileNotFoundError:
            names = frozenset()
        except OSError as exc:
            raise StoreError(f"cannot read the coupon keys in {self.path}: {exc}") from exc
        with self._lock:
            if self._seen is not None and self._seen[0] == names:
                return self._seen[1]
        keys: dict[int, bytes] = {}
        revoked: set[int] = set()
        for name in names:
            match = _NAME.match(name)
            assert match is not None
            key_id = int(match.group(1))
            if not 1 <= key_id <= 31:
                continue  # no code can name it
            if match.group(2) == "revoked":
                revoked.add(key_id)
            else:
                key = self.read(key_id)
                if key is not None:
                    keys[key_id] = key
        ring = CouponKeys(
            keys={k: v for k, v in keys.items() if k not in revoked}, revoked=frozenset(revoked)
        )
        with self._lock:
            self._seen = (names, ring)
        return ring

    def read(self, key_id: int) -> bytes | None:
        """Key ``key_id``'s bytes, None if the folder has no such key file."""
        path = self.key_file(key_id)
        try:
            text = path.read_text(encoding="ascii").strip().lower()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read the coupon key file {path}: {exc}") from exc
        if not _HEX.match(text):
            # Never quote the file: it is a secret, however damaged.
            raise StoreError(
                f"the coupon key file {path} is damaged (not a hex key); restore it from a "
                "backup, or (on a till) delete it and let head office send it again"
            )
        return bytes.fromhex(text)

    def add(self, key_id: int, key: bytes) -> bool:
        """Keep ``key`` as key ``key_id``; True if it is new here, False if already kept.

        A different key under an id the folder knows is refused (StoreError): codes
        signed with the first would stop verifying. So is a key the folder has revoked.
        """
        CouponKeys(keys={key_id: key})  # validates the id and the key
        if (self.path / f"coupon-{key_id}.revoked").exists():
            raise StoreError(f"coupon key {key_id} is revoked in {self.path}; it cannot return")
        known = self.read(key_id)
        if known is not None:
            if known != key:
                raise StoreError(
                    f"coupon key {key_id} in {self.path} (fingerprint {fingerprint(known)}) "
                    f"differs from the one given (fingerprint {fingerprint(key)}): a key id "
                    "names one key for good"
                )
            return False
        write_secret(self.key_file(key_id), key.hex().encode("ascii") + b"\n")
        return True

    def revoke(self, key_id: int) -> bool:
        """Mark key ``key_id`` revoked and delete its key; True if it was not already."""
        check_key_id(key_id)
        marker = self.path / f"coupon-{key_id}.revoked"
        if marker.exists():
            self.key_file(key_id).unlink(missing_ok=True)
            return False
        private_dir(self.path)
        private_file(marker)
        self.key_file(key_id).unlink(missing_ok=True)
        return True
