"""Subscriptions and bills in the back office (seed 002): Finance > Subscriptions (list, new), a subscription's
page with its actions (Remove Services with action type and effective day, add a service, change a quantity,
activate, suspend, resume, terminate) and Bill Subscriber (as of a day: Preview Bill writes nothing, Submit
posts the bill), Finance > Bills, and the customer's Subscriptions and Bills. Every form calls
billing.subscriptions, the functions the API calls, once."""

from __future__ import annotations

from datetime import date, timedelta

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
from creditdesk.web.catalog import FieldErrors
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render
from creditdesk.web.finance import Problems, form_errors

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


LABELS = {"account_id": "Account", "name": "Name", "frequency": "Billed", "billing_day": "Billing day",
          "product": "Service", "quantity": "Quantity", "activate_on": "Activate on", "service_id": "Service",
          "action": "Action type", "effective_on": "Effective on", "start_on": "Start on", "on": "On", "note": "Note",
          "as_of": "Bill as of", "pay_with_credits": "Paid with credits"}
# Where the schema's nested fields are on the forms.
WHERE = {"services.product": "product", "services.quantity": "quantity", "services": "product"}


def _day(form, name: str, label: str) -> date | None:
    raw = forms.text(form, name, limit=20)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FieldErrors({name: f"{label}: choose a day (YYYY-MM-DD)."}) from None


def _values(form: FormData) -> dict:
    return {name: forms.text(form, name, limit=500) for name in form.keys()
            if name not in ("csrf_token", once.FIELD)}


def _act(request: Request, user: WebUser, form: FormData, action, again) -> HTMLResponse:
    """One form's write, once; refused, `again(values, errors, status_code)` shows the form again with every
    problem next to its field and what was typed."""
    require_manager(user.actor, "change subscriptions")  # before the key: a member gets 403
    values = _values(form)
    try:
        return once.run(request, user, form, action)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        errors = form_errors(exc, values=values, labels=LABELS)
        return again(values, errors, exc.http_status if exc.http_status >= 400 else 422)


@router.get("/subscriptions", response_class=HTMLResponse)
def subscriptions_page(request: Request, user: WebUser = Depends(current_user)):
    return _list_page(request, user)


def _list_page(request: Request, user: WebUser, *, values: dict | None = None, errors: dict | None = None,
               status_code: int = 200) -> HTMLResponse:
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
        # Only accounts that take new subscriptions (create_subscription refuses the others).
        choices = list(session.scalars(select(BillingAccount).where(
            BillingAccount.workspace_id == user.workspace_id, BillingAccount.status == "active")
            .order_by(BillingAccount.number).limit(500)))
        products = _services(session, user.workspace_id)
    values = values or {"account_id": account_id or "", "frequency": "monthly", "billing_day": "1", "quantity": "1"}
    return render(request, "subscriptions.html", nav="finance", rows=rows, account_of=account_of, status=status,
                  next_cursor=page.next_cursor, accounts=choices, products=products, frequencies=list(FREQUENCIES),
                  may_manage=may_manage(user), preset_account=account_id, values=values, errors=errors or {},
                  status_code=status_code)


def subscription_request(form) -> s.SubscriptionCreate:
    """The New subscription form, every problem next to its field at once."""
    problems = Problems(LABELS)
    if not forms.text(form, "account_id", limit=40):
        problems.add("account_id", "Choose an account.")
    if not forms.text(form, "product", limit=100):
        problems.add("product", "Choose a subscription service.")
    activate_on = problems.read("activate_on", lambda: _day(form, "activate_on", "Activate on"))
    data = problems.schema(s.SubscriptionCreate, {
        "account_id": forms.text(form, "account_id", limit=40), "name": forms.text(form, "name", limit=500),
        "frequency": forms.text(form, "frequency", limit=10) or "monthly",
        "billing_day": forms.text(form, "billing_day", limit=12) or 1,
        "services": [{"product": forms.text(form, "product", limit=100),
                      "quantity": forms.text(form, "quantity", limit=12) or 1}],
        "activate_on": activate_on}, where=WHERE)
    problems.check()
    return data


@router.post("/subscriptions/new", response_class=HTMLResponse)
def new_subscription(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        data = subscription_request(form)
        sub = subscriptions.create_subscription(session, data, actor=user.actor)
        return once.Done(f"/subscriptions/{sub.id}", flash=f"Subscription {sub.number} created ({sub.status}).")

    def again(values, errors, status_code):
        return _list_page(request, user, values=values, errors=errors, status_code=status_code)
    return _act(request, user, form, action, again)


def _page(request: Request, user: WebUser, subscription_id: str, *, preview=None, as_of: str = "",
          form: str | None = None, values: dict | None = None, errors: dict | None = None,
          status_code: int = 200) -> HTMLResponse:
    """The subscription page; `form` names the form whose typed `values` and `errors` are shown."""
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
                  last_day=lambda end_on: end_on - timedelta(days=1),  # end_on is the first day without it
                  form_values={form: values or {}} if form else {}, form_errors={form: errors or {}} if form else {},
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
        day = _day(form, "as_of", "Bill as of")
        if day is None:
            raise FieldErrors({"as_of": "Bill as of: choose a day."})
        with reading(db_of(request)) as session:
            preview = subscriptions.preview_bill(session, subscription_id, s.BillAsOf(as_of=day), actor=user.actor)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404:
            raise
        return _page(request, user, subscription_id, as_of=as_of, form="bill", values={"as_of": as_of},
                     errors=form_errors(exc, labels=LABELS), status_code=422)
    return _page(request, user, subscription_id, preview=preview, as_of=as_of)


def _subscription_action(path: str, fn):
    @router.post(f"/subscriptions/{{subscription_id}}/{path}", response_class=HTMLResponse)
    def handler(subscription_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
        back = f"/subscriptions/{subscription_id}"

        def action(session) -> once.Done:
            message, where = fn(session, user, subscription_id, form)
            return once.Done(where or back, flash=message)

        def again(values, errors, status_code):
            name = FORM_OF.get(path, path)
            return _page(request, user, subscription_id, form=name, values=values, errors=errors,
                         as_of=values.get("as_of", "") if name == "bill" else "", status_code=status_code)
        return _act(request, user, form, action, again)
    handler.__name__ = f"subscription_{path.replace('-', '_')}"
    return handler


FORM_OF = {"remove-services": "remove", "services": "add", "change-quantity": "quantity"}


def _bill(session, user, subscription_id, form):
    problems = Problems(LABELS)
    day = problems.read("as_of", lambda: _day(form, "as_of", "Bill as of"))
    data = problems.schema(s.BillAsOf, {"as_of": day or date.today()})
    problems.check()
    invoice = subscriptions.bill(session, subscription_id, data, actor=user.actor)
    if invoice is None:
        return f"Nothing due as of {data.as_of}.", None
    return f"Bill {invoice.number} posted: {currencies.format_money(invoice.total, invoice.currency)}.", \
        f"/invoices/{invoice.id}"


def _remove(session, user, subscription_id, form):
    problems = Problems(LABELS)
    if forms.text(form, "action", limit=20) not in ("", "remove"):
        problems.add("action", "Choose the action type Remove service.")
    if not forms.text(form, "service_id", limit=40):
        problems.add("service_id", "Choose the service to remove.")
    effective_on = problems.read("effective_on", lambda: _day(form, "effective_on", "Effective on"))
    data = problems.schema(s.ServiceRemove, {"service_id": forms.text(form, "service_id", limit=40),
                                             "action": "remove", "effective_on": effective_on})
    problems.check()
    _, notes = subscriptions.remove_service_credited(session, subscription_id, data, actor=user.actor)
    return "Service removed." + _credited(notes), None


def _credited(notes) -> str:
    """What the flash says of the credit notes an action issued for days already billed."""
    if not notes:
        return ""
    return " Days already billed were credited: " + ", ".join(
        f"{n.number} ({currencies.format_money(n.amount, n.currency)})" for n in notes) + "."


def _add(session, user, subscription_id, form):
    problems = Problems(LABELS)
    if not forms.text(form, "product", limit=100):
        problems.add("product", "Choose a subscription service.")
    start_on = problems.read("start_on", lambda: _day(form, "start_on", "Start on"))
    data = problems.schema(s.ServiceIn, {"product": forms.text(form, "product", limit=100),
                                         "quantity": forms.text(form, "quantity", limit=12) or 1,
                                         "start_on": start_on,
                                         "pay_with_credits": form.get("pay_with_credits") == "1"})
    problems.check()
    subscriptions.add_service(session, subscription_id, data, actor=user.actor)
    return "Service added.", None


def _quantity(session, user, subscription_id, form):
    problems = Problems(LABELS)
    if not forms.text(form, "service_id", limit=40):
        problems.add("service_id", "Choose the service.")
    if not forms.text(form, "quantity", limit=12):
        problems.add("quantity", "Type the new quantity, like 2.")
    data = problems.schema(s.QuantityChange, {"service_id": forms.text(form, "service_id", limit=40),
                                              "quantity": forms.text(form, "quantity", limit=12)})
    problems.check()
    subscriptions.change_quantity(session, subscription_id, data, actor=user.actor)
    return "Quantity changed: billed from the next period not yet billed.", None


def _dated(fn, done: str):
    def run(session, user, subscription_id, form):
        problems = Problems(LABELS)
        on = problems.read("on", lambda: _day(form, "on", "On"))
        if fn is subscriptions.activate:
            data = problems.schema(s.Activate, {"on": on})
        else:
            data = problems.schema(s.DatedAction, {"on": on, "note": forms.text(form, "note", limit=1000)})
        problems.check()
        fn(session, subscription_id, data, actor=user.actor)
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
