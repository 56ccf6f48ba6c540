"""The till's head-office credential: written by ``tillgate enroll``, read by sync.

The file (``[hq] credential_file``) holds ``{"hq", "url", "till", "store", "credential",
"coupon_key"}`` and is written with mode 0600, atomically (a temporary file renamed over
the old one), so a crash mid-write never leaves a till with half a credential.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from tillgate.core.errors import ConfigError

_HEX = re.compile(r"^[0-9a-fA-F]{32,256}$")


@dataclass(frozen=True, kw_only=True)
class Credential:
    """What enrolment gave this till: who it is at HQ and the secrets it signs and syncs with."""

    hq: str
    url: str
    till: str
    store: str
    credential: str
    coupon_key: str  # hex: the chain's coupon signing key

    @property
    def key(self) -> bytes:
        return bytes.fromhex(self.coupon_key)

    def __repr__(self) -> str:  # never print the secrets
        return f"Credential(hq={self.hq!r}, till={self.till!r}, store={self.store!r})"

    @classmethod
    def from_reply(cls, data: object, *, url: str) -> Credential:
        """The credential from HQ's enrolment reply; ValueError says what is wrong with it."""
        if not isinstance(data, dict):
            raise ValueError("the enrolment reply is not a JSON object")
        fields = {}
        for name in ("hq", "till", "store", "credential", "coupon_key"):
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"the enrolment reply has no {name}")
            fields[name] = value
        if not _HEX.match(fields["coupon_key"]):
            raise ValueError("the enrolment reply's coupon_key is not a hex key")
        return cls(url=url, **fields)


def save(path: Path, cred: Credential) -> None:
    """Write the credential file (0600), replacing any earlier one whole."""
    # A folder made here is private (it is usually the till's data dir); one that exists
    # is left as it is (it may be /etc/tillgate, or shared).
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(cred), f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # the umask may have narrowed it, never widened: be explicit
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load(path: Path) -> Credential:
    """Read the credential file; a missing or damaged one is a ConfigError saying what to do."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: this till is not enrolled with head office "
            "(run: tillgate enroll CODE --hq URL)"
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot read the head-office credential ({exc}); enroll the till again"
        ) from exc
    try:
        url = data.get("url") if isinstance(data, dict) else None
        return Credential.from_reply(data, url=url if isinstance(url, str) else "")
    except ValueError as exc:
        raise ConfigError(f"{path}: damaged credential file: {exc}; enroll the till again") from exc
