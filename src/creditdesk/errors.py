"""Domain errors. One base class; every error has a stable `code` and an HTTP status.

The API renders them as RFC 9457 problem+json, the back office as a form message, the CLI as a
red line and a non-zero exit.
"""

from __future__ import annotations

from typing import Any


class CreditdeskError(Exception):
    code = "error"
    http_status = 400
    title = "Request failed"

    def __init__(self, message: str | None = None, *, code: str | None = None, http_status: int | None = None,
                 **details: Any):
        self.message = message or self.title
        if code:
            self.code = code
        if http_status:
            self.http_status = http_status
        self.details = details
        super().__init__(self.message)


class NotFound(CreditdeskError):
    code = "not_found"
    http_status = 404
    title = "Not found"


class NotPermitted(CreditdeskError):
    code = "not_permitted"
    http_status = 403
    title = "Not permitted"


class Unauthenticated(CreditdeskError):
    code = "unauthenticated"
    http_status = 401
    title = "Authentication required"


class InvalidInput(CreditdeskError):
    """Well-formed input that breaks a rule (422 is for input the server cannot take at all)."""

    code = "invalid_input"
    http_status = 422
    title = "Invalid input"


class Conflict(CreditdeskError):
    code = "conflict"
    http_status = 409
    title = "Conflict"


class IdempotencyKeyReused(CreditdeskError):
    code = "idempotency_key_reused"
    http_status = 422
    title = "Idempotency-Key reused with a different request"


class IdempotencyInProgress(CreditdeskError):
    code = "idempotency_request_in_progress"
    http_status = 409
    title = "A request with this Idempotency-Key is still in progress"


class PayloadTooLarge(CreditdeskError):
    code = "payload_too_large"
    http_status = 413
    title = "Request body too large"
