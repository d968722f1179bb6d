from creditdesk.errors import CreditdeskError


class CreditsError(CreditdeskError):
    code = "credits_error"
    http_status = 409


class InsufficientCredits(CreditsError):
    code = "insufficient_credits"
    title = "Insufficient credits"


class ProductNotCovered(CreditsError):
    """The context holds usable credits of the type, but none of its packs may pay for this product."""

    code = "product_not_covered"
    title = "No pack covers this product"


class PackNotActive(CreditsError):
    code = "pack_not_active"
    title = "The pack is not active"


class CreditsFrozen(CreditsError):
    code = "credits_frozen"
    title = "These credits are frozen"


class HoldNotPending(CreditsError):
    code = "hold_not_pending"
    title = "The hold is no longer pending"


class HoldExpired(CreditsError):
    code = "hold_expired"
    title = "The hold timed out"


class AlreadyReversed(CreditsError):
    code = "already_reversed"
    title = "Already reversed"


class NothingToMove(CreditsError):
    code = "nothing_to_move"
    title = "Nothing to move"


class NothingToReverse(CreditsError):
    code = "nothing_to_reverse"
    title = "Nothing to reverse"


class InvalidCredits(CreditsError):
    """Well-formed input that breaks a credits rule (expiry before start, unknown credit type...)."""

    code = "invalid_credits_request"
    http_status = 422
    title = "Invalid credits request"


def unknown_credit_type(code: str) -> InvalidCredits:
    return InvalidCredits(f"Unknown credit type {code!r}. Create it first (POST /v1/credit-types).",
                          code="unknown_credit_type")
