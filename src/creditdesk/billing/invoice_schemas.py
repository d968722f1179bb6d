"""Request and answer bodies of invoices, invoice lines, credit notes and payments. Requests refuse
unknown fields (parties.schemas.Input): no setting an invoice's number, status, totals or workspace."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from creditdesk.credits.schemas import Context
from creditdesk.parties.schemas import Input

InvoiceStatus = Literal["draft", "posted", "settled", "void"]
PaymentMethod = Literal["cash", "bank_transfer", "card", "other"]

Quantity = Field(description="A positive number with at most 3 decimals, e.g. 2 or \"1.5\" (a string keeps it "
                             "exact). Zero, negative or more decimals: 422 invalid_quantity.")
Minor = Field(ge=0, le=10**15, description="Minor units of the invoice's currency (cents).")


class DiscountIn(Input):
    kind: Literal["percent", "amount"] = Field(description="percent: `value` in basis points (1000 = 10 %); "
                                                           "amount: `value` minor units off the line.")
    value: int = Field(ge=0, le=10**15)


class LineCreate(Input):
    product: str = Field(min_length=1, max_length=100, description="Product id or code (catalogue).")
    description: str | None = Field(default=None, max_length=500, description="Default: the product's name.")
    quantity: Decimal = Quantity
    unit_price: int | None = Field(default=None, ge=0, le=10**15,
                                   description="Default: the price in the invoice's price plan, else the "
                                               "currency's default plan (422 no_price when neither has one).")
    discount: DiscountIn | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3,
                                 description="Optional check: must be the account's currency "
                                             "(422 currency_mismatch).")
    package_holder: Context | None = Field(
        default=None, description="A credit package line only: the office or user of the invoice's customer who "
                                  "receives the pack when the invoice is paid (default: the customer).")


class LineUpdate(Input):
    product: str | None = Field(default=None, min_length=1, max_length=100,
                                description="Another product: re-priced from the price plan unless "
                                            "unit_price is given too.")
    description: str | None = Field(default=None, min_length=1, max_length=500)
    quantity: Decimal | None = None
    unit_price: int | None = Field(default=None, ge=0, le=10**15)
    discount: DiscountIn | None = Field(default=None, description="null removes the discount.")


class LineCredits(Input):
    """Pay `quantity` units of a draft line with credits of the invoice's customer (its own packs, or
    those of one of its offices or users), burned in the usual order from packs covering the product."""

    context: Context = Field(description="customer, office or user of the invoice's customer.")
    credit_type: str = Field(min_length=1, max_length=40)
    quantity: Decimal = Field(description="Units of the line paid with credits (at most the line's quantity); "
                                          "each unit costs one credit of the type.")


class InvoiceCreate(Input):
    account_id: str = Field(min_length=1, max_length=40)
    issue_date: date | None = Field(default=None, description="Default: today. Taxes are those in force on it; "
                                                              "the due date is it plus the account's credit period.")
    price_plan_id: str | None = Field(default=None, max_length=40,
                                      description="A named price plan in the account's currency "
                                                  "(422 currency_mismatch otherwise). Default: the currency's "
                                                  "default plan.")
    notes: str = Field(default="", max_length=2000)
    lines: list[LineCreate] = Field(default_factory=list, max_length=200)


class InvoiceUpdate(Input):
    """A draft only (409 invoice_not_draft otherwise)."""

    issue_date: date | None = None
    price_plan_id: str | None = Field(default=None, max_length=40,
                                      description="Applies to lines added after the change.")
    notes: str | None = Field(default=None, max_length=2000)


class LineCreditsOut(BaseModel):
    quantity: str
    value: int = Field(description="What those units would have cost (gross), in minor units.")
    consumption_id: str | None


class DiscountOut(BaseModel):
    kind: str
    value: int


class LineOut(BaseModel):
    id: str
    object: Literal["invoice_line"] = "invoice_line"
    position: int
    product_id: str
    product_code: str
    description: str
    quantity: str
    unit_price: int
    discount: DiscountOut | None
    tax_rate_bp: int
    tax_inclusive: bool
    net: int
    tax: int
    gross: int
    discount_amount: int
    credits: LineCreditsOut | None


class InvoiceOut(BaseModel):
    id: str
    object: Literal["invoice"] = "invoice"
    number: str | None
    status: str
    account_id: str
    customer_id: str
    currency: str
    price_plan_id: str | None
    issue_date: date
    due_date: date
    overdue: bool
    notes: str
    subtotal: int
    tax_total: int
    total: int
    credits_value: int
    amount_paid: int
    amount_credited: int
    amount_written_off: int = 0  # closed by the account's write-off
    amount_due: int
    lines: list[LineOut]
    subscription_id: str | None = Field(default=None, description="A bill: the subscription it bills.")
    period_start: date | None = Field(default=None, description="A bill: the first day it covers.")
    period_end: date | None = Field(default=None, description="A bill: the day after the last day it covers.")
    pending_charge_id: str | None = Field(default=None, description=(
        "A draft whose posting went over the credit limit while a card preference is opted in for purchases: "
        "the card is being charged first (GET /v1/gateway-charges/{id}); the invoice posts when it succeeds."))
    posted_at: datetime | None
    settled_at: datetime | None
    voided_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CreditNoteLineIn(Input):
    line_id: str = Field(min_length=1, max_length=40)
    amount: int | None = Field(default=None, ge=1, le=10**15,
                               description="Default: what the line still has to credit (its gross less "
                                           "earlier credit notes on it).")


class CreditNoteCreate(Input):
    """Exactly one of `full`, `amount` or `lines`."""

    full: bool = Field(default=False, description="Credit everything the invoice still has due.")
    amount: int | None = Field(default=None, ge=1, le=10**15)
    lines: list[CreditNoteLineIn] | None = Field(default=None, max_length=200)
    reason: str = Field(default="", max_length=500)


class CreditNoteOut(BaseModel):
    id: str
    object: Literal["credit_note"] = "credit_note"
    number: str
    invoice_id: str
    account_id: str
    currency: str
    amount: int
    tax: int
    reason: str
    lines: list[dict]
    issue_date: date
    created_at: datetime


class AllocationIn(Input):
    invoice_id: str = Field(min_length=1, max_length=40)
    amount: int = Field(ge=1, le=10**15)


class PaymentCreate(Input):
    account_id: str = Field(min_length=1, max_length=40)
    amount: int = Field(ge=1, le=10**15, description="Minor units of the account's currency.")
    currency: str | None = Field(default=None, min_length=3, max_length=3,
                                 description="Optional check: must be the account's currency "
                                             "(422 currency_mismatch).")
    method: PaymentMethod = "bank_transfer"
    reference: str = Field(default="", max_length=200)
    received_on: date | None = Field(default=None, description="Default: today.")
    allocations: list[AllocationIn] | None = Field(
        default=None, max_length=200,
        description="Invoices to pay and how much of each (more than an invoice's amount due: 422 overpayment). "
                    "Omitted: the account's open posted invoices, oldest due first. What is not allocated "
                    "stays on the account as a credit (`unallocated`).")


class PaymentAllocate(Input):
    allocations: list[AllocationIn] | None = Field(
        default=None, max_length=200, description="Omitted: oldest due first, as far as the credit goes.")


class AllocationOut(BaseModel):
    invoice_id: str
    invoice_number: str | None
    amount: int


class PaymentOut(BaseModel):
    id: str
    object: Literal["payment"] = "payment"
    account_id: str
    amount: int
    currency: str
    method: str
    reference: str
    received_on: date
    unallocated: int
    allocations: list[AllocationOut]
    created_at: datetime


# --- the account's credit: what its payments left unallocated ---

class CreditApply(Input):
    allocations: list[AllocationIn] | None = Field(
        default=None, max_length=200,
        description="Invoices of the account to pay with its credit and how much of each (more than an invoice "
                    "has due: 422 overpayment; more than the credit: 409 credit_too_low). Omitted: the account's "
                    "open posted invoices, oldest due first, as far as the credit goes.")


class CreditSourceOut(BaseModel):
    payment_id: str
    received_on: date
    method: str
    reference: str
    unallocated: int = Field(description="Minor units of this payment still on the account as its credit.")


class AccountCreditOut(BaseModel):
    object: Literal["account_credit"] = "account_credit"
    account_id: str
    currency: str
    available: int = Field(description="Minor units: the account's credit, the sum of its payments' unallocated "
                                       "amounts (applied to invoices or refunded only when someone asks).")
    payments: list[CreditSourceOut] = Field(description="The payments holding it, oldest first (the order in which "
                                                        "it is applied and refunded).")


class CreditAppliedOut(BaseModel):
    payment_id: str
    invoice_id: str
    invoice_number: str | None
    amount: int


class CreditApplyOut(BaseModel):
    object: Literal["credit_application"] = "credit_application"
    account_id: str
    currency: str
    applied: list[CreditAppliedOut]
    available: int = Field(description="The account's credit left afterwards (minor units).")


class CreditRefundCreate(Input):
    amount: int = Field(ge=1, le=10**15, description="Minor units given back; at most the account's credit "
                                                     "(409 credit_too_low).")
    method: PaymentMethod = Field(default="bank_transfer", description="How the money goes back.")
    reason: str = Field(min_length=1, max_length=500, description="Why (kept with the refund and its audit).")
    reference: str = Field(default="", max_length=200, description="The bank or gateway reference, if any.")
    payment_id: str | None = Field(default=None, max_length=40,
                                   description="Refund only this payment's credit (e.g. back to the card that "
                                               "overpaid). Omitted: the account's credit, oldest payment first.")


class RefundPartOut(BaseModel):
    payment_id: str
    amount: int


class RefundOut(BaseModel):
    id: str
    object: Literal["refund"] = "refund"
    account_id: str
    amount: int
    currency: str
    method: str
    reason: str
    reference: str
    refunded_on: date
    parts: list[RefundPartOut]
    created_at: datetime
