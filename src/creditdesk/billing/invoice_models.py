"""Invoices, their lines, credit notes, payments and payment allocations.

Money is never kept beside the ledger as a balance: an account's balance comes from its ledger account.
What an invoice still has to be paid (`amount_due`) is the invoice's own state (a receivable is settled
by documents, not by the ledger): it is always total - allocations - credit notes, which
`billing.verify.verify_invoices` re-derives.

Quantities are integers of thousandths (`quantity_milli`): lines take up to 3 decimals (catalog.lines),
and an integer column is exact on every backend.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, \
    UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, JSONType, UTCDateTime

INVOICE_STATUSES = ("draft", "posted", "settled", "void")
PAYMENT_METHODS = ("cash", "bank_transfer", "card", "other")
QUANTITY_SCALE = 1000


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        CheckConstraint("status IN ('draft', 'posted', 'settled', 'void')", name="status_known"),
        CheckConstraint("amount_due >= 0 AND amount_paid >= 0 AND amount_credited >= 0 AND amount_written_off >= 0",
                        name="amounts_not_negative"),
        CheckConstraint("amount_due = total - amount_paid - amount_credited - amount_written_off",
                        name="due_is_what_is_left"),
        # A number is given when posting, and only then.
        CheckConstraint("(status IN ('draft', 'void') AND number IS NULL) OR "
                        "(status IN ('posted', 'settled') AND number IS NOT NULL)", name="numbered_when_posted"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    number: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="draft")
    currency: Mapped[str] = mapped_column(String(3))
    # A named price plan (pricing agreement); none: the currency's default plan.
    price_plan_id: Mapped[str | None] = mapped_column(ForeignKey("price_plans.id"))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, default="")
    subtotal: Mapped[int] = mapped_column(BigInteger, default=0)   # sum of the lines' net
    tax_total: Mapped[int] = mapped_column(BigInteger, default=0)  # sum of the lines' tax
    total: Mapped[int] = mapped_column(BigInteger, default=0)      # sum of the lines' gross (what is billed)
    credits_value: Mapped[int] = mapped_column(BigInteger, default=0)  # gross of the units paid with credits
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_credited: Mapped[int] = mapped_column(BigInteger, default=0)
    # Closed by the account's write-off (billing.lifecycle.write_off): debt that will never be collected.
    amount_written_off: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    amount_due: Mapped[int] = mapped_column(BigInteger, default=0)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A bill (billing.subscriptions): the subscription it bills and the days it covers (end exclusive).
    subscription_id: Mapped[str | None] = mapped_column(String(40), index=True)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)


Index("ix_invoices_ws_id", Invoice.workspace_id, Invoice.id)
Index("ix_invoices_account_due", Invoice.account_id, Invoice.status, Invoice.due_date)


class InvoiceLine(Base):
    """One line; net, tax and gross are what is billed (after the units paid with credits)."""

    __tablename__ = "invoice_lines"
    __table_args__ = (
        CheckConstraint("quantity_milli > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        CheckConstraint("credit_quantity_milli >= 0 AND credit_quantity_milli <= quantity_milli",
                        name="credits_within_quantity"),
        CheckConstraint("net + tax = gross", name="net_plus_tax_is_gross"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"))
    position: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    product_code: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500))
    quantity_milli: Mapped[int] = mapped_column(BigInteger)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    discount_kind: Mapped[str | None] = mapped_column(String(10))  # percent | amount
    discount_value: Mapped[int | None] = mapped_column(BigInteger)
    tax_rate_id: Mapped[str | None] = mapped_column(ForeignKey("tax_rates.id"))
    tax_rate_bp: Mapped[int] = mapped_column(Integer, default=0)
    tax_inclusive: Mapped[bool] = mapped_column(Boolean, default=False)
    net: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    gross: Mapped[int] = mapped_column(BigInteger)
    discount_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # Units of the line paid with credits (line-level hook; credits.consume with reference invoice_line).
    credit_quantity_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_value: Mapped[int] = mapped_column(BigInteger, default=0)
    consumption_id: Mapped[str | None] = mapped_column(ForeignKey("consumptions.id"))
    # A credit package line: who receives its pack when the invoice is paid (none: the invoice's customer).
    package_holder_kind: Mapped[str | None] = mapped_column(String(20))
    package_holder_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_invoice_lines_invoice", InvoiceLine.invoice_id, InvoiceLine.position)


class CreditNote(Base):
    __tablename__ = "credit_notes"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        CheckConstraint("amount > 0 AND tax >= 0 AND tax <= amount", name="amounts_valid"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"))
    number: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)  # gross credited
    tax: Mapped[int] = mapped_column(BigInteger)     # the tax part of it
    reason: Mapped[str] = mapped_column(String(500), default="")
    # [{"line_id": ..., "amount": ...}] when credited by lines; empty for a full or amount credit note.
    lines: Mapped[list] = mapped_column(JSONType, default=list)
    issue_date: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_credit_notes_invoice", CreditNote.invoice_id, CreditNote.id)
Index("ix_credit_notes_ws_id", CreditNote.workspace_id, CreditNote.id)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("unallocated >= 0 AND unallocated <= amount", name="unallocated_in_range"),
        CheckConstraint("method IN ('cash', 'bank_transfer', 'card', 'other', 'wallet')", name="method_known"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(200), default="")
    received_on: Mapped[date] = mapped_column(Date)
    # What is left on the account as a credit (not allocated to any invoice yet).
    unallocated: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_payments_ws_id", Payment.workspace_id, Payment.id)
Index("ix_payments_account", Payment.account_id, Payment.id)


class PaymentAllocation(Base):
    __tablename__ = "payment_allocations"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_payment_allocations_payment", PaymentAllocation.payment_id, PaymentAllocation.id)
Index("ix_payment_allocations_invoice", PaymentAllocation.invoice_id, PaymentAllocation.id)


class Refund(Base):
    """Money given back to the customer out of the account's credit (billing.payments.refund_credit): what
    payments left unallocated, an overpayment or what a credit note released. Posted to the ledger as a debit
    of the account against the workspace's `payments` account (the reverse of a payment)."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("method IN ('cash', 'bank_transfer', 'card', 'other')", name="method_known"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(500))
    reference: Mapped[str] = mapped_column(String(200), default="")
    refunded_on: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_refunds_ws_id", Refund.workspace_id, Refund.id)
Index("ix_refunds_account", Refund.account_id, Refund.id)


class RefundPart(Base):
    """The part of a refund taken from one payment's unallocated amount: a payment's unallocated is always its
    amount less its allocations and its refund parts (billing.verify)."""

    __tablename__ = "refund_parts"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    refund_id: Mapped[str] = mapped_column(ForeignKey("refunds.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    amount: Mapped[int] = mapped_column(BigInteger)


Index("ix_refund_parts_refund", RefundPart.refund_id, RefundPart.id)
Index("ix_refund_parts_payment", RefundPart.payment_id, RefundPart.id)
