"""The one error tree of tillgate.

Every foreseeable failure is raised as a subclass of :class:`TillgateError`; foreign
exceptions (sqlite3, pydantic, OSError, httpx) are translated at the boundary with
``raise ... from exc``. The CLI alone maps errors to exit codes; the POS API alone maps
them to HTTP status codes (each API error carries its stable snake_case ``code``).

    TillgateError
    ├── ConfigError                 bad config file, bad flag, bad program file
    │   ├── ProgramError            program/promotions file does not validate (lists every error)
    │   ├── CardsFileError          a cards CSV does not validate (lists every bad row)
    │   └── ProductsError           a product list CSV does not validate (every problem by row)
    ├── StoreError                  the SQLite cache cannot be opened, migrated or written
    │   └── StorageFullError        disk full / database full: nothing was written
    ├── DeviceError                 a device cannot be opened or stopped answering
    ├── SyncError                   head office unreachable, refused, or answered nonsense
    │   ├── HqUnreachable           no answer from HQ (refused connection, DNS, TLS, timeout)
    │   ├── HqRefused               HQ answered with an error (status + code, e.g. 401)
    │   └── HqBadReply              HQ answered something that is not the protocol
    ├── RulesError                  the rules engine was given something it cannot evaluate
    │   └── CouponInvalid           a coupon code is malformed or its signature does not verify
    └── ApiError                    a POS API request that must be refused (has code + status)
        ├── InvalidRequest          400 invalid_request
        │   ├── JsonTooDeep         400 json_too_deep (head office: nested too deeply)
        │   └── NumberTooLarge      400 number_too_large (head office: a number it cannot hold)
        ├── CardFormatError         400 invalid_card
        ├── OutOfRange              400 out_of_range (a basket beyond [program.limits])
        ├── FractionalQuantity      400 fractional_quantity (part of a unit sold by the unit)
        ├── Unauthorized            401 unauthorized
        ├── CardNotFound            404 card_not_found
        ├── CardBlocked             403 card_blocked
        ├── ReceiptNotFound         404 receipt_not_found
        ├── ReceiptAlreadyConfirmed 409 receipt_already_confirmed
        ├── ReceiptCancelled        409 receipt_cancelled
        ├── RefundExceedsReceipt    409 refund_exceeds_receipt
        ├── InsufficientPoints      409 insufficient_points
        ├── OfflineLimit            409 offline_limit
        ├── IdempotencyMismatch     409 idempotency_mismatch (details: field, first)
        ├── PayloadTooLarge         413 payload_too_large
        └── HqApiError              a head-office API request that must be refused
            ├── Forbidden           403 forbidden (a till credential on an admin endpoint,
            │                       or a role on a route not its own)
            ├── AdjustLimitExceeded 403 adjust_limit_exceeded (support above its limit)
            ├── PasswordChangeRequired 403 password_change_required (a one-time password)
            ├── WrongTill           403 wrong_till (a till pushing another till's entries)
            ├── EnrolmentRefused    403 enrolment_refused (code used, unknown or expired)
            ├── NotFound            404 not_found (till, promotion)
            ├── SequenceGap         409 sequence_gap (details: expected)
            ├── UserExists          409 user_exists
            ├── JobBusy             409 job_busy (a job another process or request runs)
            ├── TooManyAttempts     429 too_many_attempts (sign-in, 5 a minute per name)
            ├── BatchTooLarge       413 batch_too_large
            ├── InvalidProgram      422 invalid_program (details: errors)
            ├── InvalidCards        422 invalid_cards (details: errors)
            └── InvalidProducts     422 invalid_products (details: errors)

    UsageError                      a command line argparse refused (not a TillgateError:
                                    the CLI reports it with exit code 2 before anything runs)
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


class CardsFileError(ConfigError):
    """A cards CSV does not validate. ``errors`` lists every bad row (``row 7: ...``)."""

    def __init__(self, errors: Sequence[str], *, source: str = "cards file") -> None:
        self.errors = list(errors)
        self.source = source
        super().__init__("\n".join(f"{source}: {e}" for e in self.errors) or source)


class ProductsError(ConfigError):
    """A product list CSV does not validate. ``errors`` lists every problem, each with its
    row and column (``row 7, category: empty``); nothing of the file is used."""

    def __init__(self, errors: Sequence[str], *, source: str = "product list") -> None:
        self.errors = list(errors)
        self.source = source
        # One line per problem (the CLI prints each on its own line), led by the file.
        super().__init__("\n".join(f"{source}: {e}" for e in self.errors) or source)


class StoreError(TillgateError):
    """The local SQLite store cannot be opened, migrated or written."""


class StorageFullError(StoreError):
    """The disk or database is full; the transaction was rolled back and nothing was written."""


class DeviceError(TillgateError):
    """A device cannot be opened, or stopped answering."""


class SyncError(TillgateError):
    """Head office is unreachable, refused the request, or answered something unusable."""


class HqUnreachable(SyncError):
    """Head office did not answer: connection refused, name not found, TLS failure, timeout."""


class HqRefused(SyncError):
    """Head office answered with an error: ``status``, its ``code`` and any ``details``."""

    def __init__(
        self, message: str, *, status: int, code: str, details: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details or {}


class HqBadReply(SyncError):
    """Head office answered something that is not the sync protocol (bad JSON, bad fields)."""


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


class JsonTooDeep(InvalidRequest):
    """400 json_too_deep: arrays and objects nested deeper than head office reads."""

    status, code = 400, "json_too_deep"


class NumberTooLarge(InvalidRequest):
    """400 number_too_large: a number literal head office could never store (or an infinity)."""

    status, code = 400, "number_too_large"


class CardFormatError(ApiError):
    """What the POS or reader sent is not a card; the message never holds the full number."""

    status, code = 400, "invalid_card"


class OutOfRange(ApiError):
    """A basket beyond the program's ``[program.limits]``; the message names line and limit."""

    status, code = 400, "out_of_range"


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


class FractionalQuantity(ApiError):
    """400 fractional_quantity: part of a unit of a line sold by the unit."""

    status, code = 400, "fractional_quantity"


class IdempotencyMismatch(ApiError):
    """409 idempotency_mismatch: an id already used with another body (``details.field``
    names the first field that differs). Nothing is changed; the first result stands."""

    status, code = 409, "idempotency_mismatch"


class HqApiError(ApiError):
    """A head-office API request that must be refused; ``details`` become fields of the error."""


class Forbidden(HqApiError):
    status, code = 403, "forbidden"


class WrongTill(HqApiError):
    status, code = 403, "wrong_till"


class EnrolmentRefused(HqApiError):
    status, code = 403, "enrolment_refused"


class NotFound(HqApiError):
    status, code = 404, "not_found"


class SequenceGap(HqApiError):
    status, code = 409, "sequence_gap"


class AdjustLimitExceeded(HqApiError):
    """Support adjusted more points than ``support-adjust-limit`` allows."""

    status, code = 403, "adjust_limit_exceeded"


class PasswordChangeRequired(HqApiError):
    status, code = 403, "password_change_required"


class UserExists(HqApiError):
    status, code = 409, "user_exists"


class JobBusy(HqApiError):
    status, code = 409, "job_busy"


class TooManyAttempts(HqApiError):
    status, code = 429, "too_many_attempts"


class BatchTooLarge(HqApiError):
    status, code = 413, "batch_too_large"


class InvalidProgram(HqApiError):
    status, code = 422, "invalid_program"


class InvalidCards(HqApiError):
    status, code = 422, "invalid_cards"


class InvalidProducts(HqApiError):
    status, code = 422, "invalid_products"


class UsageError(Exception):
    """A command line argparse refused; reported in one line like every other error."""
