"""Group accounts and pricing agreements in the back office: on the account page a Members section (add a
member with its funding scope, remove one), the parent shown on a member, and the pricing agreement shown and
editable. Every form calls the billing.groups services the API calls (who may is decided there; the buttons
are hidden with the same check), once (web/once.py), errors next to their field."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from creditdesk.billing import accounts, groups
from creditdesk.billing import group_schemas as gs
from creditdesk.billing.models import BillingAccount
from creditdesk.catalog.models import PricePlan
from creditdesk.errors import CreditdeskError, NotPermitted
from creditdesk.parties import service as parties
from creditdesk.web import forms, once
from creditdesk.web.catalog import errors_of, validated
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

SCOPE_LABELS = {"full": "Full: every charge", "partial": "Partial: the products, types and families named"}


def may_manage(user: WebUser) -> bool:
    try:
        parties.require_manager(user.actor, "manage group accounts")
    except NotPermitted:
        return False
    return True


def _codes(text: str) -> list[str]:
    """"a, b c" -> ["a", "b", "c"]: codes typed separated by commas or spaces."""
    return [part for part in text.replace(",", " ").split() if part]


def _plans(session, account: BillingAccount) -> list[PricePlan]:
    return list(session.scalars(select(PricePlan).where(PricePlan.workspace_id == account.workspace_id,
                                                        PricePlan.currency == account.currency,
                                                        PricePlan.active.is_(True)).order_by(PricePlan.code)))


def account_context(session, user: WebUser, account: BillingAccount) -> dict:
    """What the account page shows of its group and pricing agreement (finance.account_page)."""
    membership = groups.membership_of(session, account)
    parent = session.get(BillingAccount, membership.parent_id) if membership else None
    members = [(row, session.get(BillingAccount, row.member_id)) for row in groups.members_of(session, account)]
    agreement = groups.agreement_out(session, account)
    plan_ids = [i for i in (agreement.price_plan_id, agreement.effective_price_plan_id) if i]
    plan_of = {p.id: p for p in session.scalars(select(PricePlan).where(PricePlan.id.in_(plan_ids)))}
    return {"group_parent": parent, "group_membership": membership, "group_members": members,
            "agreement": agreement, "agreement_plans": plan_of, "may_manage_group": may_manage(user),
            "scope_labels": SCOPE_LABELS}


# --- add a member -------------------------------------------------------------------------------------

def _member_page(request: Request, user: WebUser, account_id: str, values: dict, *, errors: dict | None = None,
                 status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        account = accounts.get_account(session, user.workspace_id, account_id)
        # Candidates: active accounts of the parent's currency and of other owners (the service checks the rest).
        # Accounts already in a group (as a member or as a parent) are not offered: the service would refuse them.
        from creditdesk.billing.group_models import GroupMember as Membership
        from creditdesk.catalog.models import Product, ProductFamily, ProductType

        grouped = select(Membership.member_id).where(Membership.workspace_id == user.workspace_id).union(
            select(Membership.parent_id).where(Membership.workspace_id == user.workspace_id))
        candidates = list(session.scalars(select(BillingAccount).where(
            BillingAccount.workspace_id == user.workspace_id, BillingAccount.currency == account.currency,
            BillingAccount.customer_id != account.customer_id, BillingAccount.status == "active",
            BillingAccount.id.not_in(grouped))
            .order_by(BillingAccount.number).limit(500)))
        # A partial scope names products, types and families: chosen from the catalogue, not typed as codes.
        choices = {name: list(session.execute(select(model.code, model.name).where(
            model.workspace_id == user.workspace_id).order_by(model.name).limit(500)))
            for name, model in (("products", Product), ("product_types", ProductType),
                                ("product_families", ProductFamily))}
    return render(request, "group_member_form.html", nav="finance", account=account, candidates=candidates,
                  values=values, errors=errors or {}, scope_labels=SCOPE_LABELS, choices=choices,
                  status_code=status_code)


@router.get("/accounts/{account_id}/members/new", response_class=HTMLResponse)
def new_member_form(account_id: str, request: Request, user: WebUser = Depends(current_user)):
    parties.require_manager(user.actor, "manage group accounts")
    return _member_page(request, user, account_id, {"scope": "full"})


@router.post("/accounts/{account_id}/members/new", response_class=HTMLResponse)
def new_member(account_id: str, request: Request, user: WebUser = Depends(current_user),
               form: FormData = Depends(csrf_form)) -> Response:
    parties.require_manager(user.actor, "manage group accounts")
    values = {k: forms.text(form, k, limit=2000) for k in ("member_id", "scope")}
    for k in ("products", "product_types", "product_families"):  # chosen in a list (several), or typed codes
        values[k] = " ".join(str(v)[:2000] for v in form.getlist(k)[:500])

    def add(session) -> once.Done:
        data = validated(gs.MemberAdd, {"member_id": values["member_id"], "funding": {
            "scope": values["scope"], "products": _codes(values["products"]),
            "product_types": _codes(values["product_types"]),
            "product_families": _codes(values["product_families"])}})
        row = groups.add_member(session, account_id, data, actor=user.actor)
        member = session.get(BillingAccount, row.member_id)
        return once.Done(f"/accounts/{account_id}", flash=f"Added {member.number} {member.name} as a member.")

    try:
        return once.run(request, user, form, add)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404 and exc.details.get("field") != "member_id":
            raise
        errors = {("funding." + k if k in ("scope", "products", "product_types", "product_families") else k): v
                  for k, v in errors_of(exc).items()}
        return _member_page(request, user, account_id, values, errors=errors,
                            status_code=exc.http_status if exc.http_status in (409, 422) else 422)


@router.post("/accounts/{account_id}/members/{member_id}/remove", response_class=HTMLResponse)
def remove_member(account_id: str, member_id: str, request: Request, user: WebUser = Depends(current_user),
                  form: FormData = Depends(csrf_form)) -> Response:
    def remove(session) -> once.Done:
        member = accounts.get_account(session, user.workspace_id, member_id)
        groups.remove_member(session, account_id, member_id, actor=user.actor)
        return once.Done(f"/accounts/{account_id}", flash=f"Removed {member.number} from the group.")

    return once.run(request, user, form, remove)


# --- the pricing agreement ----------------------------------------------------------------------------

def _agreement_page(request: Request, user: WebUser, account_id: str, values: dict, *,
                    errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        account = accounts.get_account(session, user.workspace_id, account_id)
        plans = _plans(session, account)
        agreement = groups.agreement_out(session, account)
    return render(request, "pricing_agreement_form.html", nav="finance", account=account, plans=plans,
                  agreement=agreement, values=values, errors=errors or {}, status_code=status_code)


@router.get("/accounts/{account_id}/pricing-agreement/edit", response_class=HTMLResponse)
def agreement_form(account_id: str, request: Request, user: WebUser = Depends(current_user)):
    parties.require_manager(user.actor, "set pricing agreements")
    with reading(db_of(request)) as session:
        own = groups.own_agreement(session, accounts.get_account(session, user.workspace_id, account_id))
    return _agreement_page(request, user, account_id, {"price_plan_id": own.price_plan_id if own else ""})


@router.post("/accounts/{account_id}/pricing-agreement/edit", response_class=HTMLResponse)
def agreement_submit(account_id: str, request: Request, user: WebUser = Depends(current_user),
                     form: FormData = Depends(csrf_form)) -> Response:
    parties.require_manager(user.actor, "set pricing agreements")
    values = {"price_plan_id": forms.text(form, "price_plan_id", limit=40)}

    def change(session) -> once.Done:
        account = groups.set_pricing_agreement(session, account_id, gs.PricingAgreementIn(
            price_plan_id=values["price_plan_id"] or None), actor=user.actor)
        what = "Set the pricing agreement" if values["price_plan_id"] else "Cleared the pricing agreement"
        return once.Done(f"/accounts/{account_id}", flash=f"{what} of {account.number}.")

    try:
        return once.run(request, user, form, change)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404 and exc.details.get("field") != "price_plan_id":
            raise
        return _agreement_page(request, user, account_id, values, errors=errors_of(exc),
                               status_code=exc.http_status if exc.http_status in (409, 422) else 422)


# --- the list of groups -------------------------------------------------------------------------------

@router.get("/finance/groups", response_class=HTMLResponse)
def groups_page(request: Request, user: WebUser = Depends(current_user)):
    """Finance > Groups: each parent account with its members, their funding scopes, currency and status."""
    with reading(db_of(request)) as session:
        found = groups.list_groups(session, actor=user.actor)
    return render(request, "groups.html", nav="finance", groups=found, scope_labels=SCOPE_LABELS)
