"""Credit control: credit ratings, override credit limit rules, the Change credit terms action, the spend
decision, and the account lifecycle (suspend, reactivate, terminate, write off). README "Credit control"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session

from creditdesk.api.deps import AccountId, Cursor, Limit, WriteContext, get_actor, read_session, write_context
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.billing import accounts, credit_control, lifecycle
from creditdesk.billing import credit_schemas as cs
from creditdesk.billing.schemas import AccountOut

router = APIRouter()

RatingId = Annotated[str, Path(description="The id of the credit rating, as its `id` field gives it.")]
RuleId = Annotated[str, Path(description="The id of the override rule, as its `id` field gives it.")]


# --- credit ratings ---

@router.get("/credit-ratings", response_model=ListOf[cs.CreditRatingOut], tags=["credit control"])
def list_credit_ratings(limit: int | None = Limit, cursor: str | None = Cursor, actor: Actor = Depends(get_actor),
                        session: Session = Depends(read_session)):
    page = credit_control.list_ratings(session, actor=actor, limit=limit, cursor=cursor)
    return {"object": "list", "data": credit_control.ratings_out(session, page.items),
            "next_cursor": page.next_cursor}


@router.post("/credit-ratings", status_code=201, response_model=cs.CreditRatingOut, tags=["credit control"])
def create_credit_rating(body: cs.CreditRatingCreate, ctx: WriteContext = Depends(write_context)):
    """Masters only. `limits`: the credit limit per currency, in minor units (the default credit terms)."""
    return ctx.run(lambda db, actor: credit_control.create_rating(db, body, actor=actor), status_code=201)


@router.get("/credit-ratings/{rating_id}", response_model=cs.CreditRatingOut, tags=["credit control"])
def get_credit_rating(rating_id: RatingId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return credit_control.ratings_out(session, [credit_control.get_rating(session, actor.workspace_id, rating_id)])[0]


@router.patch("/credit-ratings/{rating_id}", response_model=cs.CreditRatingOut, tags=["credit control"])
def update_credit_rating(rating_id: RatingId, body: cs.CreditRatingUpdate, ctx: WriteContext = Depends(write_context)):
    """Masters only. `limits` replaces every limit of the rating; the code never changes."""
    return ctx.run(lambda db, actor: credit_control.update_rating(db, rating_id, body, actor=actor))


# --- override credit limit rules ---

@router.get("/override-rules", response_model=ListOf[cs.OverrideRuleOut], tags=["credit control"])
def list_override_rules(limit: int | None = Limit, cursor: str | None = Cursor,
                        active: bool | None = Query(default=None, description=(
                            "`true`: only rules in use; `false`: only those switched off; omitted: both.")),
                        actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = credit_control.list_rules(session, actor=actor, limit=limit, cursor=cursor, active=active)
    return list_of(page.items, page.next_cursor, credit_control.rule_out)


@router.post("/override-rules", status_code=201, response_model=cs.OverrideRuleOut, tags=["credit control"])
def create_override_rule(body: cs.OverrideRuleCreate, ctx: WriteContext = Depends(write_context)):
    """Masters only. For the named events, an account matching every non-empty condition may go over its
    credit limit; the audit row of each such event names the rule."""
    return ctx.run(lambda db, actor: credit_control.rule_out(credit_control.create_rule(db, body, actor=actor)),
                   status_code=201)


@router.get("/override-rules/{rule_id}", response_model=cs.OverrideRuleOut, tags=["credit control"])
def get_override_rule(rule_id: RuleId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return credit_control.rule_out(credit_control.get_rule(session, actor.workspace_id, rule_id))


@router.patch("/override-rules/{rule_id}", response_model=cs.OverrideRuleOut, tags=["credit control"])
def update_override_rule(rule_id: RuleId, body: cs.OverrideRuleUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: credit_control.rule_out(credit_control.update_rule(db, rule_id, body,
                                                                                        actor=actor)))


# --- Change credit terms and the spend decision ---

@router.post("/accounts/{account_id}/credit-terms", response_model=AccountOut, tags=["credit control"])
def change_credit_terms(account_id: AccountId, body: cs.CreditTermsChange, ctx: WriteContext = Depends(write_context)):
    """Masters only. The credit period (inside the proximity range), the credit rating and the account's own
    credit limit (null: the rating's); only the fields sent change. Audited with before and after."""
    return ctx.run(lambda db, actor: accounts.account_out(
        credit_control.change_credit_terms(db, account_id, body, actor=actor)))


@router.post("/decisions/spend", response_model=cs.SpendDecisionOut, tags=["credit control"])
def decide_spend(body: cs.SpendQuestion, actor: Actor = Depends(get_actor),
                 session: Session = Depends(read_session)):
    """May the account spend `amount` on `event`? `allowed` and every reason (account status, credit limit,
    the override rule that applies). Changes nothing: it is the same function the real actions call
    before they post, so the answer here is the answer there."""
    account = accounts.get_account(session, actor.workspace_id, body.account_id)
    return credit_control.decision_out(credit_control.decide_spend(session, account, body.event, body.amount,
                                                                   product=body.product))


# --- lifecycle ---

@router.post("/accounts/{account_id}/suspend", response_model=AccountOut, tags=["credit control"])
def suspend_account(account_id: AccountId, body: cs.SuspendRequest, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Transactions still post; new subscriptions and services are refused."""
    return ctx.run(lambda db, actor: accounts.account_out(
        lifecycle.suspend(db, account_id, body.reason, actor=actor, note=body.note)))


@router.post("/accounts/{account_id}/reactivate", response_model=AccountOut, tags=["credit control"])
def reactivate_account(account_id: AccountId, body: cs.LifecycleNote | None = None,
                       ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Only a suspended account (409 account_not_suspended)."""
    note = body.note if body else None
    return ctx.run(lambda db, actor: accounts.account_out(lifecycle.reactivate(db, account_id, actor=actor,
                                                                                note=note)))


@router.post("/accounts/{account_id}/terminate", response_model=AccountOut, tags=["credit control"])
def terminate_account(account_id: AccountId, body: cs.LifecycleNote | None = None,
                      ctx: WriteContext = Depends(write_context)):
    """Masters only. Refused while a transaction is not posted (409 account_has_pending_transactions) or the
    balance is not zero (409 account_balance_not_zero). Final."""
    note = body.note if body else None
    return ctx.run(lambda db, actor: accounts.account_out(lifecycle.terminate(db, account_id, actor=actor,
                                                                               note=note)))


@router.post("/accounts/{account_id}/write-off", response_model=cs.WriteOffOut, tags=["credit control"])
def write_off_account(account_id: AccountId, body: cs.WriteOffRequest, ctx: WriteContext = Depends(write_context)):
    """Masters only. Closes the remaining debit balance with a write-off posting (409 nothing_to_write_off)."""
    return ctx.run(lambda db, actor: lifecycle.write_off(db, account_id, body.reason, actor=actor))
