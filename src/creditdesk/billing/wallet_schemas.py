"""Request and answer bodies of wallets and payment preferences (billing.wallets, billing.payment_preferences)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from creditdesk.parties.schemas import Input

TopUpMethod = Literal["cash", "bank_transfer", "card", "other"]


class WalletTopUp(Input):
    amount: int = Field(ge=1, le=10**15, description="Minor units of the account's currency (1000 = 10.00 EUR).")
    method: TopUpMethod = Field(default="bank_transfer", description="How the money was received.")
    reference: str = Field(default="", max_length=200, description="e.g. the bank transfer's reference.")


class WalletPay(Input):
    amount: int | None = Field(default=None, ge=1, le=10**15,
                               description="Minor units; omitted: everything the invoice has due.")


class WalletRefund(Input):
    amount: int = Field(ge=1, le=10**15, description="Minor units given back to the customer.")
    reason: str = Field(min_length=1, max_length=500)
    method: TopUpMethod = Field(default="bank_transfer", description="How the money goes back.")


class WalletOut(BaseModel):
    id: str
    object: Literal["wallet"] = "wallet"
    account_id: str
    account_number: str
    currency: str
    balance: int = Field(description="Minor units: what the wallet's packs have left.")
    credit_type: str = Field(description="The wallet money credit type its packs are of.")
    created_at: datetime


class WalletTransactionOut(BaseModel):
    id: str
    object: Literal["wallet_transaction"] = "wallet_transaction"
    wallet_id: str
    kind: Literal["top_up", "payment", "refund"]
    amount: int
    method: str | None
    reference: str
    payment_id: str | None
    pack_id: str | None
    created_at: datetime


# --- payment preferences ---

PreferenceKind = Literal["manual", "bank_transfer", "card", "wallet"]


class PreferenceCreate(Input):
    account_id: str = Field(min_length=1, max_length=40)
    kind: PreferenceKind = Field(description="manual, bank_transfer, card (through a gateway) or wallet.")
    gateway: Literal["stripe"] | None = Field(default=None, description="For card: the payment gateway.")
    opt_in_subscriptions: bool = Field(default=False, description=(
        "Pay subscription invoices with it; charged first whenever the credit limit is about to be exceeded. "
        "Card and wallet preferences only."))
    opt_in_purchases: bool = Field(default=False, description=(
        "Pay one-off purchases (invoices) with it; charged first whenever the credit limit is about to be "
        "exceeded. Card and wallet preferences only."))
    use_billing_address: bool = True


class PreferenceUpdate(Input):
    opt_in_subscriptions: bool | None = None
    opt_in_purchases: bool | None = None
    use_billing_address: bool | None = None
    default_card_id: str | None = Field(default=None, max_length=40)
    active: bool | None = Field(default=None, description="false removes the preference from use.")


class CardRegister(Input):
    card_token: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_]+$", description=(
        "The gateway's token of the card (Stripe: a PaymentMethod id, pm_...), made by the gateway's own "
        "form in the customer's browser. Card numbers are never sent to creditdesk."))
    make_default: bool = True


class CardOut(BaseModel):
    id: str
    object: Literal["card"] = "card"
    gateway: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool
    created_at: datetime


class PreferenceOut(BaseModel):
    id: str
    object: Literal["payment_preference"] = "payment_preference"
    account_id: str
    kind: str
    gateway: str | None
    opt_in_subscriptions: bool
    opt_in_purchases: bool
    use_billing_address: bool
    default_card_id: str | None
    active: bool
    cards: list[CardOut]
    created_at: datetime
    updated_at: datetime


class ChargeOut(BaseModel):
    id: str
    object: Literal["gateway_charge"] = "gateway_charge"
    account_id: str
    preference_id: str
    card_id: str
    invoice_id: str | None
    amount: int
    currency: str
    status: Literal["pending", "succeeded", "failed"]
    gateway_ref: str | None
    error_code: str | None
    error: str | None
    payment_id: str | None
    outcome: str
    created_at: datetime
