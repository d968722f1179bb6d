"""Request and response shapes of the SMS credits API (bodies refuse unknown fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from creditdesk.parties.schemas import Input

CreditMode = Literal["individual", "shared"]
AccountKind = Literal["workspace", "user", "office"]  # office: shared office SMS credits
Action = Literal["purchase", "transfer_to", "transfer_from", "logs"]


class AliasedInput(Input):
    # `for` and `from` are Python keywords: the fields are for_/from_, the JSON names for/from.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


# --- settings ------------------------------------------------------------------------------------

class SellerDetails(Input):
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(default="", max_length=1000)
    tax_id: str | None = Field(default=None, max_length=100)
    email: EmailStr | None = None


class SmsSettingsUpdate(Input):
    credit_mode: CreditMode | None = Field(
        default=None, description="individual: every user has their own credits (seed 003); "
                                  "shared: one pool per office. Master users only.")
    unit_price: int | None = Field(default=None, ge=0, le=10**9,
                                   description="Price of one SMS credit in minor units of `currency`, before tax.")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    tax_rate_bp: int | None = Field(default=None, ge=0, le=10_000, description="Tax rate in basis points (1000 = 10 %).")
    tax_label: str | None = Field(default=None, min_length=1, max_length=40, description="GST, VAT, Tax ...")
    seller: SellerDetails | None = Field(default=None, description="Seller details printed on receipts.")
    confirm_mode_change: bool = Field(
        default=False, description="Must be true to change credit_mode: the change moves no credit, and the answer "
                                   "without it (409 mode_change_unconfirmed) says which credits the new mode leaves "
                                   "where they are.")


class SmsSettingsOut(BaseModel):
    object: Literal["sms_settings"] = "sms_settings"
    credit_mode: CreditMode
    unit_price: int
    currency: str
    tax_rate_bp: int
    tax_label: str
    seller: dict
    payment_methods: list[str] = Field(description="The payment methods you may choose (the built-in `test` "
                                      "method, which stays pending until settled, for master users only).")
    transfer_conditions: str


# --- accounts (the "Manage SMS credits" box) -------------------------------------------------------

class AccountRef(Input):
    kind: AccountKind
    id: str | None = Field(default=None, max_length=40, description="A user id; omitted for the workspace pool.")


class SmsAccountOut(BaseModel):
    object: Literal["sms_account"] = "sms_account"
    kind: AccountKind
    id: str
    name: str
    email: str | None
    is_self: bool
    is_active: bool
    can_send_sms: bool = Field(description="Active staff user with send_sms: may receive and use credits.")
    available: int = Field(description="Credits spendable now (0 when frozen).")
    held: int = Field(description="Credits reserved by messages being sent.")
    frozen: int = Field(description="Credits that cannot be used until transferred away (send_sms removed, "
                                    "user deactivated, or credits left over from the other SMS credit mode).")
    leftover: bool = Field(default=False, description=(
        "Credits left over from the other SMS credit mode (a switch of mode moves nothing): office pools in "
        "individual mode, users' own credits in shared mode. They are not spent until moved (transfer_from)."))
    actions: list[Action]


# --- purchases -----------------------------------------------------------------------------------

class BillingDetails(Input):
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=1, max_length=1000)
    tax_id: str | None = Field(default=None, max_length=100)
    email: EmailStr


class PurchaseCreate(AliasedInput):
    for_: AccountRef = Field(alias="for", description="The workspace pool (master users) or a user.")
    quantity: int = Field(gt=0, le=10_000_000, description="Number of SMS credits.")
    billing: BillingDetails
    payment_method: str = Field(default="manual_invoice", min_length=1, max_length=40)


class PaymentOutcome(Input):
    status: Literal["paid", "failed"]
    reference: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=2000)


class PurchaseOut(BaseModel):
    id: str
    object: Literal["sms_purchase"] = "sms_purchase"
    number: int | None = Field(description="Receipt / tax invoice number, given when paid.")
    receipt_number: str | None
    status: Literal["pending", "paid", "failed"]
    for_: dict = Field(serialization_alias="for")
    quantity: int
    currency: str
    unit_price: int
    subtotal: int
    tax_rate_bp: int
    tax_label: str
    tax: int
    total: int
    billing: dict
    seller: dict
    payment_method: str
    payment_reference: str | None
    failure_reason: str | None
    pack_id: str | None
    receipt_url: str | None
    created_by: str | None
    created_at: datetime
    paid_at: datetime | None


# --- transfers -----------------------------------------------------------------------------------

class SmsTransferCreate(AliasedInput):
    from_: AccountRef = Field(alias="from")
    to: AccountRef
    quantity: int = Field(gt=0, le=10**12)
    agree_to_conditions: bool = Field(default=False, description="Must be true: the sender agrees to the "
                                                                 "transfer conditions (GET /v1/sms/settings).")
    memo: str = Field(default="", max_length=2000)


# --- messages ------------------------------------------------------------------------------------

class MessageCreate(Input):
    # The body is sent as written: no whitespace stripping (it would change what is sent and counted).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    to: str = Field(min_length=3, max_length=40, description="Phone number, digits with an optional leading +.")
    body: str = Field(min_length=1, max_length=1600)
    on_behalf_of_user_id: str | None = Field(default=None, max_length=40,
                                             description="Whom the message is sent for; the sender's own credits "
                                                         "pay all the same.")

    @field_validator("to")
    @classmethod
    def _phone(cls, value: str) -> str:
        digits = "".join(ch for ch in value.strip() if ch not in " -().")
        plus = digits.startswith("+")
        rest = digits[1:] if plus else digits
        if not (rest.isascii() and rest.isdigit() and 3 <= len(rest) <= 15):
            raise ValueError("a phone number: 3 to 15 digits, optionally with a leading +")
        return ("+" if plus else "") + rest

    @field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the message body is blank")
        return value


class MessageOut(BaseModel):
    id: str
    object: Literal["sms_message"] = "sms_message"
    to: str
    body: str
    encoding: str
    segments: int
    status: Literal["sending", "accepted", "failed"]
    backend: str
    provider_reference: str | None
    failure_reason: str | None
    sender_user_id: str
    on_behalf_of_user_id: str | None
    hold_id: str | None
    credits_charged: int
    created_at: datetime
    sent_at: datetime | None


# --- logs ----------------------------------------------------------------------------------------

class Party(BaseModel):
    kind: str
    id: str
    name: str


class SmsLogEntry(BaseModel):
    object: Literal["sms_log_entry"] = "sms_log_entry"
    id: str = Field(description="The movement's id (the transfer, message, purchase pack or ledger operation); "
                                "with the account and direction, unique.")
    at: datetime
    account: Party
    direction: Literal["in", "out"]
    movement: str = Field(description="purchase, grant, transfer_in, transfer_out, sent, consumed, reversal, "
                                      "expired, voided")
    quantity: int = Field(description="Credits moved (positive; see direction): one line per movement and "
                                      "account, however many packs it took (pack history has the detail).")
    counterparty: Party | None
    reference_kind: str | None
    reference_id: str | None
    reference: str = Field(default="", description=(
        "The movement in words, with its document number: 'Receipt SMS-000006', 'SMS to +61400000001', "
        "'Transfer', 'Pack SMS credits' (never an id)."))
    memo: str | None = Field(default=None, description="The memo typed with a transfer.")
    actor_id: str | None
    actor_name: str | None
    pack_id: str
