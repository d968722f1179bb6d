"""Subscriptions and bills in the back office (seed 002): Finance > Subscriptions (list, new), a subscription's
page with its actions (Remove Services with action type and effective day, add a service, change a quantity,
activate, suspend, resume, terminate) and Bill Subscriber (as of a day: Preview Bill writes nothing, Submit
posts the bill), Finance > Bills, and the customer's Subscriptions and Bills. Every form calls
billing.subscriptions, the functions the API calls, once."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from starlette.datastructures import FormData

from creditdesk import currencies
from creditdesk.billing import invoices, subscriptions
from creditdesk.billing import subscription_schemas as s
from creditdesk.billing.models import BillingAccount
from creditdesk.billing.subscription_models import FREQUENCIES
from creditdesk.catalog.models import Product
from creditdesk.errors import CreditdeskError, NotPermitted
from creditdesk.parties.service import require_manager
from creditdesk.web import forms, once
from creditdesk.web.catalog import FieldErrors, validated
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
STATUSES = ("draft", "active", "suspended", "terminated")


def may_manage(user: WebUser) -> bool:
    try:
        require_manager(user.actor, "manage subscriptions")
    except NotPermitted:
        return False
    return True


def _services(session, workspace_id: str) -> list[Product]:
    """The catalogue's active subscription services, for the forms."""
    return list(session.scalars(select(Product).where(
        Product.workspace_id == workspace_id, Product.kind == "subscription_service",
        Product.active.is_(True)).order_by(Product.name).limit(500)))


def _day(form: FormData, name: str, label: str) -> date | None:
    raw = forms.text(form, name, limit=20)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FieldErrors({name: f"{label}: choose a day (YYYY-MM-DD)."}) from None


def _act(request: Request, user: WebUser, form: FormData, back: str, action) -> HTMLResponse:
    require_manager(user.actor, "change subscriptions")  # before the key: a member gets 403
    try:
        return once.run(request, user, form, action)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        message = "; ".join(exc.errors.values()) if hasattr(exc, "errors") else exc.message
        return render(request, "action_error.html", nav="finance", back=back, message=message,
                      status_code=exc.http_status if exc.http_status >= 400 else 422)


@router.get("/subscriptions", response_class=HTMLResponse)
def subscriptions_page(request: Request, user: WebUser = Depends(current_user)):
    status = request.query_params.get("status") or None
    status = status if status in STATUSES else None
    account_id = request.query_params.get("account_id") or None
    with reading(db_of(request)) as session:
        page = subscriptions.list_subscriptions(session, actor=user.actor, account_id=account_id,
                                                status=[status] if status else None, limit=100,
                                                cursor=request.query_params.get("cursor") or None)
        rows = [subscriptions.subscription_out(session, sub) for sub in page.items]
        ids = {r.account_id for r in rows}
        account_of = {a.id: a for a in session.scalars(select(BillingAccount).where(BillingAccount.id.in_(ids)))}
        choices = list(session.scalars(select(BillingAccount).where(
            BillingAccount.workspace_id == user.workspace_id, BillingAccount.status != "terminated")
            .order_by(BillingAccount.number).limit(500)))
        products = _services(session, user.workspace_id)
    return render(request, "subscriptions.html", nav="finance", rows=rows, account_of=account_of, status=status,
                  next_cursor=page.next_cursor, accounts=choices, products=products, frequencies=list(FREQUENCIES),
                  may_manage=may_manage(user), preset_account=account_id)


@router.post("/subscriptions/new", response_class=HTMLResponse)
def new_subscription(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        data = validated(s.SubscriptionCreate, {
            "account_id": forms.text(form, "account_id", limit=40), "name": forms.text(form, "name", limit=200),
            "frequency": forms.text(form, "frequency", limit=10) or "monthly",
            "billing_day": forms.text(form, "billing_day", limit=3) or 1,
            "services": [{"product": forms.text(form, "product", limit=100),
                          "quantity": forms.text(form, "quantity", limit=9) or 1}],
            "activate_on": _day(form, "activate_on", "Activate on")})
        sub = subscriptions.create_subscription(session, data, actor=user.actor)
        return once.Done(f"/subscriptions/{sub.id}", flash=f"Subscription {sub.number} created ({sub.status}).")
    return _act(request, user, form, "/subscriptions", action)


def _page(request: Request, user: WebUser, subscription_id: str, *, preview=None, as_of: str = "",
          status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        sub = subscriptions.get_subscription(session, user.workspace_id, subscription_id)
        out = subscriptions.subscription_out(session, sub)
        account = session.get(BillingAccount, sub.account_id)
        bills = [invoices.invoice_out(session, inv) for inv in subscriptions.list_bills(
            session, actor=user.actor, subscription_id=sub.id, limit=50).items]
        products = _services(session, user.workspace_id)
    return render(request, "subscription.html", nav="finance", sub=out, account=account, bills=bills,
                  products=products, preview=preview, as_of=as_of or date.today().isoformat(),
                  may_manage=may_manage(user), money=lambda amount: currencies.format_money(amount, account.currency),
                  status_code=status_code)


@router.get("/subscriptions/{subscription_id}", response_class=HTMLResponse)
def subscription_page(subscription_id: str, request: Request, user: WebUser = Depends(current_user)):
    return _page(request, user, subscription_id)


@router.post("/subscriptions/{subscription_id}/bill-preview", response_class=HTMLResponse)
def bill_preview(subscription_id: str, request: Request, user: WebUser = Depends(current_user),
                 form: FormData = Depends(csrf_form)):
    """Preview Bill: the bill as it would be; nothing is written (a read transaction)."""
    as_of = forms.text(form, "as_of", limit=20)
    try:
        day = date.fromisoformat(as_of)
    except ValueError:
        return render(request, "action_error.html", nav="finance", back=f"/subscriptions/{subscription_id}",
                      message="Bill as of: choose a day (YYYY-MM-DD).", status_code=422)
    with reading(db_of(request)) as session:
        preview = subscriptions.preview_bill(session, subscription_id, s.BillAsOf(as_of=day), actor=user.actor)
    return _page(request, user, subscription_id, preview=preview, as_of=as_of)


def _subscription_action(path: str, fn):
    @router.post(f"/subscriptions/{{subscription_id}}/{path}", response_class=HTMLResponse)
    def handler(subscription_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
        back = f"/subscriptions/{subscription_id}"

        def action(session) -> once.Done:
            message, where = fn(session, user, subscription_id, form)
            return once.Done(where or back, flash=message)
        return _act(request, user, form, back, action)
    handler.__name__ = f"subscription_{path.replace('-', '_')}"
    return handler


def _bill(session, user, subscription_id, form):
    day = _day(form, "as_of", "Bill as of") or date.today()
    invoice = subscriptions.bill(session, subscription_id, s.BillAsOf(as_of=day), actor=user.actor)
    if invoice is None:
        return f"Nothing due as of {day}.", None
    return f"Bill {invoice.number} posted: {currencies.format_money(invoice.total, invoice.currency)}.", \
        f"/invoices/{invoice.id}"


def _remove(session, user, subscription_id, form):
    if forms.text(form, "action", limit=20) not in ("", "remove"):
        raise FieldErrors({"action": "Choose the action type Remove service."})
    data = validated(s.ServiceRemove, {"service_id": forms.text(form, "service_id", limit=40), "action": "remove",
                                       "effective_on": _day(form, "effective_on", "Effective on")})
    subscriptions.remove_service(session, subscription_id, data, actor=user.actor)
    return "Service removed.", None


def _add(session, user, subscription_id, form):
    data = validated(s.ServiceIn, {"product": forms.text(form, "product", limit=100),
                                   "quantity": forms.text(form, "quantity", limit=9) or 1,
                                   "start_on": _day(form, "start_on", "Start on"),
                                   "pay_with_credits": form.get("pay_with_credits") == "1"})
    subscriptions.add_service(session, subscription_id, data, actor=user.actor)
    return "Service added.", None


def _quantity(session, user, subscription_id, form):
    data = validated(s.QuantityChange, {"service_id": forms.text(form, "service_id", limit=40),
                                        "quantity": forms.text(form, "quantity", limit=9)})
    subscriptions.change_quantity(session, subscription_id, data, actor=user.actor)
    return "Quantity changed: billed from the next period not yet billed.", None


def _dated(fn, done: str):
    def run(session, user, subscription_id, form):
        if fn is subscriptions.activate:
            fn(session, subscription_id, s.Activate(on=_day(form, "on", "On")), actor=user.actor)
        else:
            fn(session, subscription_id, s.DatedAction(on=_day(form, "on", "On"),
                                                       note=forms.text(form, "note", limit=500)), actor=user.actor)
        return done, None
    return run


_subscription_action("bill", _bill)
_subscription_action("remove-services", _remove)
_subscription_action("services", _add)
_subscription_action("change-quantity", _quantity)
_subscription_action("activate", _dated(subscriptions.activate, "Subscription activated."))
_subscription_action("suspend", _dated(subscriptions.suspend, "Subscription suspended."))
_subscription_action("resume", _dated(subscriptions.resume, "Subscription resumed."))
_subscription_action("terminate", _dated(subscriptions.terminate, "Subscription terminated."))


@router.get("/bills", response_class=HTMLResponse)
def bills_page(request: Request, user: WebUser = Depends(current_user)):
    q = request.query_params
    status = q.get("status") if q.get("status") in ("posted", "settled") else None
    overdue = True if q.get("overdue") == "1" else None
    period_on = None
    if q.get("period_on"):
        try:
            period_on = date.fromisoformat(q.get("period_on"))
        except ValueError:
            period_on = None
    with reading(db_of(request)) as session:
        page = subscriptions.list_bills(session, actor=user.actor, account_id=q.get("account_id") or None,
                                        customer_id=q.get("customer_id") or None, status=status, overdue=overdue,
                                        period_on=period_on, limit=100, cursor=q.get("cursor") or None)
        rows = page.items
        account_of = {a.id: a for a in session.scalars(select(BillingAccount).where(
            BillingAccount.id.in_({r.account_id for r in rows})))} if rows else {}
    return render(request, "bills.html", nav="finance", rows=rows, account_of=account_of, status=status,
                  overdue=overdue, period_on=q.get("period_on") or "", next_cursor=page.next_cursor,
                  money=currencies.format_money, is_overdue=invoices.is_overdue)


def customer_context(session, user: WebUser, customer_id: str) -> dict:
    """The customer page's Subscriptions and Bills (the seed's Financials tab)."""
    subs = subscriptions.list_subscriptions(session, actor=user.actor, customer_id=customer_id, limit=50).items
    bills = subscriptions.list_bills(session, actor=user.actor, customer_id=customer_id, limit=20).items
    return {"customer_subscriptions": subs, "customer_bills": bills}
