"""Wallets and payment preferences of accounts (seed 004).

- `wallets`: at most one per account. Its money is packs of a money credit type of the account's
  currency (`credit_types.wallet_currency` set, code `wallet_<currency>`), held by the account's customer and
  tied to the wallet by `packs.wallet_id`: the balance is what those packs have left, on the same ledger as
  every credit. Only the wallet service moves wallet money (governance refuses it on the credit paths).
- `wallet_transactions`: the wallet's own history, append-only: top_up (money received into the wallet),
  payment (an invoice paid from it: `payment_id` is the account payment it made), refund (money given back).
- `payment_preferences`: how an account pays: `manual`, `bank_transfer`, `card` (through `gateway`) or
  `wallet`; opted in for subscriptions and/or purchases (card and wallet only), a default card.
- `payment_cards`: cards registered with a gateway: only the gateway's tokens and the last four digits.
- `gateway_charges`: a charge decided in a transaction and made after its commit (an external call), with
  the same idempotency key on every try; `charge_due_at` is set until the outcome is recorded, so the
  recovery job makes a call whose request died.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, UTCDateTime

WALLET_TRANSACTION_KINDS = ("top_up", "payment", "refund")
PREFERENCE_KINDS = ("manual", "bank_transfer", "card", "wallet")
CHARGE_STATUSES = ("pending", "succeeded", "failed")


class Wallet(Base):
    __tablename__ = "wallets"
    __table_args__ = (UniqueConstraint("account_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"))
    credit_type_id: Mapped[str] = mapped_column(ForeignKey("credit_types.id"))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WalletTransaction(Base):
    __tablename__ = "wallet_transactions"
    __table_args__ = (
        CheckConstraint("kind IN ('top_up', 'payment', 'refund')", name="kind_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"))
    kind: Mapped[str] = mapped_column(String(12))
    amount: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str | None] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(200), default="")
    payment_id: Mapped[str | None] = mapped_column(ForeignKey("payments.id"))
    pack_id: Mapped[str | None] = mapped_column(ForeignKey("packs.id"))
    actor_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_wallet_transactions_wallet", WalletTransaction.wallet_id, WalletTransaction.id)


class PaymentPreference(Base):
    __tablename__ = "payment_preferences"
    __table_args__ = (
        CheckConstraint("kind IN ('manual', 'bank_transfer', 'card', 'wallet')", name="kind_known"),
        # Seed 004: opting in is for preferences of one payment gateway, or a wallet.
        CheckConstraint("kind IN ('card', 'wallet') OR (NOT opt_in_subscriptions AND NOT opt_in_purchases)",
                        name="opt_in_card_or_wallet"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"))
    kind: Mapped[str] = mapped_column(String(20))
    gateway: Mapped[str | None] = mapped_column(String(20))
    opt_in_subscriptions: Mapped[bool] = mapped_column(Boolean, default=False)
    opt_in_purchases: Mapped[bool] = mapped_column(Boolean, default=False)
    use_billing_address: Mapped[bool] = mapped_column(Boolean, default=True)
    default_card_id: Mapped[str | None] = mapped_column(String(40))
    gateway_customer_ref: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_payment_preferences_account", PaymentPreference.workspace_id, PaymentPreference.account_id)


class PaymentCard(Base):
    __tablename__ = "payment_cards"
    __table_args__ = (CheckConstraint("length(last4) = 4", name="last4_four"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    preference_id: Mapped[str] = mapped_column(ForeignKey("payment_preferences.id"))
    gateway: Mapped[str] = mapped_column(String(20))
    card_ref: Mapped[str] = mapped_column(String(100))
    brand: Mapped[str] = mapped_column(String(20))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_payment_cards_preference", PaymentCard.preference_id)


class GatewayCharge(Base):
    __tablename__ = "gateway_charges"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("billing_accounts.id"))
    preference_id: Mapped[str] = mapped_column(ForeignKey("payment_preferences.id"))
    card_id: Mapped[str] = mapped_column(ForeignKey("payment_cards.id"))
    invoice_id: Mapped[str | None] = mapped_column(ForeignKey("invoices.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    gateway_ref: Mapped[str | None] = mapped_column(String(100))
    error_code: Mapped[str | None] = mapped_column(String(60))
    error: Mapped[str | None] = mapped_column(String(500))
    payment_id: Mapped[str | None] = mapped_column(ForeignKey("payments.id"))
    outcome: Mapped[str] = mapped_column(String(500), default="")
    actor_id: Mapped[str | None] = mapped_column(String(40))
    charge_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    charge_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_gateway_charges_due", GatewayCharge.charge_due_at)
Index("ix_gateway_charges_invoice", GatewayCharge.invoice_id)
