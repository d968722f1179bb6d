"""Request and answer bodies of credit control: credit ratings, override rules, the Change credit terms
action, the spend decision and the account lifecycle actions. Requests refuse unknown fields (Input)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from creditdesk.billing.schemas import AccountOut
from creditdesk.parties.schemas import Input

SpendEvent = Literal["invoice_post", "purchase", "subscription_activate", "service_add", "wallet_debit",
                     "credit_consume_on_account"]
SuspensionReason = Literal["dispute", "credit_check"]
CreditLimitStatus = Literal["exceeded", "not_exceeded"]

MAX_MINOR = 10**15
# Strict: a limit is an integer of minor units, never true/false or a string.
LimitMap = dict[Annotated[str, Field(min_length=3, max_length=3)],
                Annotated[int, Field(strict=True, ge=0, le=MAX_MINOR)]]
LIMITS_HELP = ("Credit limit per currency (ISO 4217 code -> minor units, >= 0); a currency left out has no limit "
               "for accounts of this rating.")


# --- credit ratings ---

class CreditRatingCreate(Input):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$",
                      description="Unique in the workspace, never changed (A, B, C...).")
    name: str = Field(min_length=1, max_length=200)
    limits: LimitMap = Field(default_factory=dict, max_length=50, description=LIMITS_HELP)


class CreditRatingUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    limits: LimitMap | None = Field(default=None, max_length=50,
                                          description="Replaces every limit of the rating. " + LIMITS_HELP)


class CreditRatingOut(BaseModel):
    id: str
    object: Literal["credit_rating"] = "credit_rating"
    code: str
    name: str
    limits: dict[str, int]
    created_at: datetime
    updated_at: datetime


# --- override credit limit rules ---

class OverrideRuleCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    events: list[SpendEvent] = Field(min_length=1, max_length=6, description="The events the rule lets through.")
    classifications: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list, max_length=50,
                                       description="Account classifications (any when empty; case-insensitive).")
    credit_rating_ids: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(default_factory=list, max_length=50,
                                         description="Credit ratings of the account (any when empty).")
    kyc_profiles: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(default_factory=list, max_length=50,
                                    description="KYC profiles of the account's customer (any when empty).")
    active: bool = True


class OverrideRuleUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    events: list[SpendEvent] | None = Field(default=None, min_length=1, max_length=6)
    classifications: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(default=None, max_length=50)
    credit_rating_ids: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(default=None, max_length=50)
    kyc_profiles: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(default=None, max_length=50)
    active: bool | None = None


class OverrideRuleOut(BaseModel):
    id: str
    object: Literal["override_rule"] = "override_rule"
    name: str
    events: list[str]
    classifications: list[str]
    credit_rating_ids: list[str]
    kyc_profiles: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime


# --- Change credit terms ---

class CreditTermsChange(Input):
    credit_period_days: int | None = Field(default=None, ge=0, le=3650,
                                           description="Inside the default credit terms' proximity range.")
    credit_rating_id: str | None = Field(default=None, max_length=40,
                                         description="null: no rating (then no limit unless credit_limit).")
    credit_limit: int | None = Field(default=None, ge=0, le=MAX_MINOR,
                                     description="The account's own limit in minor units; null: the rating's.")


# --- the spend decision ---

class SpendQuestion(Input):
    account_id: str = Field(min_length=1, max_length=40)
    event: SpendEvent
    amount: int = Field(ge=0, le=MAX_MINOR, description="Minor units of the account's currency.")
    product: str | None = Field(default=None, min_length=1, max_length=100,
                                description="A product id or code of the catalogue (checked; reported back).")


class ReasonOut(BaseModel):
    code: str
    blocking: bool
    message: str


class RuleRef(BaseModel):
    id: str
    name: str


class SpendDecisionOut(BaseModel):
    object: Literal["spend_decision"] = "spend_decision"
    allowed: bool
    account_id: str
    event: str
    amount: int
    currency: str
    product: str | None
    account_status: str
    balance: int
    balance_after: int
    credit_limit: int | None
    credit_limit_source: Literal["account", "rating"] | None
    credit_limit_status: CreditLimitStatus = Field(description="With the amount of this event.")
    override_rule: RuleRef | None
    reasons: list[ReasonOut]


# --- lifecycle ---

class SuspendRequest(Input):
    reason: SuspensionReason
    note: str | None = Field(default=None, max_length=1000)


class LifecycleNote(Input):
    note: str | None = Field(default=None, max_length=1000)


class WriteOffRequest(Input):
    reason: str = Field(min_length=1, max_length=500)


class WriteOffOut(BaseModel):
    object: Literal["write_off"] = "write_off"
    account: AccountOut
    amount: int
    currency: str
    reason: str
    transfer_id: str
    entry_id: str
