"""Group accounts (members with a funding scope) and pricing agreements (an account's own price plan).
README "Group accounts and pricing agreements"; rules in billing.groups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy.orm import Session

from creditdesk.api.deps import AccountId, WriteContext, get_actor, read_session, write_context
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.billing import accounts, groups
from creditdesk.billing import group_schemas as gs

router = APIRouter()

MemberId = Annotated[str, Path(description="The member account's id (the account in the group, not a user).")]


@router.get("/accounts/{account_id}/members", response_model=ListOf[gs.MemberOut], tags=["groups"])
def list_members(account_id: AccountId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """The account's members (empty when it is no group's parent), oldest first."""
    rows = groups.list_members(session, account_id, actor=actor)
    return {"object": "list", "data": [groups.member_out(session, row) for row in rows], "next_cursor": None}


@router.post("/accounts/{account_id}/members", status_code=201, response_model=gs.MemberOut, tags=["groups"])
def add_member(account_id: AccountId, body: gs.MemberAdd, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Adds `member_id` to the group of this (parent) account with a funding scope. Each
    condition of seed 004 refused with its own code (409): parent_not_active, parent_is_member,
    parent_is_system_account, member_is_parent_account, member_not_active, member_already_in_group,
    member_is_parent, member_is_system_account, member_currency_mismatch, member_same_owner,
    member_has_own_pricing; the scope (422): funding_scope_empty, funding_scope_codes_with_full,
    unknown_product, unknown_product_type, unknown_product_family."""
    return ctx.run(lambda db, actor: groups.member_out(db, groups.add_member(db, account_id, body, actor=actor)),
                   status_code=201)


@router.delete("/accounts/{account_id}/members/{member_id}", response_model=gs.GroupOut, tags=["groups"])
def remove_member(account_id: AccountId, member_id: MemberId, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. The member's later invoices are its own again; posted ones stay as they are."""
    def run(db, actor):
        groups.remove_member(db, account_id, member_id, actor=actor)
        return groups.group_out(db, accounts.get_account(db, actor.workspace_id, account_id))
    return ctx.run(run)


@router.get("/accounts/{account_id}/group", response_model=gs.GroupOut, tags=["groups"])
def get_group(account_id: AccountId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """The account's parent and funding scope (when a member) and its members (when a parent)."""
    return groups.group_out(session, accounts.get_account(session, actor.workspace_id, account_id))


@router.get("/accounts/{account_id}/pricing-agreement", response_model=gs.PricingAgreementOut, tags=["groups"])
def get_pricing_agreement(account_id: AccountId, actor: Actor = Depends(get_actor),
                          session: Session = Depends(read_session)):
    return groups.agreement_out(session, accounts.get_account(session, actor.workspace_id, account_id))


@router.post("/accounts/{account_id}/pricing-agreement", response_model=gs.PricingAgreementOut, tags=["groups"])
def set_pricing_agreement(account_id: AccountId, body: gs.PricingAgreementIn,
                          ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Sets the account's own price plan (same currency, else 422 currency_mismatch;
    null clears it). Invoices raised afterwards without a plan of their own take prices from it (products it
    has no price for: the currency's default plan); a group's members take their parent's."""
    return ctx.run(lambda db, actor: groups.agreement_out(
        db, groups.set_pricing_agreement(db, account_id, body, actor=actor)))


@router.get("/groups", response_model=ListOf[gs.GroupOut], tags=["groups"])
def list_groups(actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Every group of the workspace: each parent account with its members and their funding scopes."""
    found = groups.list_groups(session, actor=actor)
    return list_of(found, None, lambda row: groups.group_out(session, row[0]))
