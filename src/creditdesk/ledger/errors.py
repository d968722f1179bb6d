from creditdesk.errors import CreditdeskError


class LedgerError(CreditdeskError):
    code = "ledger_error"
    http_status = 409
    title = "Ledger refused the transfer"


class ExceedsCredits(LedgerError):
    """A debit would take a no-overdraft account below zero."""

    code = "insufficient_credits"
    title = "Insufficient credits"


class UnitMismatch(LedgerError):
    code = "unit_mismatch"
    http_status = 422
    title = "Accounts of different units"


class InvalidAmount(LedgerError):
    code = "invalid_amount"
    http_status = 422
    title = "Amounts are positive integers"


class PendingNotFound(LedgerError):
    code = "pending_transfer_not_found"
    http_status = 404
    title = "No such pending transfer"


class PendingAlreadyResolved(LedgerError):
    code = "pending_already_resolved"
    title = "The pending transfer was already posted or voided"


class AmountExceedsPending(LedgerError):
    code = "amount_exceeds_pending"
    http_status = 422
    title = "More than is pending"


class TransferKeyConflict(LedgerError):
    code = "transfer_key_conflict"
    title = "Transfer idempotency key used for another transfer"
