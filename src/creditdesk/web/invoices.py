"""Finance › Invoices in the back office: the list (filters, overdue), a new draft, the invoice page (lines,
post, void, PDF, credit note, record a payment, mark as paid). Every form calls the invoice services the
API calls (who may is decided there; the forms are only hidden from members, whom the services refuse).
Every form that writes carries a one-time key (web/once.py): a double click never posts, pays or credits
twice. A refused form comes back with the message next to the field it is about."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from creditdesk import currencies
from creditdesk.billing import accounts, credit_notes, invoices, payments, pdf
from creditdesk.billing import invoice_schemas as ins
from creditdesk.billing.invoice_models import PAYMENT_METHODS
from creditdesk.billing.models import BillingAccount
from creditdesk.catalog import service as catalog
from creditdesk.errors import Conflict, CreditdeskError, InvalidInput, NotPermitted
from creditdesk.parties.models import Customer
from creditdesk.web import core, forms, once
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
fixed = APIRouter(route_class=WebRoute, include_in_schema=False)

STATUSES = ("draft", "posted", "settled", "void")


def may_write(user: WebUser) -> bool:
    try:
        invoices.require_billing_writer(user.actor, "raise invoices")
    except NotPermitted:
        return False
    return True


def _errors(exc: CreditdeskError, default_field: str = "") -> dict:
    """The refusal as {form field: message}: shown next to the field it names (else above the form)."""
    field = str(exc.details.get("field") or default_field)
    field = field.split("[")[0].split(".")[0]
    return {field: exc.message}


def _day(form: FormData, name: str, label: str) -> date | None:
    value = forms.text(form, name, limit=20)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{label} is a date (YYYY-MM-DD).", field=name) from None


def _amount(form: FormData, name: str, currency: str, label: str) -> int:
    try:
        return core.parse_amount(forms.text(form, name, limit=40), currencies.minor_units(currency), label=label)
    except InvalidInput as exc:
        exc.details["field"] = name
        raise


# --- list ---

@router.get("/invoices", response_class=HTMLResponse)
def invoice_list(request: Request, user: WebUser = Depends(current_user)):
    params = request.query_params
    status = (params.get("status") or "")[:10]
    status = status if status in STATUSES else ""
    account_id = (params.get("account_id") or "")[:40]
    overdue = params.get("overdue") == "1"
    with reading(db_of(request)) as session:
        page = invoices.list_invoices(session, actor=user.actor, limit=50, cursor=params.get("cursor") or None,
                                      status=status or None, account_id=account_id or None,
                                      overdue=True if overdue else None)
        account_rows = session.scalars(select(BillingAccount).where(
            BillingAccount.workspace_id == user.workspace_id).order_by(BillingAccount.number).limit(500)).all()
    names = {a.id: f"{a.number} · {a.name}" for a in account_rows}
    return render(request, "invoices.html", nav="finance", invoices=page.items, next_cursor=page.next_cursor,
                  names=names, accounts=account_rows, filters={"status": status, "account_id": account_id,
                                                               "overdue": overdue},
                  statuses=STATUSES, is_overdue=invoices.is_overdue, may_write=may_write(user))


# --- new draft ---

def _new_form(request: Request, user: WebUser, values: dict, errors: dict | None = None,
              status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        account_rows = session.scalars(select(BillingAccount).where(
            BillingAccount.workspace_id == user.workspace_id, BillingAccount.status != "terminated")
            .order_by(BillingAccount.number).limit(500)).all()
    return render(request, "invoice_new.html", nav="finance", values=values, accounts=account_rows,
                  errors=errors or {}, status_code=status_code)


@fixed.get("/invoices/new", response_class=HTMLResponse)
def new_invoice_form(request: Request, user: WebUser = Depends(current_user)):
    invoices.require_billing_writer(user.actor, "raise invoices")
    return _new_form(request, user, {"account_id": (request.query_params.get("account_id") or "")[:40]})


@fixed.post("/invoices/new", response_class=HTMLResponse)
def new_invoice(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {k: forms.text(form, k, limit=2000) for k in ("account_id", "issue_date", "notes")}
    try:
        data = forms.validated(ins.InvoiceCreate, account_id=values["account_id"],
                               issue_date=_day(form, "issue_date", "Issue date"), notes=values["notes"])

        def create_once(session) -> once.Done:
            invoice = invoices.create_invoice(session, data, actor=user.actor)
            return once.Done(f"/invoices/{invoice.id}", flash="Draft invoice created: add its lines.")
        return once.run(request, user, form, create_once)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404 and exc.code == "not_found" and not exc.details.get("field"):
            exc.details["field"] = "account_id"
        return _new_form(request, user, values, _errors(exc), status_code=422 if exc.http_status < 500 else 500)


# --- the invoice page ---

def _page(request: Request, user: WebUser, invoice_id: str, *, errors: dict | None = None,
          values: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        invoice = invoices.get_invoice(session, user.workspace_id, invoice_id)
        out = invoices.invoice_out(session, invoice)
        account = session.get(BillingAccount, invoice.account_id)
        customer = session.get(Customer, invoice.customer_id)
        notes = credit_notes.notes_of(session, invoice.id)
        paid = payments.list_payments(session, actor=user.actor, invoice_id=invoice.id, limit=100).items
        paid = [payments.payment_out(session, p) for p in paid]
        products = catalog.list_products(session, actor=user.actor, limit=500, active=True).items \
            if invoice.status == "draft" else []
        from creditdesk.web.packages import line_choices  # Pay with credits (credit packages, issue 13)

        choices = line_choices(session, invoice)
        from creditdesk.billing import payment_preferences, wallets  # Pay from the wallet; card charges

        wallet = wallets.wallet_of(session, account.id)
        wallet_balance = wallets.balance(session, wallet) if wallet is not None else None
        charges = payment_preferences.list_charges(session, actor=user.actor, invoice_id=invoice.id, limit=20).items
        account_credit = payments.account_credit(session, account.id)
        purchases = invoices.package_purchases(session, invoice)
    return render(request, "invoice.html", nav="finance", invoice=out, account=account, customer=customer,
                  account_credit=account_credit, purchases=purchases, creditable=credit_notes.creditable(invoice),
                  wallet_balance=wallet_balance, charges=charges, choices=choices, notes=notes, payments=paid, products=products, methods=PAYMENT_METHODS,
                  may_write=may_write(user), errors=errors or {}, values=values or {},
                  money=lambda amount: currencies.format_money(amount, out.currency), status_code=status_code)


@router.get("/invoices/{invoice_id}", response_class=HTMLResponse)
def invoice_page(invoice_id: str, request: Request, user: WebUser = Depends(current_user)):
    return _page(request, user, invoice_id)


@router.get("/invoices/{invoice_id}/pdf")
def invoice_pdf(invoice_id: str, request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        invoice = invoices.get_invoice(session, user.workspace_id, invoice_id)
        body = pdf.render_invoice(session, invoice)
    name = invoice.number or f"draft-{invoice.id}"
    return Response(body, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}.pdf"'})


def _act(request: Request, user: WebUser, form: FormData, invoice_id: str, action, *, field: str = "",
         values: dict | None = None, rename: dict | None = None) -> Response:
    """Run one write of the invoice page once (its form's key); a refusal re-renders the page with it, the
    message next to the field (`rename` maps a service's field name to the form's)."""
    invoices.require_billing_writer(user.actor, "change invoices")  # before the key: a member gets 403
    try:
        return once.run(request, user, form, action)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404 and exc.code == "not_found" and not field:
            raise
        rename = rename or {}
        errors = {rename.get(k, k): v for k, v in _errors(exc, field).items()}
        return _page(request, user, invoice_id, errors=errors, values=values,
                     status_code=exc.http_status if exc.http_status in (404, 409, 422) else 422)


def _back(invoice_id: str, flash: str) -> once.Done:
    return once.Done(f"/invoices/{invoice_id}", flash=flash)


def _paid(session, user: WebUser, invoice_id: str, flash: str, *, was: str) -> once.Done:
    """Back to the invoice after money reached it: when that settled it (it was `was` before), say so, and
    name and link the packs its credit packages made."""
    invoice = invoices.get_invoice(session, user.workspace_id, invoice_id)
    if invoice.status != "settled" or was == "settled":
        return _back(invoice_id, flash)
    made = [p["pack"] for p in invoices.package_purchases(session, invoice) if p["pack"] is not None]
    if not made:
        return _back(invoice_id, f"{flash} Invoice {invoice.number} is paid.")
    names = "pack" if len(made) == 1 else "packs"
    return once.Done(f"/invoices/{invoice_id}", flash=f"{flash} Invoice {invoice.number} is paid: {names} granted:",
                     links=[(pack.name, f"/packs/{pack.id}") for pack in made])


@router.post("/invoices/{invoice_id}/lines", response_class=HTMLResponse)
def add_line(invoice_id: str, request: Request, user: WebUser = Depends(current_user),
             form: FormData = Depends(csrf_form)):
    values = {k: forms.text(form, k, limit=500) for k in ("product", "quantity", "unit_price", "description")}

    def action(session) -> once.Done:
        invoice = invoices.get_invoice(session, user.workspace_id, invoice_id)
        unit_price = _amount(form, "unit_price", invoice.currency, "Unit price") if values["unit_price"] else None
        data = forms.validated(ins.LineCreate, product=values["product"], quantity=values["quantity"] or "0",
                               unit_price=unit_price, description=values["description"] or None)
        invoices.add_line(session, invoice_id, data, actor=user.actor)
        return _back(invoice_id, "Line added.")
    return _act(request, user, form, invoice_id, action, field="product", values=values)


@router.post("/invoices/{invoice_id}/lines/{line_id}/delete", response_class=HTMLResponse)
def delete_line(invoice_id: str, line_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    return _act(request, user, form, invoice_id, lambda session: (
        invoices.delete_line(session, invoice_id, line_id, actor=user.actor), _back(invoice_id, "Line removed."))[1])


@router.post("/invoices/{invoice_id}/edit", response_class=HTMLResponse)
def edit_invoice(invoice_id: str, request: Request, user: WebUser = Depends(current_user),
                 form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        data = forms.validated(ins.InvoiceUpdate, issue_date=_day(form, "issue_date", "Issue date"),
                               notes=forms.text(form, "notes", limit=2000))
        invoices.update_invoice(session, invoice_id, data, actor=user.actor)
        return _back(invoice_id, "Draft saved.")
    return _act(request, user, form, invoice_id, action, field="issue_date")


@router.post("/invoices/{invoice_id}/post", response_class=HTMLResponse)
def post_invoice(invoice_id: str, request: Request, user: WebUser = Depends(current_user),
                 form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        notes_before = invoices.get_invoice(session, user.workspace_id, invoice_id).notes or ""
        invoice = invoices.post_invoice(session, invoice_id, actor=user.actor)
        group_note = (invoice.notes or "")[len(notes_before):].strip()  # what posting said (group funding)
        if invoice.status == "draft":  # over the credit limit: an opted-in card is charged first
            from creditdesk.billing import payment_preferences

            charge = payment_preferences.pending_charge(session, invoice.id)
            return _back(invoice_id, f"Over the credit limit: charging {currencies.format_money(charge.amount, charge.currency)} "
                                     "to the account's card first; the invoice posts when the charge succeeds.")
        # Paid at once (from the wallet, by the payment preferences): say so, with what is left due.
        paid = "" if not invoice.amount_paid else (
            f" Paid {currencies.format_money(invoice.amount_paid, invoice.currency)} at once"
            + (" (settled)." if invoice.status == "settled"
               else f"; {currencies.format_money(invoice.amount_due, invoice.currency)} still due."))
        return _back(invoice_id, f"Posted as {invoice.number}." + paid + (f" {group_note}" if group_note else ""))
    return _act(request, user, form, invoice_id, action)


@router.post("/invoices/{invoice_id}/void", response_class=HTMLResponse)
def void_invoice(invoice_id: str, request: Request, user: WebUser = Depends(current_user),
                 form: FormData = Depends(csrf_form)):
    return _act(request, user, form, invoice_id, lambda session: (
        invoices.void_invoice(session, invoice_id, actor=user.actor), _back(invoice_id, "Draft voided."))[1])


@router.post("/invoices/{invoice_id}/pay", response_class=HTMLResponse)
def pay_invoice(invoice_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    values = {k: forms.text(form, k, limit=200) for k in ("amount", "method", "reference", "received_on")}

    def action(session) -> once.Done:
        invoice = invoices.get_invoice(session, user.workspace_id, invoice_id)
        amount = _amount(form, "amount", invoice.currency, "Amount")
        data = forms.validated(ins.PaymentCreate, account_id=invoice.account_id, amount=amount,
                               method=values["method"] or "bank_transfer", reference=values["reference"],
                               received_on=_day(form, "received_on", "Received on"),
                               allocations=[{"invoice_id": invoice.id, "amount": min(amount, invoice.amount_due)}])
        was = invoice.status
        pay = payments.record_payment(session, data, actor=user.actor)
        extra = f"; {currencies.format_money(pay.unallocated, pay.currency)} stays on the account as a credit" \
            if pay.unallocated else ""
        return _paid(session, user, invoice_id,
                     f"Payment of {currencies.format_money(pay.amount, pay.currency)} recorded{extra}.", was=was)
    return _act(request, user, form, invoice_id, action, field="amount", values=values)


@router.post("/invoices/{invoice_id}/mark-paid", response_class=HTMLResponse)
def mark_paid(invoice_id: str, request: Request, user: WebUser = Depends(current_user),
              form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        method = forms.text(form, "method", limit=20) or "other"
        if method not in PAYMENT_METHODS:
            raise InvalidInput("Choose a payment method.", field="method")
        was = invoices.get_invoice(session, user.workspace_id, invoice_id).status
        pay = payments.mark_paid(session, invoice_id, actor=user.actor, method=method)
        if pay is None:
            number = invoices.get_invoice(session, user.workspace_id, invoice_id).number
            return _paid(session, user, invoice_id, f"Posted as {number}: paid with credits, nothing left to pay.",
                         was=was)
        return _paid(session, user, invoice_id,
                     f"Marked as paid: {currencies.format_money(pay.amount, pay.currency)} recorded.", was=was)
    return _act(request, user, form, invoice_id, action)


@router.post("/invoices/{invoice_id}/credit-note", response_class=HTMLResponse)
def credit_note(invoice_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    values = {k: forms.text(form, k, limit=500) for k in ("credit_amount", "reason")}

    def action(session) -> once.Done:
        invoice = invoices.get_invoice(session, user.workspace_id, invoice_id)
        full = form.get("full") == "1"
        body = {"full": True} if full else {"amount": _amount(form, "credit_amount", invoice.currency, "Amount")}
        data = forms.validated(ins.CreditNoteCreate, reason=values["reason"], **body)
        note = credit_notes.create_credit_note(session, invoice_id, data, actor=user.actor)
        return _back(invoice_id, f"Credit note {note.number} issued.")
    return _act(request, user, form, invoice_id, action, field="credit_amount", values=values,
                rename={"amount": "credit_amount"})


@router.post("/invoices/{invoice_id}/apply-credit", response_class=HTMLResponse)
def apply_credit_to_invoice(invoice_id: str, request: Request, user: WebUser = Depends(current_user),
                            form: FormData = Depends(csrf_form)):
    """The invoice page's "apply it": the account's credit, as much as this invoice has due."""
    def action(session) -> once.Done:
        invoice = invoices.get_invoice(session, user.workspace_id, invoice_id)
        was = invoice.status
        if invoice.status != invoices.OPEN or invoice.amount_due <= 0:
            raise Conflict(f"Invoice {invoice.number or 'draft'} is {invoice.status}: nothing to pay.",
                                    code="invoice_not_open")
        amount = min(payments.account_credit(session, invoice.account_id), invoice.amount_due)
        data = ins.CreditApply(allocations=[ins.AllocationIn(invoice_id=invoice.id, amount=amount)] if amount else None)
        done = payments.apply_credit(session, invoice.account_id, data, actor=user.actor)
        applied = sum(a.amount for a in done.applied)
        return _paid(session, user, invoice_id, f"{currencies.format_money(applied, done.currency)} of the account's "
                     "credit applied to this invoice.", was=was)
    return _act(request, user, form, invoice_id, action, field="apply_credit", rename={"allocations": "apply_credit"})


def account_sections(session, user: WebUser, account: BillingAccount) -> dict:
    """The account page's Invoices, Payments and Credit sections."""
    rows = invoices.list_invoices(session, actor=user.actor, account_id=account.id, limit=20).items
    paid = payments.list_payments(session, actor=user.actor, account_id=account.id, limit=20).items
    credit = payments.credit_out(session, account)
    return {"account_invoices": rows, "account_payments": paid, "is_overdue": invoices.is_overdue,
            "may_invoice": may_write(user), "credit_available": credit.available,
            "credit_invoices": payments.open_invoices(session, account.id) if credit.available else [],
            "account_refunds": payments.list_refunds(session, actor=user.actor, account_id=account.id,
                                                     limit=20).items,
            "refund_methods": [m for m in PAYMENT_METHODS]}


# --- the account page's Credit section: apply it, refund it ---

CREDIT_LABELS = {"amount": "Amount", "method": "Paid back by", "reason": "Reason", "reference": "Reference"}


def _on_account(request: Request, user: WebUser, form: FormData, account_id: str, form_id: str, action,
                *, by_code: dict | None = None) -> Response:
    """A form of the account's Credit section, once; refused, the account page again with its values and every
    problem next to its field."""
    from creditdesk.web.finance import form_errors, render_account

    invoices.require_billing_writer(user.actor, "use account credit")  # before the key: a member gets 403
    values = {name: forms.text(form, name, limit=500) for name in form.keys()
              if name not in ("csrf_token", once.FIELD)}
    try:
        return once.run(request, user, form, action)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        errors = form_errors(exc, values=values, labels=CREDIT_LABELS, by_code=by_code)
        return render_account(request, user, account_id, form=form_id, values=values, errors=errors,
                              status_code=exc.http_status if exc.http_status >= 400 else 422)


@router.post("/accounts/{account_id}/credit/apply", response_class=HTMLResponse)
def apply_account_credit(account_id: str, request: Request, user: WebUser = Depends(current_user),
                         form: FormData = Depends(csrf_form)):
    """Apply the credit: the amounts typed next to the open invoices, or (none typed) oldest due first."""
    def action(session) -> once.Done:
        from creditdesk.web.finance import Problems

        account = accounts.get_account(session, user.workspace_id, account_id)
        problems = Problems(CREDIT_LABELS)
        wanted = []
        for name in form.keys():
            if not name.startswith("amount_") or not forms.text(form, name, limit=40):
                continue
            amount = problems.read(name, lambda name=name: _amount(form, name, account.currency, "Amount"))
            if amount == 0:
                problems.add(name, "The amount must be more than zero.")
            elif amount is not None:
                wanted.append(ins.AllocationIn(invoice_id=name[len("amount_"):][:40], amount=amount))
        problems.check()
        try:
            done = payments.apply_credit(session, account_id, ins.CreditApply(allocations=wanted or None),
                                         actor=user.actor)
        except CreditdeskError as exc:  # "allocations[n]" is the amount typed next to the n-th invoice
            field = str(exc.details.get("field") or "")
            if field.startswith("allocations["):
                exc.details["field"] = f"amount_{wanted[int(field[len('allocations['):-1])].invoice_id}"
            elif field == "allocations":
                exc.details["field"] = ""
            raise
        parts = {}
        for a in done.applied:
            parts[a.invoice_number] = parts.get(a.invoice_number, 0) + a.amount
        said = ", ".join(f"{currencies.format_money(v, done.currency)} to {k}" for k, v in parts.items())
        return once.Done(f"/accounts/{account_id}#account-credit", flash=f"Credit applied: {said}.")
    return _on_account(request, user, form, account_id, "credit-apply", action,
                       by_code={"credit_too_low": "", "no_open_invoices": ""})


@router.post("/accounts/{account_id}/credit/refund", response_class=HTMLResponse)
def refund_account_credit(account_id: str, request: Request, user: WebUser = Depends(current_user),
                          form: FormData = Depends(csrf_form)):
    def action(session) -> once.Done:
        from creditdesk.web.finance import Problems

        account = accounts.get_account(session, user.workspace_id, account_id)
        problems = Problems(CREDIT_LABELS)
        amount = problems.read("amount", lambda: _amount(form, "amount", account.currency, "Amount"))
        if amount == 0:
            problems.add("amount", "The amount must be more than zero.")
        data = problems.schema(ins.CreditRefundCreate, {
            "amount": amount or 1, "method": forms.text(form, "method", limit=20) or "bank_transfer",
            "reason": forms.text(form, "reason", limit=500).strip(),
            "reference": forms.text(form, "reference", limit=200)})
        problems.check()
        refund = payments.refund_credit(session, account_id, data, actor=user.actor)
        return once.Done(f"/accounts/{account_id}#account-credit",
                         flash=f"Refunded {currencies.format_money(refund.amount, refund.currency)} of the account's "
                               f"credit ({refund.method.replace('_', ' ')}).")
    return _on_account(request, user, form, account_id, "credit-refund", action)

