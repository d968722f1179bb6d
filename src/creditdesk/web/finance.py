"""Finance in the back office: accounts (list with balances, account page with balance, statement and
credit period, open and edit forms) and customers' addresses. Every page calls the billing services the
API calls; who may is decided there (the forms are only hidden from those the services would refuse)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from starlette.datastructures import FormData

from creditdesk import clock, currencies
from creditdesk.billing import accounts, addresses, credit_control, settings
from creditdesk.billing import schemas as bs
from creditdesk.billing.models import BillingAccount, CustomerAddress
from creditdesk.csvexport import response as csv_response
from creditdesk.errors import CreditdeskError, InvalidInput, NotFound, NotPermitted
from creditdesk.parties import service as parties
from creditdesk.parties.models import Customer
from creditdesk.repository import get_in_workspace
from creditdesk.web import core, forms, once
from creditdesk.web import credit_control as credit_control_web
from creditdesk.web.catalog import FieldErrors, errors_of
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
fixed = APIRouter(route_class=WebRoute, include_in_schema=False)

STATUSES = ("active", "suspended", "terminated")


def money(amount_minor: int, code: str) -> str:
    return currencies.format_money(amount_minor, code)


core._env.globals["format_money"] = money


def _may(check, actor) -> bool:
    try:
        check(actor)
    except NotPermitted:
        return False
    return True


def may_open_accounts(user: WebUser) -> bool:
    return _may(lambda a: parties.require_manager(a, "open accounts"), user.actor)


def may_set_credit_period(user: WebUser) -> bool:
    return _may(lambda a: settings.require_finance(a, "change credit periods"), user.actor)


# --- every problem next to its field (the billing forms) ---

def _plain(exc: CreditdeskError) -> str | None:
    """A service's refusal in the words of a form, where its own message names API fields or endpoints."""
    details, field = exc.details, str(exc.details.get("field") or "")
    if exc.code == "field_not_nullable":
        return f"{forms.label_of([field]) if field else 'This field'} is required."
    if exc.code == "credit_period_out_of_range":
        return f"The credit period must be between {details.get('min_days')} and {details.get('max_days')} days."
    if exc.code == "unknown_country":
        return "Type the country's two-letter code, like AU, NZ or GB."
    if exc.code == "unknown_currency":
        return "Type a currency code, like AUD, EUR or USD."
    if exc.code == "gateway_not_configured":
        return "Card payments are not set up on this server yet: whoever runs creditdesk configures the gateway."
    if exc.code == "billing_settings_required":
        return "No account can be opened yet: the billing settings come first (see the message above)."
    return None


def form_errors(exc: CreditdeskError, *, fields: dict[str, str] | None = None, values: dict | None = None,
                labels: dict[str, str] | None = None, by_code: dict[str, str] | None = None) -> dict[str, str]:
    """Where each message of a refused form goes: a form's own problems as they are; a service's refusal next
    to the field it names (called as in `fields` when the form names it otherwise; by its code in `by_code`
    when it names none), in plain words. A "not found" about a value the form chose (in `values`) goes next to
    that field; any other is raised (404)."""
    if isinstance(exc, FieldErrors):
        return exc.errors
    if isinstance(exc, NotFound):
        for name, value in (values or {}).items():
            if value and value == exc.details.get("object_id"):
                label = (labels or {}).get(name) or forms.label_of([name])
                return {name: f"{label}: it no longer exists; choose one from the list."}
        raise exc
    [(field, message)] = errors_of(exc).items()
    field = field or (by_code or {}).get(exc.code, "")  # a refusal about one field that does not name it
    return {(fields or {}).get(field, field): _plain(exc) or forms.plain(message)}


class Problems:
    """A form read field by field: each field's problem is kept (the first one), so that every problem is shown
    next to its field at once and nothing is written while there is one."""

    def __init__(self, labels: dict[str, str] | None = None):
        self.errors: dict[str, str] = {}
        self.labels = labels or {}

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def read(self, name: str, parse) -> Any:
        """`parse()`, or None with its problem next to `name`."""
        try:
            return parse()
        except FieldErrors as exc:
            for key, message in exc.errors.items():
                self.add(key or name, message)
        except InvalidInput as exc:
            self.add(name, _plain(exc) or exc.message)
        return None

    def schema(self, model: type[BaseModel], data: dict, *, where: dict[str, str] | None = None):
        """The request schema, or None with each of its errors next to its field (the field's label, never
        pydantic's words); `where` places a schema field on the form's field of another name."""
        data_out, errors = forms.schema_errors(model, data, fields=where, labels=self.labels)
        for name, message in errors.items():
            self.add(name, message)
        return data_out

    def check(self) -> None:
        if self.errors:
            raise FieldErrors(dict(self.errors))


def _address_books(session, workspace_id: str, customers: list[Customer]) -> list[tuple[str, list]]:
    """(customer name, its addresses) for the customers that have some (at most 2,000 addresses)."""
    from sqlalchemy import select

    names = {c.id: c.name for c in customers}
    rows = session.scalars(select(CustomerAddress).where(CustomerAddress.workspace_id == workspace_id)
                           .order_by(CustomerAddress.customer_id, CustomerAddress.is_primary.desc(),
                                     CustomerAddress.id).limit(2000))
    grouped: dict[str, list] = {}
    for address in rows:
        if address.customer_id in names:
            grouped.setdefault(address.customer_id, []).append(address)
    return sorted(((names[cid], book) for cid, book in grouped.items()), key=lambda pair: pair[0].lower())


def _customers(session, user: WebUser) -> list[Customer]:
    rows, cursor = [], None
    while True:
        page = parties.list_customers(session, actor=user.actor, limit=500, cursor=cursor)
        rows += page.items
        cursor = page.next_cursor
        if not cursor or len(rows) >= 5000:
            return sorted(rows, key=lambda c: c.name.lower())


# --- accounts list ---

@router.get("/accounts", response_class=HTMLResponse)
def accounts_list(request: Request, user: WebUser = Depends(current_user)):
    params = request.query_params
    filters = {"customer_id": (params.get("customer_id") or "")[:40], "status": (params.get("status") or "")[:20],
               "currency": (params.get("currency") or "").strip().upper()[:3],
               "credit_limit_status": (params.get("credit_limit_status") or "")[:20]}
    if filters["status"] not in STATUSES:
        filters["status"] = ""
    if filters["credit_limit_status"] not in ("exceeded", "not_exceeded"):
        filters["credit_limit_status"] = ""
    with reading(db_of(request)) as session:
        page = accounts.list_accounts(session, actor=user.actor, limit=50, cursor=params.get("cursor") or None,
                                      customer_id=filters["customer_id"] or None, status=filters["status"] or None,
                                      currency=filters["currency"] or None,
                                      credit_limit_status=filters["credit_limit_status"] or None)
        balances = accounts.balances_of(session, page.items)
        credit = credit_control.credit_states(session, page.items)
        customers = _customers(session, user)
        billing = settings.get_settings(session, user.workspace_id)
    names = {c.id: c.name for c in customers}
    return render(request, "accounts.html", nav="finance", accounts=page.items, balances=balances, credit=credit,
                  names=names,
                  customers=customers, filters=filters, next_cursor=page.next_cursor, statuses=STATUSES,
                  currencies=settings.allowed_currencies(billing) if billing else [],
                  may_open=may_open_accounts(user) and billing is not None)


# --- open an account ---

ACCOUNT_LABELS = {"customer_id": "Customer", "name": "Name", "currency": "Currency", "classification": "Classification",
                  "billing_address_id": "Billing address", "credit_period_days": "Credit period"}


def _account_form(request: Request, user: WebUser, values: dict, *, account: BillingAccount | None = None,
                  errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        billing = settings.get_settings(session, user.workspace_id)
        customers = _customers(session, user) if account is None else []
        customer_id = account.customer_id if account else values.get("customer_id")
        book = addresses.list_addresses(session, customer_id, actor=user.actor) if customer_id else []
        # No customer chosen yet (the form works without JavaScript): every customer's addresses, grouped by
        # customer; the service refuses one that is not the chosen customer's.
        books = _address_books(session, user.workspace_id, customers) if not customer_id else []
        customer = session.get(Customer, account.customer_id) if account else None
        ratings = credit_control.all_ratings(session, user.workspace_id) \
            if account is None and may_set_credit_period(user) else []
    return render(request, "account_form.html", nav="finance", values=values, account=account, customer=customer,
                  customers=customers, addresses=book, address_books=books, ratings=ratings,
                  one_line=addresses.one_line, billing=billing,
                  currencies=settings.allowed_currencies(billing) if billing else [],
                  may_set_credit_period=may_set_credit_period(user), errors=errors or {}, status_code=status_code)


def _credit_period(problems: Problems, values: dict, billing, current: int | None) -> int | None:
    """The credit period typed, checked against the default credit terms by the service's own check."""
    days = problems.read("credit_period_days", lambda: forms.integer(values, "credit_period_days",
                                                                     label="Credit period (days)"))
    if days is not None and billing is not None and days != current:
        problems.read("credit_period_days", lambda: accounts.check_credit_period(billing, days))
    return days


def account_create_request(values: dict, billing) -> bs.AccountCreate:
    problems = Problems(ACCOUNT_LABELS)
    if not values["customer_id"]:
        problems.add("customer_id", "Choose the customer.")
    if not values["name"]:
        problems.add("name", "Give the account a name.")
    days = _credit_period(problems, values, billing, billing.credit_period_days if billing else None)
    if billing is not None and values["currency"]:
        problems.read("currency", lambda: accounts.check_account_currency(billing, values["currency"]))
    data = problems.schema(bs.AccountCreate, {
        "customer_id": values["customer_id"], "name": values["name"], "currency": values["currency"] or None,
        "classification": values["classification"] or None,
        "billing_address_id": values["billing_address_id"] or None, "credit_period_days": days,
        "credit_rating_id": values.get("credit_rating_id") or None})
    problems.check()
    return data


@fixed.get("/accounts/new", response_class=HTMLResponse)
def new_account_form(request: Request, user: WebUser = Depends(current_user)):
    parties.require_manager(user.actor, "open accounts")
    customer_id = (request.query_params.get("customer_id") or "")[:40]
    return _account_form(request, user, {"customer_id": customer_id})


@fixed.post("/accounts/new", response_class=HTMLResponse)
def new_account(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = {k: forms.text(form, k, limit=300) for k in ("customer_id", "name", "currency", "classification",
                                                           "billing_address_id", "credit_period_days",
                                                           "credit_rating_id")}
    try:
        parties.require_manager(user.actor, "open accounts")
        with reading(db_of(request)) as session:
            billing = settings.get_settings(session, user.workspace_id)
        data = account_create_request(values, billing)

        def open_once(session) -> once.Done:
            account = accounts.create_account(session, data, actor=user.actor)
            return once.Done(f"/accounts/{account.id}", flash=f"Opened account {account.number} ({account.name}).")
        return once.run(request, user, form, open_once)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404 and exc.code != "not_found":
            raise
        if exc.code == "not_found" and "credit rating" in exc.message:
            errors = {"credit_rating_id": "Choose a credit rating from the list."}
        elif exc.code == "not_found" and "address" in exc.message:
            errors = {"billing_address_id": "Choose one of this customer's addresses (or None)."}
        elif exc.code == "not_found":
            errors = {"customer_id": "Choose the customer from the list."}
        else:
            errors = form_errors(exc)
        return _account_form(request, user, values, errors=errors, status_code=exc.http_status
                             if exc.http_status in (404, 409, 422) else 422)


# --- the account page ---

PEOPLE_STATEMENT_COLUMNS = ["date", "time", "entry", "document", "debit", "credit", "balance", "currency"]
KIND_LABELS = {"invoice": "Invoice", "invoice_tax": "Invoice (tax)", "credit_note": "Credit note",
               "credit_note_tax": "Credit note (tax)", "payment": "Payment", "write_off": "Write-off",
               "opening_balance": "Opening balance"}


def statement_references(session, workspace_id: str, lines) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(reference kind, id) -> (what people call it, a link): invoices and credit notes by number, payments by
    method and reference; never a bare id."""
    from sqlalchemy import select

    from creditdesk.billing.invoice_models import CreditNote, Invoice, Payment

    wanted: dict[str, set[str]] = {}
    for line in lines:
        if line.reference_kind and line.reference_id:
            wanted.setdefault(line.reference_kind, set()).add(line.reference_id)
    out: dict[tuple[str, str], tuple[str, str | None]] = {}
    if wanted.get("invoice"):
        for iid, number in session.execute(select(Invoice.id, Invoice.number).where(
                Invoice.workspace_id == workspace_id, Invoice.id.in_(sorted(wanted["invoice"])))):
            out[("invoice", iid)] = (f"Invoice {number or '(draft)'}", f"/invoices/{iid}")
    if wanted.get("credit_note"):
        for cid, number, iid in session.execute(select(CreditNote.id, CreditNote.number, CreditNote.invoice_id).where(
                CreditNote.workspace_id == workspace_id, CreditNote.id.in_(sorted(wanted["credit_note"])))):
            out[("credit_note", cid)] = (f"Credit note {number}", f"/invoices/{iid}")
    if wanted.get("payment"):
        for pid, method, reference in session.execute(select(Payment.id, Payment.method, Payment.reference).where(
                Payment.workspace_id == workspace_id, Payment.id.in_(sorted(wanted["payment"])))):
            label = f"Payment, {method.replace('_', ' ')}" + (f": {reference}" if reference else "")
            out[("payment", pid)] = (label, None)
    for kind, ids in wanted.items():
        for rid in ids:
            out.setdefault((kind, rid), (KIND_LABELS.get(kind, kind.replace("_", " ").capitalize()), None))
    return out


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
def account_page(account_id: str, request: Request, user: WebUser = Depends(current_user)):
    return render_account(request, user, account_id)


def render_account(request: Request, user: WebUser, account_id: str, *, form: str | None = None,
                   values: dict | None = None, errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    """The account page; `form` names the form of one of its sections (wallet, assets) shown again with what
    was typed (`values`) and every problem next to its field (`errors`)."""
    cursor = request.query_params.get("cursor") or None
    with reading(db_of(request)) as session:
        account = accounts.get_account(session, user.workspace_id, account_id)
        customer = session.get(Customer, account.customer_id)
        address = session.get(CustomerAddress, account.billing_address_id) if account.billing_address_id else None
        balance = accounts.account_balance(session, account)
        outstanding = accounts.account_outstanding(session, account)
        lines, next_cursor = accounts.statement_page(session, account, limit=50, cursor=cursor)
        references = statement_references(session, user.workspace_id, lines)
        billing = settings.get_settings(session, user.workspace_id)
        from creditdesk.web.invoices import account_sections  # the account's invoices and payments

        sections = account_sections(session, user, account)
        credit = credit_control_web.account_context(session, user, account)
        from creditdesk.web import groups as groups_web  # the group's members and the pricing agreement

        credit.update(groups_web.account_context(session, user, account))
        from creditdesk.web import assets as assets_web  # the account's assets and their history

        credit.update(assets_web.account_context(session, user, account))
        from creditdesk.web import wallets as wallets_web  # the wallet and the payment preferences

        credit.update(wallets_web.account_context(session, user, account))
    return render(request, "account.html", nav="finance", account=account, customer=customer,
                  address=addresses.one_line(address), balance=balance, outstanding=outstanding, lines=lines,
                  next_cursor=next_cursor, billing=billing, may_edit=may_open_accounts(user), references=references,
                  statement_kinds=KIND_LABELS, form_values={form: values or {}} if form else {},
                  form_errors={form: errors or {}} if form else {}, status_code=status_code,
                  **sections, **credit)


@router.get("/accounts/{account_id}/statement.csv")
def account_statement_csv(account_id: str, request: Request, user: WebUser = Depends(current_user)):
    db = db_of(request)
    with reading(db) as session:
        account = accounts.get_account(session, user.workspace_id, account_id)

    zone = user.zone

    def rows():
        # For people (a customer, a spreadsheet): the day in the workspace's zone, the entry in words and the
        # document by its number. Scripts have /v1/accounts/{id}/statement.csv with ids and UTC moments.
        from creditdesk import csvexport

        scale = currencies.minor_units(account.currency)
        with db.read() as session:
            chunk: list = []

            def flush():
                references = statement_references(session, user.workspace_id, chunk)
                for line in chunk:
                    document = references.get((line.reference_kind, line.reference_id), ("", None))[0] \
                        if line.reference_kind and line.reference_id else ""
                    local = clock.aware(line.posted_at).astimezone(zone)
                    yield [local.strftime("%Y-%m-%d"), local.strftime("%H:%M"),
                           KIND_LABELS.get(line.kind, line.kind.replace("_", " ").capitalize()), document,
                           csvexport.amount(line.debit, scale) if line.debit else "",
                           csvexport.amount(line.credit, scale) if line.credit else "",
                           csvexport.amount(line.balance, scale), account.currency]
                chunk.clear()
            for line in accounts.statement_rows(session, account):
                chunk.append(line)
                if len(chunk) == 500:
                    yield from flush()
            yield from flush()

    return csv_response(PEOPLE_STATEMENT_COLUMNS, rows(), filename=f"statement-{account.number}.csv", bom=True)


@router.get("/accounts/{account_id}/edit", response_class=HTMLResponse)
def edit_account_form(account_id: str, request: Request, user: WebUser = Depends(current_user)):
    parties.require_manager(user.actor, "change accounts")
    with reading(db_of(request)) as session:
        account = accounts.get_account(session, user.workspace_id, account_id)
    values = {"name": account.name, "classification": account.classification or "",
              "billing_address_id": account.billing_address_id or "",
              "credit_period_days": str(account.credit_period_days)}
    return _account_form(request, user, values, account=account)


@router.post("/accounts/{account_id}/edit", response_class=HTMLResponse)
def edit_account(account_id: str, request: Request, user: WebUser = Depends(current_user),
                 form: FormData = Depends(csrf_form)):
    values = {k: forms.text(form, k, limit=300) for k in ("name", "classification", "billing_address_id",
                                                           "credit_period_days")}
    with reading(db_of(request)) as session:
        account = accounts.get_account(session, user.workspace_id, account_id)
        billing = settings.get_settings(session, user.workspace_id)
    try:
        parties.require_manager(user.actor, "change accounts")
        problems = Problems(ACCOUNT_LABELS)
        if not values["name"]:
            problems.add("name", "Give the account a name.")
        fields = {"name": values["name"], "classification": values["classification"] or None,
                  "billing_address_id": values["billing_address_id"] or None}
        days = _credit_period(problems, values, billing, account.credit_period_days)
        if days is not None and days != account.credit_period_days:
            fields["credit_period_days"] = days
        data = problems.schema(bs.AccountUpdate, fields)
        problems.check()
        db_of(request).write(lambda session: accounts.update_account(session, account_id, data, actor=user.actor))
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        return _account_form(request, user, values, account=account, errors=form_errors(exc), status_code=422)
    return core.redirect(request, f"/accounts/{account_id}", flash=f"Saved account {account.number}.")


# --- addresses ---

ADDRESS_FIELDS = ("type", "line1", "line2", "city", "region", "postcode", "country")
ADDRESS_LABELS = {"type": "Type", "line1": "Address line 1", "line2": "Address line 2", "city": "City",
                  "region": "State / region", "postcode": "Postcode", "country": "Country", "is_primary": "Primary"}


def _address_form(request: Request, user: WebUser, customer_id: str, values: dict, *,
                  address_id: str | None = None, errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        customer = get_in_workspace(session, Customer, user.workspace_id, customer_id)
    return render(request, "address_form.html", nav="clients", customer=customer, values=values,
                  address_id=address_id, types=bs.AddressType.__args__, errors=errors or {}, status_code=status_code)


def _address_values(form: FormData) -> dict:
    values = {k: forms.text(form, k, limit=300) for k in ADDRESS_FIELDS}
    values["is_primary"] = form.get("is_primary") == "yes"
    return values


def address_request(values: dict, model: type[BaseModel]) -> BaseModel:
    """The address form as the API's body, every problem next to its field (the country checked by the
    service's own check)."""
    problems = Problems(ADDRESS_LABELS)
    for name in ("line1", "city", "country"):
        if not values[name]:
            problems.add(name, f"{ADDRESS_LABELS[name]} is required.")
    if values["country"]:
        problems.read("country", lambda: addresses.check_country(values["country"]))
    body = {k: (v or None) if k in ("line2", "region", "postcode") else v for k, v in values.items()}
    data = problems.schema(model, body)
    problems.check()
    return data


@router.get("/customers/{customer_id}/addresses/new", response_class=HTMLResponse)
def new_address_form(customer_id: str, request: Request, user: WebUser = Depends(current_user)):
    parties.require_manager(user.actor, "change customers' addresses")
    return _address_form(request, user, customer_id, {"type": "billing", "country": "AU", "is_primary": False})


@router.post("/customers/{customer_id}/addresses/new", response_class=HTMLResponse)
def new_address(customer_id: str, request: Request, user: WebUser = Depends(current_user),
                form: FormData = Depends(csrf_form)):
    parties.require_manager(user.actor, "change customers' addresses")
    values = _address_values(form)
    try:
        data = address_request(values, bs.AddressCreate)

        def add_once(session) -> once.Done:
            address = addresses.create_address(session, customer_id, data, actor=user.actor)
            return once.Done(f"/customers/{customer_id}#addresses", flash=f"Added {addresses.one_line(address)}.")
        return once.run(request, user, form, add_once)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404:
            raise
        return _address_form(request, user, customer_id, values, errors=form_errors(exc), status_code=422)


@router.get("/customers/{customer_id}/addresses/{address_id}/edit", response_class=HTMLResponse)
def edit_address_form(customer_id: str, address_id: str, request: Request, user: WebUser = Depends(current_user)):
    parties.require_manager(user.actor, "change customers' addresses")
    with reading(db_of(request)) as session:
        address = addresses.get_address(session, customer_id, address_id, actor=user.actor)
    values = {k: getattr(address, k) or "" for k in ADDRESS_FIELDS}
    values["is_primary"] = address.is_primary
    return _address_form(request, user, customer_id, values, address_id=address_id)


@router.post("/customers/{customer_id}/addresses/{address_id}/edit", response_class=HTMLResponse)
def edit_address(customer_id: str, address_id: str, request: Request, user: WebUser = Depends(current_user),
                 form: FormData = Depends(csrf_form)):
    values = _address_values(form)
    try:
        parties.require_manager(user.actor, "change customers' addresses")
        data = address_request(values, bs.AddressUpdate)
        db_of(request).write(lambda session: addresses.update_address(session, customer_id, address_id, data,
                                                                      actor=user.actor))
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.http_status == 404:
            raise
        return _address_form(request, user, customer_id, values, address_id=address_id, errors=form_errors(exc),
                             status_code=422)
    return core.redirect(request, f"/customers/{customer_id}#addresses", flash="Saved the address.")


def customer_sections(session, user: WebUser, customer_id: str) -> dict:
    """The customer page's Accounts and Addresses sections."""
    book = addresses.list_addresses(session, customer_id, actor=user.actor)
    owned = accounts.list_accounts(session, actor=user.actor, customer_id=customer_id, limit=500).items
    from creditdesk.web import subscriptions as subscriptions_web  # the customer's subscriptions and bills

    return {"addresses": book, "one_line": addresses.one_line, "accounts": owned,
            "balances": accounts.balances_of(session, owned), "may_edit_customer": may_open_accounts(user),
            "billing_configured": settings.get_settings(session, user.workspace_id) is not None,
            **subscriptions_web.customer_context(session, user, customer_id)}
