"""The one error tree of tillgate.

Every foreseeable failure is raised as a subclass of :class:`TillgateError`; foreign
exceptions (sqlite3, pydantic, OSError, httpx) are translated at the boundary with
``raise ... from exc``. The CLI alone maps errors to exit codes; the POS API alone maps
them to HTTP status codes (each API error carries its stable snake_case ``code``).

    TillgateError
    ├── ConfigError                 bad config file, bad flag, bad program file
    │   └── ProgramError            program/promotions file does not validate (lists every error)
    ├── StoreError                  the SQLite cache cannot be opened, migrated or written
    │   └── StorageFullError        disk full / database full: nothing was written
    ├── DeviceError                 a device cannot be opened or stopped answering
    ├── SyncError                   head office unreachable, refused, or answered nonsense
    ├── RulesError                  the rules engine was given something it cannot evaluate
    │   └── CouponInvalid           a coupon code is malformed or its signature does not verify
    └── ApiError                    a POS API request that must be refused (has code + status)
        ├── InvalidRequest          400 invalid_request
        ├── CardFormatError         400 invalid_card
        ├── Unauthorized            401 unauthorized
        ├── CardNotFound            404 card_not_found
        ├── CardBlocked             403 card_blocked
        ├── ReceiptNotFound         404 receipt_not_found
        ├── ReceiptAlreadyConfirmed 409 receipt_already_confirmed
        ├── ReceiptCancelled        409 receipt_cancelled
        ├── RefundExceedsReceipt    409 refund_exceeds_receipt
        ├── InsufficientPoints      409 insufficient_points
        ├── OfflineLimit            409 offline_limit
        └── PayloadTooLarge         413 payload_too_large
"""

from __future__ import annotations

from collections.abc import Sequence


class TillgateError(Exception):
    """Root of every error tillgate raises on purpose."""


class ConfigError(TillgateError):
    """The configuration (file, environment or flags) is wrong; the message says how to fix it."""


class ProgramError(ConfigError):
    """A program/promotions file does not validate. ``errors`` lists every problem by path."""

    def __init__(self, errors: Sequence[str], *, source: str = "program") -> None:
        self.errors = list(errors)
        self.source = source
        shown = "; ".join(self.errors[:10])
        more = f" (+{len(self.errors) - 10} more)" if len(self.errors) > 10 else ""
        super().__init__(f"{source} is invalid: {shown}{more}")


class StoreError(TillgateError):
    """The local SQLite store cannot be opened, migrated or written."""


class StorageFullError(StoreError):
    """The disk or database is full; the transaction was rolled back and nothing was written."""


class DeviceError(TillgateError):
    """A device cannot be opened, or stopped answering."""


class SyncError(TillgateError):
    """Head office is unreachable, refused the request, or answered something unusable."""


class RulesError(TillgateError):
    """The rules engine was given input it cannot evaluate."""


class CouponInvalid(RulesError):
    """A coupon code is malformed or forged; the message never repeats a secret."""


class ApiError(TillgateError):
    """A POS API request that must be refused. ``status`` and ``code`` are part of the contract."""

    status: int = 400
    code: str = "invalid_request"

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(ApiError):
    status, code = 400, "invalid_request"


class CardFormatError(ApiError):
    """What the POS or reader sent is not a card; the message never holds the full number."""

    status, code = 400, "invalid_card"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class CardBlocked(ApiError):
    status, code = 403, "card_blocked"


class CardNotFound(ApiError):
    status, code = 404, "card_not_found"


class ReceiptNotFound(ApiError):
    status, code = 404, "receipt_not_found"


class ReceiptAlreadyConfirmed(ApiError):
    status, code = 409, "receipt_already_confirmed"


class ReceiptCancelled(ApiError):
    status, code = 409, "receipt_cancelled"


class RefundExceedsReceipt(ApiError):
    status, code = 409, "refund_exceeds_receipt"


class InsufficientPoints(ApiError):
    status, code = 409, "insufficient_points"


class OfflineLimit(ApiError):
    status, code = 409, "offline_limit"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"
