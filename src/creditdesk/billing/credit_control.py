"""Credit control (seed 004): credit ratings and their limits, the account's credit terms, the credit limit
status, override credit limit rules, and the one spend decision every fund-using path asks.

The limit in force on an account: its own `credit_limit` when set, else its rating's limit in the account's
currency, else none. The credit limit status is `exceeded` when the balance (billing.accounts: opening
balance + posted since) plus the amount being decided is over that limit; equal to the limit is allowed
(the limit is "the maximum allowed account balance").

`decide_spend` answers "may this account spend `amount` on `event`?" with every reason and changes nothing;
`require_spend` asks the same function and raises the first blocking reason, so a preview and the real
action can never disagree. Reasons, in the order they are raised:

- `account_terminated`: a terminated account takes nothing (every event);
- `account_suspended`: a suspended account takes no new subscription or service (events
  subscription_activate, service_add); its other transactions still post;
- `credit_limit_exceeded`: the balance plus the amount would be over the limit, and no active override rule
  matches. A matching rule lets the event through (`credit_limit_overridden`); the caller writes the audit
  row naming it (`record_override`, or `authorize_spend`, which does both).

Who may: every staff user reads ratings, rules and decisions; masters (finance) change ratings, override rules
and credit terms."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, currencies
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import accounts
from creditdesk.billing import credit_schemas as cs
from creditdesk.billing.credit_models import SPEND_EVENTS, CreditRating, CreditRatingLimit, OverrideRule
from creditdesk.billing.models import BillingAccount
from creditdesk.billing.settings import require_finance, require_settings
from creditdesk.errors import Conflict, InvalidInput
from creditdesk.ids import new_id
from creditdesk.ledger.batch import Reference
from creditdesk.ledger.models import LedgerAccount
from creditdesk.pagination import Page, paginate
from creditdesk.parties.models import Customer
from creditdesk.repository import get_in_workspace

EXCEEDED, NOT_EXCEEDED = "exceeded", "not_exceeded"
# Events a suspended account refuses (seed 004: "new subscriptions or service requests cannot be related").
REFUSED_WHEN_SUSPENDED = frozenset({"subscription_activate", "service_add"})


# --- credit ratings ----------------------------------------------------------------------------------------

def get_rating(session: Session, workspace_id: str, rating_id: str) -> CreditRating:
    return get_in_workspace(session, CreditRating, workspace_id, rating_id, label="credit rating")


def limits_of(session: Session, rating_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """rating id -> {currency: limit}, in one read."""
    ids = sorted(set(rating_ids))
    out: dict[str, dict[str, int]] = {i: {} for i in ids}
    if ids:
        for row in session.execute(select(CreditRatingLimit).where(CreditRatingLimit.rating_id.in_(ids))).scalars():
            out[row.rating_id][row.currency] = row.amount
    return out


def _checked_limits(limits: dict[str, int]) -> dict[str, int]:
    checked: dict[str, int] = {}
    for code, amount in limits.items():
        currency = currencies.check_currency(code, field="limits")
        if currency in checked:
            raise InvalidInput(f"{currency} is given twice.", code="duplicate_currency", field="limits")
        checked[currency] = amount
    return dict(sorted(checked.items()))


def _set_limits(session: Session, rating: CreditRating, limits: dict[str, int]) -> None:
    session.execute(delete(CreditRatingLimit).where(CreditRatingLimit.rating_id == rating.id))
    for currency, amount in limits.items():
        session.add(CreditRatingLimit(rating_id=rating.id, currency=currency, workspace_id=rating.workspace_id,
                                      amount=amount))
    session.flush()


def rating_out(rating: CreditRating, limits: dict[str, int]) -> cs.CreditRatingOut:
    return cs.CreditRatingOut(id=rating.id, code=rating.code, name=rating.name, limits=limits,
                              created_at=rating.created_at, updated_at=rating.updated_at)


def ratings_out(session: Session, ratings: Sequence[CreditRating]) -> list[cs.CreditRatingOut]:
    limits = limits_of(session, [r.id for r in ratings])
    return [rating_out(r, limits[r.id]) for r in ratings]


def create_rating(session: Session, data: cs.CreditRatingCreate, *, actor: Actor) -> cs.CreditRatingOut:
    require_finance(actor, "change credit ratings")
    ws = actor.workspace_id
    limits = _checked_limits(data.limits)
    if session.scalar(select(CreditRating.id).where(CreditRating.workspace_id == ws, CreditRating.code == data.code)):
        raise Conflict(f"A credit rating with code {data.code!r} exists.", code="credit_rating_code_taken",
                       field="code")
    now = clock.now()
    rating = CreditRating(id=new_id("crat"), workspace_id=ws, code=data.code, name=data.name, created_at=now,
                          updated_at=now)
    session.add(rating)
    session.flush()
    _set_limits(session, rating, limits)
    audit.record(session, actor=actor, action="credit_rating.create", object_type="credit_rating",
                 object_id=rating.id, after=snapshot(rating, limits=limits))
    return rating_out(rating, limits)


def update_rating(session: Session, rating_id: str, data: cs.CreditRatingUpdate, *,
                  actor: Actor) -> cs.CreditRatingOut:
    rating = get_in_workspace(session, CreditRating, actor.workspace_id, rating_id, label="credit rating",
                              for_update=True)
    require_finance(actor, "change credit ratings")
    limits = limits_of(session, [rating.id])[rating.id]
    before = snapshot(rating, limits=limits)
    fields = data.model_fields_set
    for name in ("name", "limits"):
        if name in fields and getattr(data, name) is None:
            raise InvalidInput(f"{name} cannot be null.", code="field_not_nullable", field=name)
    if "name" in fields:
        rating.name = data.name
    if "limits" in fields:
        limits = _checked_limits(data.limits)
        _set_limits(session, rating, limits)
    rating.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="credit_rating.update", object_type="credit_rating",
                 object_id=rating.id, before=before, after=snapshot(rating, limits=limits))
    return rating_out(rating, limits)


def list_ratings(session: Session, *, actor: Actor, limit: int | None = None,
                 cursor: str | None = None) -> Page[CreditRating]:
    stmt = select(CreditRating).where(CreditRating.workspace_id == actor.workspace_id)
    return paginate(session, stmt, id_column=CreditRating.id, limit=limit, cursor=cursor)


def all_ratings(session: Session, workspace_id: str) -> list[CreditRating]:
    """Every rating of the workspace by code (a workspace has a handful): for pickers."""
    return list(session.scalars(select(CreditRating).where(CreditRating.workspace_id == workspace_id)
                                .order_by(CreditRating.code)))


# --- the limit in force and the credit limit status -----------------------------------------------------------

@dataclass(frozen=True)
class CreditState:
    """An account's balance and the limit in force (None: no limit), and where the limit comes from."""

    balance: int
    credit_limit: int | None
    limit_source: str | None  # "account" | "rating" | None

    def exceeded(self, amount: int = 0) -> bool:
        return self.credit_limit is not None and self.balance + amount > self.credit_limit

    def status(self, amount: int = 0) -> str:
        return EXCEEDED if self.exceeded(amount) else NOT_EXCEEDED


def _state(account: BillingAccount, balance: int, rating_limits: dict[str, int] | None) -> CreditState:
    if account.credit_limit is not None:
        return CreditState(balance, account.credit_limit, "account")
    if account.credit_rating_id is not None and rating_limits and account.currency in rating_limits:
        return CreditState(balance, rating_limits[account.currency], "rating")
    return CreditState(balance, None, None)


def credit_state(session: Session, account: BillingAccount) -> CreditState:
    balance = accounts.account_balance(session, account).balance
    limits = limits_of(session, [account.credit_rating_id]).get(account.credit_rating_id) \
        if account.credit_rating_id else None
    return _state(account, balance, limits)


def credit_states(session: Session, rows: Sequence[BillingAccount]) -> dict[str, CreditState]:
    """The credit state of many accounts (a list page) in two reads."""
    balances = accounts.balances_of(session, list(rows))
    limits = limits_of(session, [a.credit_rating_id for a in rows if a.credit_rating_id])
    return {a.id: _state(a, balances[a.id], limits.get(a.credit_rating_id)) for a in rows}


def limit_status_clause(status: str):
    """A WHERE clause on billing_accounts for the accounts list's `credit_limit_status` filter: the same rule as
    CreditState.status, in SQL (balance = the ledger account's posted totals, as accounts.balances_of)."""
    if status not in (EXCEEDED, NOT_EXCEEDED):
        raise InvalidInput("credit_limit_status is exceeded or not_exceeded.", code="invalid_credit_limit_status",
                           field="credit_limit_status")
    a, lim, la = BillingAccount, CreditRatingLimit, LedgerAccount
    rating_limit = (select(lim.amount).where(lim.rating_id == a.credit_rating_id, lim.currency == a.currency)
                    .scalar_subquery())
    limit = func.coalesce(a.credit_limit, rating_limit)
    balance = select(la.debits_posted - la.credits_posted).where(la.id == a.ledger_account_id).scalar_subquery()
    if status == EXCEEDED:
        return and_(limit.is_not(None), balance > limit)
    return or_(limit.is_(None), balance <= limit)


# --- Change credit terms ----------------------------------------------------------------------------------

def change_credit_terms(session: Session, account_id: str, data: cs.CreditTermsChange, *,
                        actor: Actor) -> BillingAccount:
    """The account's credit period (inside the default credit terms' proximity range), credit rating and own
    credit limit (null: the rating's). Only the fields sent change. Masters (finance)."""
    account = accounts.get_account(session, actor.workspace_id, account_id, for_update=True)
    require_finance(actor, "change credit terms")
    fields = data.model_fields_set
    if not fields:
        raise InvalidInput("Send at least one of credit_period_days, credit_rating_id, credit_limit.",
                           code="nothing_to_change")
    if account.status == "terminated":
        raise Conflict("The account is terminated: its credit terms no longer change.", code="account_terminated")
    before = snapshot(account)
    if "credit_period_days" in fields:
        if data.credit_period_days is None:
            raise InvalidInput("credit_period_days cannot be null.", code="field_not_nullable",
                               field="credit_period_days")
        settings = require_settings(session, actor.workspace_id)
        account.credit_period_days = accounts.check_credit_period(settings, data.credit_period_days)
    if "credit_rating_id" in fields:
        account.credit_rating_id = get_rating(session, actor.workspace_id, data.credit_rating_id).id \
            if data.credit_rating_id else None
    if "credit_limit" in fields:
        account.credit_limit = data.credit_limit
    account.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="account.credit_terms_change", object_type="account",
                 object_id=account.id, before=before, after=snapshot(account))
    return account


# --- override credit limit rules ---------------------------------------------------------------------------

def _labels(values: Iterable[str]) -> list[str]:
    """Stripped, without blanks or repeats (case-insensitively), in the order given."""
    seen, out = set(), []
    for value in values:
        text = value.strip()
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            out.append(text)
    return out


def _rating_ids(session: Session, workspace_id: str, ids: Iterable[str]) -> list[str]:
    return sorted({get_rating(session, workspace_id, i).id for i in ids})


def rule_out(rule: OverrideRule) -> cs.OverrideRuleOut:
    return cs.OverrideRuleOut(id=rule.id, name=rule.name, events=list(rule.events),
                              classifications=list(rule.classifications),
                              credit_rating_ids=list(rule.credit_rating_ids), kyc_profiles=list(rule.kyc_profiles),
                              active=rule.active, created_at=rule.created_at, updated_at=rule.updated_at)


def _name_free(session: Session, workspace_id: str, name: str, rule_id: str | None = None) -> None:
    taken = session.scalar(select(OverrideRule.id).where(OverrideRule.workspace_id == workspace_id,
                                                         OverrideRule.name == name))
    if taken and taken != rule_id:
        raise Conflict(f"An override rule named {name!r} exists.", code="override_rule_name_taken", field="name")


def create_rule(session: Session, data: cs.OverrideRuleCreate, *, actor: Actor) -> OverrideRule:
    require_finance(actor, "change override credit limit rules")
    ws = actor.workspace_id
    _name_free(session, ws, data.name)
    now = clock.now()
    rule = OverrideRule(id=new_id("ovr"), workspace_id=ws, name=data.name,
                        events=[e for e in SPEND_EVENTS if e in data.events],
                        classifications=_labels(data.classifications),
                        credit_rating_ids=_rating_ids(session, ws, data.credit_rating_ids),
                        kyc_profiles=_labels(data.kyc_profiles), active=data.active, created_at=now, updated_at=now)
    session.add(rule)
    session.flush()
    audit.record(session, actor=actor, action="override_rule.create", object_type="override_rule",
                 object_id=rule.id, after=snapshot(rule))
    return rule


def update_rule(session: Session, rule_id: str, data: cs.OverrideRuleUpdate, *, actor: Actor) -> OverrideRule:
    ws = actor.workspace_id
    rule = get_in_workspace(session, OverrideRule, ws, rule_id, label="override rule", for_update=True)
    require_finance(actor, "change override credit limit rules")
    before = snapshot(rule)
    fields = data.model_fields_set
    for name in fields:
        if getattr(data, name) is None:
            raise InvalidInput(f"{name} cannot be null.", code="field_not_nullable", field=name)
    if "name" in fields:
        _name_free(session, ws, data.name, rule.id)
        rule.name = data.name
    if "events" in fields:
        rule.events = [e for e in SPEND_EVENTS if e in data.events]
    if "classifications" in fields:
        rule.classifications = _labels(data.classifications)
    if "credit_rating_ids" in fields:
        rule.credit_rating_ids = _rating_ids(session, ws, data.credit_rating_ids)
    if "kyc_profiles" in fields:
        rule.kyc_profiles = _labels(data.kyc_profiles)
    if "active" in fields:
        rule.active = data.active
    rule.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="override_rule.update", object_type="override_rule",
                 object_id=rule.id, before=before, after=snapshot(rule))
    return rule


def get_rule(session: Session, workspace_id: str, rule_id: str) -> OverrideRule:
    return get_in_workspace(session, OverrideRule, workspace_id, rule_id, label="override rule")


def list_rules(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None,
               active: bool | None = None) -> Page[OverrideRule]:
    stmt = select(OverrideRule).where(OverrideRule.workspace_id == actor.workspace_id)
    if active is not None:
        stmt = stmt.where(OverrideRule.active == active)
    return paginate(session, stmt, id_column=OverrideRule.id, limit=limit, cursor=cursor)


def _folded(value: str | None) -> str | None:
    return value.strip().casefold() if value and value.strip() else None


def rule_matches(rule: OverrideRule, event: str, *, classification: str | None, credit_rating_id: str | None,
                 kyc_profile: str | None) -> bool:
    """Active, names the event, and every non-empty condition holds (an empty list: any value, none too)."""
    if not rule.active or event not in rule.events:
        return False
    if rule.classifications and _folded(classification) not in {_folded(c) for c in rule.classifications}:
        return False
    if rule.credit_rating_ids and credit_rating_id not in rule.credit_rating_ids:
        return False
    if rule.kyc_profiles and _folded(kyc_profile) not in {_folded(k) for k in rule.kyc_profiles}:
        return False
    return True


def matching_rule(rules: Iterable[OverrideRule], event: str, **conditions) -> OverrideRule | None:
    """The oldest matching rule (rules ordered by id, which sorts by creation): one answer, always the same."""
    for rule in sorted(rules, key=lambda r: r.id):
        if rule_matches(rule, event, **conditions):
            return rule
    return None


# --- the spend decision ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    blocking: bool


@dataclass(frozen=True)
class SpendDecision:
    account: BillingAccount
    event: str
    amount: int
    product: str | None
    state: CreditState
    override_rule: OverrideRule | None
    reasons: list[Reason] = field(default_factory=list)
    charge_plan: object | None = None  # billing.payment_preferences.ChargePlan: paid first, then allowed

    @property
    def allowed(self) -> bool:
        return not any(r.blocking for r in self.reasons)

    @property
    def blocking(self) -> list[Reason]:
        return [r for r in self.reasons if r.blocking]


def decide(account: BillingAccount, event: str, amount: int, state: CreditState, rules: Iterable[OverrideRule], *,
           kyc_profile: str | None, product: str | None = None) -> SpendDecision:
    """The decision from what was read (no database): the one rule, shared by decide_spend and require_spend."""
    def money(minor: int) -> str:
        return currencies.format_money(minor, account.currency)

    reasons: list[Reason] = []
    if account.status == "terminated":
        reasons.append(Reason("account_terminated", f"Account {account.number} is terminated: it takes no "
                              "transactions, subscriptions, wallets or service requests.", True))
    elif account.status == "suspended":
        why = (account.suspension_reason or "").replace("_", " ")
        if event in REFUSED_WHEN_SUSPENDED:
            reasons.append(Reason("account_suspended", f"Account {account.number} is suspended ({why}): it takes no "
                                  "new subscriptions or services until it is reactivated.", True))
        else:
            reasons.append(Reason("suspended_transactions_post", f"Account {account.number} is suspended ({why}); "
                                  "its transactions still post.", False))
    rule = None
    if state.credit_limit is None:
        reasons.append(Reason("no_credit_limit", "The account has no credit limit.", False))
    elif not state.exceeded(amount):
        reasons.append(Reason("within_credit_limit", f"The balance after it, {money(state.balance + amount)}, is "
                              f"within the credit limit of {money(state.credit_limit)}.", False))
    else:
        rule = matching_rule(rules, event, classification=account.classification,
                             credit_rating_id=account.credit_rating_id, kyc_profile=kyc_profile)
        over = (f"The balance after it, {money(state.balance + amount)}, would be over the credit limit of "
                f"{money(state.credit_limit)}")
        if rule is None:
            reasons.append(Reason("credit_limit_exceeded", over + "; no override rule matches.", True))
        else:
            reasons.append(Reason("credit_limit_overridden", over + f"; override rule {rule.name!r} lets {event} "
                                  "through.", False))
    return SpendDecision(account, event, amount, product, state, rule, reasons)


def _check_question(event: str, amount: int) -> None:
    if event not in SPEND_EVENTS:
        raise InvalidInput(f"event is one of {', '.join(SPEND_EVENTS)}.", code="unknown_event", field="event")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise InvalidInput("amount is an integer of minor units, 0 or more.", code="invalid_amount", field="amount")


def decide_spend(session: Session, account: BillingAccount, event: str, amount: int, *,
                 product: str | None = None) -> SpendDecision:
    """May `account` spend `amount` (minor units of its currency) on `event`? Every reason, nothing changed.
    `product` (an id or code of the catalogue) is checked and reported back. When the account is a member of
    a group whose parent funds that product, the charge is billed to the parent (billing.groups, at invoice
    posting): the decision is then the parent's (its status, its credit limit), `account_id` names the
    parent, and the first reason, `group_funded`, says so."""
    _check_question(event, amount)
    product_code, funded_by = None, None
    if product is not None:
        from creditdesk.billing import groups
        from creditdesk.catalog.service import get_product

        found = get_product(session, account.workspace_id, product)
        product_code = found.code
        membership = groups.membership_of(session, account)
        if membership is not None and groups.is_funded(session, membership, found):
            funded_by = session.get(BillingAccount, membership.parent_id)
    payer = funded_by or account
    rules = list(session.scalars(select(OverrideRule).where(
        OverrideRule.workspace_id == account.workspace_id, OverrideRule.active.is_(True))))
    kyc = session.scalar(select(Customer.kyc_profile).where(Customer.id == payer.customer_id)) if rules else None
    decision = decide(payer, event, amount, credit_state(session, payer), rules, kyc_profile=kyc,
                      product=product_code)
    decision = _with_charge_first(session, decision)
    if funded_by is None:
        return decision
    funded = Reason("group_funded", f"{product_code} charges of account {account.number} are funded by its group: "
                    f"the parent account {funded_by.number} pays, so its status and credit limit decide.", False)
    return SpendDecision(decision.account, event, amount, product_code, decision.state, decision.override_rule,
                         [funded, *decision.reasons], decision.charge_plan)


def _with_charge_first(session: Session, decision: SpendDecision) -> SpendDecision:
    """Blocked by the credit limit alone, with an opted-in preference that can pay first (a wallet that has
    enough, a card): allowed, the reason `charge_first` saying what is paid first and how."""
    if [r.code for r in decision.blocking] != ["credit_limit_exceeded"]:
        return decision
    from creditdesk.billing import payment_preferences  # it reads wallets, which read invoices

    state = decision.state
    plan = payment_preferences.plan_for(session, decision.account, decision.event, decision.amount,
                                        balance=state.balance, credit_limit=state.credit_limit)
    if plan is None:
        return decision
    reasons = [r for r in decision.reasons if r.code != "credit_limit_exceeded"]
    reasons.append(Reason("charge_first", plan.message, False))
    return SpendDecision(decision.account, decision.event, decision.amount, decision.product, state, None, reasons,
                         plan)


class SpendRefused(Conflict):
    """A fund-using event refused: `code` is the first blocking reason (account_terminated, account_suspended,
    credit_limit_exceeded); `reasons` lists them all."""


def refusal(decision: SpendDecision) -> SpendRefused:
    first = decision.blocking[0]
    state = decision.state
    return SpendRefused(first.message, code=first.code, account_id=decision.account.id, event=decision.event,
                        amount=decision.amount, balance=state.balance, credit_limit=state.credit_limit,
                        reasons=[r.code for r in decision.blocking])


def require_spend(session: Session, account: BillingAccount, event: str, amount: int, *,
                  product: str | None = None) -> OverrideRule | None:
    """decide_spend, raising SpendRefused (409, its code the first blocking reason) when it says no; else the
    override rule that let the event through (None when the limit was not in the way), for the caller's audit
    row (record_override). Lock the account row first (accounts.get_account(..., for_update=True)) so that
    the answer holds until the commit."""
    decision = decide_spend(session, account, event, amount, product=product)
    if not decision.allowed:
        raise refusal(decision)
    if decision.charge_plan is not None:
        # Allowed only once paid first (payment_preferences.charge_first): a path that does not pay first
        # is over the limit.
        raise SpendRefused("The credit limit would be exceeded; " + decision.charge_plan.message,
                           code="credit_limit_exceeded", account_id=account.id, event=event, amount=amount,
                           balance=decision.state.balance, credit_limit=decision.state.credit_limit,
                           reasons=["credit_limit_exceeded"])
    return decision.override_rule


def record_override(session: Session, account: BillingAccount, event: str, amount: int, rule: OverrideRule, *,
                    actor: Actor, reference: Reference | None = None) -> None:
    """The audit row of an event an override rule let over the credit limit: it names the rule."""
    state = credit_state(session, account)
    audit.record(session, actor=actor, action="account.credit_limit_override", object_type="account",
                 object_id=account.id, after={
                     "event": event, "amount": amount, "currency": account.currency, "balance": state.balance,
                     "credit_limit": state.credit_limit, "override_rule_id": rule.id,
                     "override_rule_name": rule.name,
                     "reference_kind": reference.kind if reference else None,
                     "reference_id": reference.id if reference else None})


def authorize_spend(session: Session, account: BillingAccount, event: str, amount: int, *, actor: Actor,
                    product: str | None = None, reference: Reference | None = None) -> OverrideRule | None:
    """require_spend, then the audit row naming the override rule when one let the event through. The one
    call a fund-using path makes before it posts (lock the account row first)."""
    rule = require_spend(session, account, event, amount, product=product)
    if rule is not None:
        record_override(session, account, event, amount, rule, actor=actor, reference=reference)
    return rule


def check_invoice_post(session: Session, account: BillingAccount, amount: int, *, actor: Actor,
                       reference: Reference | None = None) -> OverrideRule | None:
    """The hook of invoice posting (billing.invoices): call it with the account row locked, in the posting's
    transaction, before posting an invoice of `amount` minor units to the account. It refuses (409
    account_terminated / credit_limit_exceeded; a suspended account still posts invoices) or returns the
    override rule that let the invoice over the limit, already audited with `reference` (the invoice)."""
    return authorize_spend(session, account, "invoice_post", amount, actor=actor, reference=reference)


def decision_out(decision: SpendDecision) -> cs.SpendDecisionOut:
    account, state = decision.account, decision.state
    rule = decision.override_rule
    return cs.SpendDecisionOut(
        allowed=decision.allowed, account_id=account.id, event=decision.event, amount=decision.amount,
        currency=account.currency, product=decision.product, account_status=account.status,
        balance=state.balance, balance_after=state.balance + decision.amount, credit_limit=state.credit_limit,
        credit_limit_source=state.limit_source, credit_limit_status=state.status(decision.amount),
        override_rule=cs.RuleRef(id=rule.id, name=rule.name) if rule else None,
        reasons=[cs.ReasonOut(code=r.code, blocking=r.blocking, message=r.message) for r in decision.reasons])
