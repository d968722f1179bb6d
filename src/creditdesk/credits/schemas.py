from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from creditdesk.parties.schemas import Input, Output, no_number_for_a_date

HolderKind = Literal["office", "user", "customer", "workspace"]
ContextKind = Literal["project", "user", "office", "customer", "workspace"]
Source = Literal["manual", "purchase", "crm_deal", "transfer", "promotion", "subscription", "wallet"]
PackStatus = Literal["active", "depleted", "expired", "voided"]

Quantity = Field(gt=0, le=10**15, description="A positive integer in the credit type's smallest unit.")
Code = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")


class Holder(Input):
    kind: HolderKind
    id: str | None = Field(default=None, max_length=40,
                           description="Office, user or customer id; omitted for the workspace pool.")


class Context(Input):
    kind: ContextKind
    id: str | None = Field(default=None, max_length=40)


def is_http_url(url: str) -> bool:
    """An absolute http(s) URL with a host, and nothing a browser would strip or reinterpret (no spaces or
    control characters, which browsers drop inside a scheme: "java\tscript:" runs). The allow-list for
    every stored link: on input, and again when rendering rows stored before it."""
    if not isinstance(url, str) or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and url[len(parts.scheme):].startswith("://") and bool(host)


class ReferenceIn(Input):
    kind: str = Field(min_length=1, max_length=40, description="project, invoice, invoice_line, message, ...")
    id: str = Field(min_length=1, max_length=200)
    url: str | None = Field(default=None, max_length=1000,
                            description="A link to what was paid for: an absolute http:// or https:// URL "
                                        "(anything else: 422 invalid_url).")


class ReferenceOut(BaseModel):
    kind: str | None
    id: str | None
    url: str | None


class CreditTypeCreate(Input):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1, max_length=200)
    scale: int = Field(default=0, ge=0, le=6)
    required_permission: Literal["send_sms"] | None = None


class CreditTypeUpdate(Input):
    name: str = Field(min_length=1, max_length=200)


class CreditTypeOut(Output):
    id: str
    object: Literal["credit_type"] = "credit_type"
    code: str
    name: str
    scale: int
    required_permission: str | None
    created_at: datetime


def _bare_date(value):
    value = no_number_for_a_date(value)  # the Input check cannot see through Annotated
    if isinstance(value, str) and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", value):
        return date.fromisoformat(value.strip())
    return value


# A moment, or a bare date (YYYY-MM-DD): the grant reads a bare date in the workspace's time zone, as the end of
# that day for expires_at and its start for purchased_at and starts_at (creditdesk.timezones).
DateOrTime = Annotated[datetime | date, BeforeValidator(_bare_date)]


class PackCreate(Input):
    holder: Holder
    credit_type: str = Field(min_length=1, max_length=40, description="Credit type code, e.g. sms.")
    quantity: int = Quantity
    name: str = Field(min_length=1, max_length=200)
    price_paid: int = Field(default=0, ge=0, le=10**15, description="In minor units of `currency`.")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    is_paid: bool | None = Field(default=None, description="Defaults to price_paid > 0.")
    source: Source = Field(default="manual", description="transfer is never granted (transfers make their own "
                                                          "packs); SMS credits are a purchase only when bought.")
    external_ref: str | None = Field(default=None, max_length=200)
    relationship_manager_id: str | None = Field(default=None, max_length=40)
    project_manager_id: str | None = Field(default=None, max_length=40)
    purchased_at: DateOrTime | None = Field(default=None, description="A bare date: its start in the workspace's "
                                                                       "time zone.")
    starts_at: DateOrTime | None = Field(default=None, description="A bare date: its start in the workspace's "
                                                                    "time zone.")
    expires_at: DateOrTime | None = Field(default=None, description="A bare date (2027-01-31): the end of that day "
                                                                     "in the workspace's time zone.")
    expiry_months: int | None = Field(default=None, ge=1, le=600,
                                      description="Expire N months after purchase (instead of expires_at).")
    priority: int = Field(default=100, ge=-1_000_000, le=1_000_000, description="Smaller burns first.")
    product_codes: list[str] = Field(default_factory=list, max_length=200)
    status_label: str = Field(default="", max_length=100)
    notes: str = Field(default="", max_length=10_000)
    idempotency_key: str | None = Field(default=None, max_length=255,
                                        description="The Idempotency-Key header's rules: grants with the same "
                                                    "key create one pack (a replay answers with it, "
                                                    "Idempotent-Replayed: true); the key reused for another "
                                                    "request is refused (409 idempotency_key_conflict, naming "
                                                    "the pack).")

    @field_validator("product_codes")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not code or len(code) > 100:
                raise ValueError("product codes are 1 to 100 characters")
        return sorted(set(value))

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str | None) -> str | None:
        # Three capitals is not a currency: "DOL" (for dollars) would be stored and never add up with USD.
        from creditdesk import currencies
        from creditdesk.errors import InvalidInput
        from pydantic_core import PydanticCustomError

        if value is None:
            return None
        try:
            return currencies.check_currency(value)
        except InvalidInput:
            raise PydanticCustomError("unknown_currency", "{value} is not an ISO 4217 currency code (for example "
                                      "AUD, EUR, USD)", {"value": value}) from None


class PackUpdate(Input):
    status_label: str | None = Field(default=None, max_length=100)
    notes: str | None = Field(default=None, max_length=10_000)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    relationship_manager_id: str | None = Field(default=None, max_length=40)
    project_manager_id: str | None = Field(default=None, max_length=40)
    priority: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)


class PackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: Literal["pack"] = "pack"
    holder: dict
    customer_id: str | None
    credit_type: str
    quantity: int
    remaining: int = Field(description="Available now: posted balance less held.")
    held: int
    balance: int = Field(description="Posted balance (remaining + held).")
    frozen: bool
    price_paid: int
    currency: str | None
    is_paid: bool
    source: str
    external_ref: str | None
    name: str
    relationship_manager_id: str | None
    project_manager_id: str | None
    purchased_at: datetime
    starts_at: datetime
    expires_at: datetime | None
    expiry_months: int | None
    priority: int
    product_codes: list[str]
    status: str = Field(description="active, depleted, expired or voided; a pack past its expires_at is expired "
                                    "from that moment (before the expiry job sweeps it).")
    status_label: str
    notes: str
    void_reason: str | None
    origin_pack_id: str | None
    ledger_account_id: str
    created_at: datetime
    updated_at: datetime


class PackBatchCreate(Input):
    packs: list[PackCreate] = Field(min_length=1, max_length=1000)


class ChangeHolder(Input):
    holder: Holder
    reason: str = Field(default="", max_length=2000)


class VoidPack(Input):
    reason: str = Field(min_length=1, max_length=2000)


class ProjectCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    office_id: str = Field(max_length=40)
    contact_ids: list[str] = Field(default_factory=list, max_length=200)


class ProjectUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    office_id: str | None = Field(default=None, max_length=40)
    contact_ids: list[str] | None = Field(default=None, max_length=200)
    status: Literal["open", "closed"] | None = None


class ProjectOut(BaseModel):
    id: str
    object: Literal["project"] = "project"
    name: str
    office_id: str
    customer_id: str | None
    contact_ids: list[str]
    status: str
    created_at: datetime
    updated_at: datetime


class ConsumeRequest(Input):
    context: Context
    credit_type: str = Field(min_length=1, max_length=40)
    amount: int = Quantity
    product_code: str | None = Field(default=None, max_length=100)
    reference: ReferenceIn | None = None
    allow_partial: bool = False


class BurnLine(BaseModel):
    pack_id: str
    amount: int


class ConsumptionOut(BaseModel):
    id: str
    object: Literal["consumption"] = "consumption"
    context: dict
    credit_type: str
    product_code: str | None
    amount_requested: int
    amount: int
    allow_partial: bool
    reference: ReferenceOut
    status: str
    lines: list[BurnLine]
    reversed_at: datetime | None
    created_at: datetime


class HoldRequest(Input):
    context: Context
    credit_type: str = Field(min_length=1, max_length=40)
    amount: int = Quantity
    product_code: str | None = Field(default=None, max_length=100)
    reference: ReferenceIn | None = None
    timeout_seconds: int = Field(default=3600, ge=1, le=90 * 86400)


class CaptureRequest(Input):
    amount: int | None = Field(default=None, gt=0, le=10**15, description="Defaults to the whole hold.")


class HoldOut(BaseModel):
    id: str
    object: Literal["hold"] = "hold"
    context: dict
    credit_type: str
    product_code: str | None
    amount: int
    captured_amount: int
    status: str
    timeout_at: datetime
    reference: ReferenceOut
    lines: list[BurnLine]
    created_at: datetime
    resolved_at: datetime | None
    reversed_at: datetime | None


class TransferRequest(Input):
    from_: Holder | None = Field(default=None, alias="from")
    from_pack_id: str | None = Field(default=None, max_length=40)
    to: Holder
    credit_type: str = Field(min_length=1, max_length=40)
    amount: int = Quantity
    memo: str = Field(default="", max_length=2000)


class TransferOut(BaseModel):
    id: str
    object: Literal["credit_transfer"] = "credit_transfer"
    credit_type: str
    from_: dict = Field(serialization_alias="from")
    to: dict
    amount: int
    memo: str
    lines: list[dict]
    created_at: datetime


class BalanceOut(BaseModel):
    object: Literal["balance"] = "balance"
    holder: dict
    credit_type: str
    available: int
    held: int
    total: int
    frozen: int
    packs: int


class EligibleOut(BaseModel):
    pack: PackOut
    burn_rank: int


class NearMissOut(BaseModel):
    pack: PackOut
    reasons: list[str]


class EligibilityOut(BaseModel):
    object: Literal["eligibility"] = "eligibility"
    context: dict
    credit_type: str | None
    product_code: str | None
    available: int | None
    available_by_type: dict[str, int] = {}
    eligible: list[EligibleOut]
    not_eligible: list[NearMissOut]


class HistoryEntry(BaseModel):
    id: str
    at: datetime
    kind: str
    amount: int
    balance_after: int
    held_after: int
    reference: ReferenceOut
    operation_id: str | None
    actor_id: str | None
    detail: dict | None = None


# --- low-balance thresholds (credits.low_balance) ---

class ThresholdSet(Input):
    credit_type: str = Field(min_length=1, max_length=40)
    holder: Holder | None = Field(default=None, description="The holder watched; omitted: the workspace default "
                                                            "for every holder without a threshold of its own.")
    threshold: int = Field(ge=1, le=10**15, description="In the credit type's smallest unit (hours at scale 2: "
                                                        "500 = 5.00 hours). Below it: balance.low.")
    top_up_package: str | None = Field(default=None, max_length=100, description=(
        "A credit_package product of this credit type: at each crossing, an invoice of the holder's customer's "
        "account for it (paid from the wallet when the account pays purchases from it)."))
    top_up_count: int = Field(default=1, ge=1, le=100)
    active: bool = True


class ThresholdOut(BaseModel):
    id: str
    object: Literal["balance_threshold"] = "balance_threshold"
    credit_type: str
    holder: dict | None
    threshold: int
    top_up_package_id: str | None
    top_up_count: int
    active: bool
    created_at: datetime
    updated_at: datetime


class CrossingOut(BaseModel):
    id: str
    object: Literal["balance_crossing"] = "balance_crossing"
    holder: dict
    credit_type: str
    threshold: int
    balance_before: int
    balance_after: int
    consumption_id: str
    top_up_invoice_id: str | None
    top_up_note: str
    created_at: datetime
