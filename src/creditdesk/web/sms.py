"""Manage SMS credits (seed 003), in the back office: the box reached from the user's name menu, and
its actions: purchase (details -> payment -> confirmation with the tax invoice / receipt), transfer to /
from an account (tick to agree), the last 30 days logs (CSV, print view), and sending an SMS / the outbox.

Every rule (who sees which account, who may buy for or move credits between whom, frozen credits, the
30-day window) lives in creditdesk.sms.service; these pages only show what it answers and post to it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from creditdesk import clock, csvexport
from creditdesk.errors import CreditdeskError, InvalidInput, NotPermitted
from creditdesk.parties.models import Workspace
from creditdesk.sms import payments
from creditdesk.sms import schemas as s
from creditdesk.sms import segments
from creditdesk.sms import service as sms
from creditdesk.sms.receipts import shown_payment_reference
from creditdesk.web import forms, once, repository
from creditdesk.web.catalog import FieldErrors, errors_of
from creditdesk.web.core import (
    WebRoute,
    WebUser,
    csrf_form,
    current_user,
    db_of,
    fmt_amount,
    reading,
    redirect,
    render,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False)

POOL = "workspace"
POOL_NAME = sms.POOL_NAME  # one name for the pool, on every page, CSV, receipt and message
MOVEMENT_LABELS = {
    "purchase": "Purchased", "grant": "Granted", "transfer_in": "Transfer in", "transfer_out": "Transfer out",
    "sent": "SMS sent", "consumed": "Consumed", "reversal": "Returned", "expired": "Expired", "voided": "Voided",
}
PAYMENT_LABELS = {"manual_invoice": "Invoice (paid on account)"}


def _key(row: s.SmsAccountOut) -> str:
    return POOL if row.kind == "workspace" else row.id


def _name(row: s.SmsAccountOut) -> str:
    return POOL_NAME if row.kind == "workspace" else row.name


def _ref(key: str) -> s.AccountRef:
    if key == POOL:
        return s.AccountRef(kind="workspace")
    # Office pools (shared office SMS credits) by their office id; users by theirs.
    return s.AccountRef(kind="office" if key.startswith("off_") else "user", id=key[:40])


def _accounts(request: Request, user: WebUser) -> tuple[list[s.SmsAccountOut], dict, Workspace]:
    with reading(db_of(request)) as session:
        rows = sms.list_accounts(session, actor=user.actor)
        settings = sms.get_settings(session, actor=user.actor)
        workspace = session.get(Workspace, user.workspace_id)
    return rows, settings, workspace


def _find(rows: list[s.SmsAccountOut], key: str) -> s.SmsAccountOut | None:
    return next((r for r in rows if _key(r) == key), None)


def _money(amount: int, currency: str) -> str:
    return f"{fmt_amount(amount, forms.currency_exponent(currency))} {currency}"


def _method_label(code: str) -> str:
    method = payments.get_payment_method(code)
    return getattr(method, "label", None) or PAYMENT_LABELS.get(code, code)


# --- the box ----------------------------------------------------------------------------------------

def _key_name(session, key: str) -> str:
    """The name of the account a form's key names (the pool, an office pool, a user)."""
    ref = _ref(key)
    return sms.holder_name(session, ref.kind, ref.id or "")


def _pending_purchases(session, user: WebUser) -> list[dict]:
    """Purchases waiting for their payment's outcome, for master users (who alone record it): each with what
    the page shows and the settle form needs."""
    if not user.actor.is_master:
        return []
    page = sms.list_purchases(session, actor=user.actor, status="pending", limit=100)
    out = []
    for p in page.items:
        buyer = sms.holder_name(session, "user", p.actor_id) if p.actor_id else ""
        out.append({"id": p.id, "for_name": sms.holder_name(session, p.for_kind, p.for_id),
                    "quantity": p.quantity, "total": _money(p.total, p.currency),
                    "method": _method_label(p.payment_method), "buyer": buyer, "created_at": p.created_at})
    return out


@router.get("/sms", response_class=HTMLResponse)
def manage(request: Request, user: WebUser = Depends(current_user)):
    rows, settings, _ = _accounts(request, user)
    with reading(db_of(request)) as session:
        pending = _pending_purchases(session, user)
    return render(request, "sms.html", nav="sms", rows=rows, key=_key, name=_name, settings=settings,
                  shared=settings.credit_mode != "individual", pending=pending)


# --- purchase ---------------------------------------------------------------------------------------

def _purchase_values(form) -> dict:
    return {
        "for": forms.text(form, "for", limit=60), "quantity": forms.text(form, "quantity", limit=20),
        "billing_name": forms.text(form, "billing_name", limit=200),
        "billing_address": forms.text(form, "billing_address", limit=1000),
        "billing_tax_id": forms.text(form, "billing_tax_id", limit=100),
        "billing_email": forms.text(form, "billing_email", limit=200),
        "payment_method": forms.text(form, "payment_method", limit=40) or "manual_invoice",
    }


# Where the service's refusals of a purchase go on the form (by their code); the rest at the top.
PURCHASE_FIELDS = {"not_permitted": "for", "pool_master_only": "for", "recipient_cannot_send_sms": "for",
                   "invalid_sms_account": "for", "sms_credit_mode_shared": "for", "account_id_required": "for",
                   "not_found": "for"}
BILLING_FIELDS = {"for": "for", "billing.name": "billing_name", "billing.address": "billing_address",
                  "billing.email": "billing_email", "billing.tax_id": "billing_tax_id", "billing": "billing_name",
                  "payment_method": ""}


def _purchase_request(values: dict) -> s.PurchaseCreate:
    """The purchase form read field by field: every problem (ours and the schema's) next to its field, all at
    once."""
    errors: dict[str, str] = {}
    if not values["for"]:
        errors["for"] = "Choose whom the SMS credits are for: System credits or a user."
    quantity = None
    try:
        quantity = forms.integer(values, "quantity", label="Quantity")
        if quantity is None:
            errors["quantity"] = "Enter the number of SMS credits to buy."
    except InvalidInput as exc:
        errors["quantity"] = exc.message
    data, schema = forms.schema_errors(s.PurchaseCreate, {
        "for": _ref(values["for"]).model_dump() if values["for"] else {"kind": "workspace"},
        "quantity": quantity if quantity is not None else 1,
        "billing": {"name": values["billing_name"], "address": values["billing_address"],
                    "tax_id": values["billing_tax_id"] or None, "email": values["billing_email"]},
        "payment_method": values["payment_method"]}, fields=BILLING_FIELDS)
    for name, message in schema.items():
        errors.setdefault(name, message)
    if errors:
        raise FieldErrors(errors)
    return data


def _purchase_page(request: Request, user: WebUser, values: dict, *, errors: dict | None = None,
                   status_code: int = 200) -> HTMLResponse:
    rows, settings, _ = _accounts(request, user)
    options = [(_key(r), _name(r), r.kind) for r in rows if "purchase" in r.actions]
    errors = dict(errors or {})
    if not options and errors:  # no form to show them next to (nobody to buy for): all at the top
        errors = {"": " ".join(errors.values())}
    error = errors.pop("", None) or ("Nothing was bought: correct the fields marked below." if errors else None)
    return render(request, "sms_purchase.html", nav="sms", values=values, options=options, settings=settings,
                  price=_money(settings.unit_price, settings.currency), error=error, errors=errors,
                  status_code=status_code)


def _purchase_refused(request: Request, user: WebUser, values: dict, exc: CreditdeskError, *,
                      paying: bool = False) -> HTMLResponse:
    """The details form again, each problem next to its field. Not permitted at the payment step stays a 403:
    the details step said nothing against it, so the form was not the one the page offered."""
    errors = errors_of(exc) if isinstance(exc, FieldErrors) else forms.placed(
        exc, PURCHASE_FIELDS, words={"not_found": "Choose whom the SMS credits are for from the list."})
    return _purchase_page(request, user, values, errors=errors,
                          status_code=403 if paying and isinstance(exc, NotPermitted) else 422)


@router.get("/sms/purchase", response_class=HTMLResponse)
def purchase_form(request: Request, user: WebUser = Depends(current_user)):
    wanted = (request.query_params.get("for") or "")[:60]
    values = {"for": wanted, "quantity": "", "billing_name": user.name, "billing_address": "", "billing_tax_id": "",
              "billing_email": user.email, "payment_method": "manual_invoice"}
    return _purchase_page(request, user, values)


@router.post("/sms/purchase", response_class=HTMLResponse)
def purchase_proceed(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    """Step 4 -> the payment screen: nothing is bought (and no credits applied) until Pay is pressed. The
    payment form carries this form's one-time key: the purchase is one operation from details to Pay."""
    values = _purchase_values(form)
    try:
        earlier = once.answered(request, user, form)  # paid already under this key
        if earlier is not None:
            return earlier
        data = _purchase_request(values)
        with reading(db_of(request)) as session:
            sms.authorize_purchase(session, user.actor, data.for_)
            settings = sms.get_settings(session, actor=user.actor)
            for_name = sms.holder_name(session, data.for_.kind, data.for_.id or "")
    except CreditdeskError as exc:
        return _purchase_refused(request, user, values, exc)
    subtotal = settings.unit_price * data.quantity
    tax = sms.compute_tax(subtotal, settings.tax_rate_bp)
    methods = [(code, _method_label(code)) for code in settings.payment_methods]
    return render(request, "sms_payment.html", nav="sms", values=values, for_name=for_name, quantity=data.quantity,
                  unit_price=_money(settings.unit_price, settings.currency),
                  subtotal=_money(subtotal, settings.currency), tax=_money(tax, settings.currency),
                  tax_label=f"{settings.tax_label} {settings.tax_rate_bp / 100:g} %",
                  total=_money(subtotal + tax, settings.currency), methods=methods, once_key=once.key_of(form))


@router.post("/sms/purchase/pay", response_class=HTMLResponse)
def purchase_pay(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    values = _purchase_values(form)
    try:
        data = _purchase_request(values)

        def buy(session) -> once.Done:
            purchase = sms.create_purchase(session, data, actor=user.actor)
            return once.Done(f"/sms/purchases/{purchase.id}")
        return once.run(request, user, form, buy)
    except CreditdeskError as exc:
        return _purchase_refused(request, user, values, exc, paying=True)


def _purchase_view(request: Request, user: WebUser, purchase_id: str):
    with reading(db_of(request)) as session:
        purchase = sms.get_purchase(session, purchase_id, actor=user.actor)
        for_name = sms.holder_name(session, purchase.for_kind, purchase.for_id)
    return purchase, for_name


@router.get("/sms/purchases/{purchase_id}", response_class=HTMLResponse)
def purchase_confirmation(purchase_id: str, request: Request, user: WebUser = Depends(current_user)):
    purchase, for_name = _purchase_view(request, user, purchase_id)
    cur = purchase.currency
    return render(request, "sms_confirmation.html", nav="sms", p=purchase, for_name=for_name,
                  receipt_number=sms.receipt_number(purchase), method=_method_label(purchase.payment_method),
                  reference=shown_payment_reference(purchase),
                  for_key=POOL if purchase.for_kind == "workspace" else purchase.for_id,
                  money={k: _money(getattr(purchase, k), cur) for k in ("unit_price", "subtotal", "tax", "total")})


@router.post("/sms/purchases/{purchase_id}/payment", response_class=HTMLResponse)
def settle(purchase_id: str, request: Request, user: WebUser = Depends(current_user),
           form: FormData = Depends(csrf_form)):
    status = forms.text(form, "status", limit=10)
    outcome = forms.validated(s.PaymentOutcome, status=status, reference=forms.optional(form, "reference"),
                              reason=forms.optional(form, "reason"))

    # From the list of pending purchases on Manage SMS credits, back to it; from the purchase page, to it.
    back = "/sms" if forms.text(form, "back") == "/sms" else f"/sms/purchases/{purchase_id}"

    def record(session) -> once.Done:
        purchase = sms.settle_purchase(session, purchase_id, outcome, actor=user.actor)
        for_name = sms.holder_name(session, purchase.for_kind, purchase.for_id)
        if purchase.status == "paid":
            text = (f"Payment recorded: {purchase.quantity:,} SMS credits applied to {for_name}; receipt "
                    f"{sms.receipt_number(purchase)} issued.")
        else:
            text = f"Payment recorded as failed: no credits applied to {for_name}."
        return once.Done(back, flash=text)
    return once.run(request, user, form, record)


@router.get("/sms/purchases/{purchase_id}/receipt.pdf")
def receipt(purchase_id: str, request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        filename, pdf = sms.purchase_receipt(session, purchase_id, actor=user.actor)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


# --- transfer ---------------------------------------------------------------------------------------

def _transfer_page(request: Request, user: WebUser, key: str, direction: str, values: dict, *,
                   errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    rows, settings, _ = _accounts(request, user)
    account = _find(rows, key)
    needed = "transfer_from" if direction == "from" else "transfer_to"
    if account is None or needed not in account.actions:
        raise NotPermitted("You cannot transfer SMS credits " + ("from" if direction == "from" else "to")
                           + " this account.", code="not_permitted")
    # The other side: accounts credits may go to (from this one) or come from (into this one).
    other_action = "transfer_to" if direction == "from" else "transfer_from"
    others = [(_key(r), _name(r), r) for r in rows if other_action in r.actions and _key(r) != key]
    if direction == "from" and account.kind == "office" and account.leftover:
        # A leftover office pool (individual mode) gives to the pool or to users who may send SMS, no other pool.
        others = [o for o in others if o[2].kind != "office"]
    helpers = []
    if not others and account.kind == "user":
        # No dead end: say by name who can move these credits instead.
        from creditdesk.credits import governance
        with reading(db_of(request)) as session:
            helpers = [u.name for u in governance.who_can_move_for(session, user.actor.workspace_id, account.id)
                       if u.id != user.actor.user_id]
    errors = dict(errors or {})
    error = errors.pop("", None) or ("Nothing was transferred: correct the fields marked below." if errors else None)
    return render(request, "sms_transfer.html", nav="sms", account=account, account_key=key, helpers=helpers,
                  account_name=_name(account), direction=direction, others=others, values=values,
                  conditions=settings.transfer_conditions, error=error, errors=errors, status_code=status_code)


@router.get("/sms/transfer", response_class=HTMLResponse)
def transfer_form(request: Request, user: WebUser = Depends(current_user)):
    key = (request.query_params.get("account") or "")[:40]
    direction = "to" if request.query_params.get("direction") == "to" else "from"
    return _transfer_page(request, user, key, direction, {"other": "", "quantity": "", "memo": "", "agree": False})


# Where the service's refusals of a transfer go on the form (by their code); the rest at the top.
TRANSFER_FIELDS = {"insufficient_credits": "quantity", "conditions_not_agreed": "agree", "not_found": "other",
                   "same_holder": "other", "recipient_cannot_send_sms": "other", "invalid_sms_account": "other",
                   "account_id_required": "other"}


def _transfer_request(key: str, direction: str, values: dict) -> s.SmsTransferCreate:
    """The transfer form read field by field: every problem next to its field, all at once."""
    errors: dict[str, str] = {}
    if not values["other"]:
        errors["other"] = "Choose the account to transfer " + ("to." if direction == "from" else "from.")
    quantity = None
    try:
        quantity = forms.integer(values, "quantity", label="Quantity")
        if quantity is None:
            errors["quantity"] = "Enter the number of SMS credits to transfer."
    except InvalidInput as exc:
        errors["quantity"] = exc.message
    if not values["agree"]:
        errors["agree"] = "Tick the box to agree to the transfer conditions before you transfer."
    source, to = (key, values["other"] or POOL) if direction == "from" else (values["other"] or POOL, key)
    data, schema = forms.schema_errors(s.SmsTransferCreate, {
        "from": _ref(source).model_dump(), "to": _ref(to).model_dump(),
        "quantity": quantity if quantity is not None else 1, "agree_to_conditions": True, "memo": values["memo"]},
        fields={"from": "" if direction == "from" else "other", "to": "other" if direction == "from" else ""})
    for name, message in schema.items():
        errors.setdefault(name, message)
    if errors:
        raise FieldErrors(errors)
    return data


@router.post("/sms/transfer", response_class=HTMLResponse)
def transfer(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    key = forms.text(form, "account", limit=40)
    direction = "to" if forms.text(form, "direction") == "to" else "from"
    values = {"other": forms.text(form, "other", limit=40), "quantity": forms.text(form, "quantity", limit=20),
              "memo": forms.text(form, "memo", limit=2000), "agree": form.get("agree") == "yes"}
    try:
        data = _transfer_request(key, direction, values)
        source, to = (key, values["other"]) if direction == "from" else (values["other"], key)

        def move(session) -> once.Done:
            sms.transfer(session, data, actor=user.actor)
            names = [_key_name(session, k) for k in (source, to)]
            return once.Done("/sms", flash=f"Transferred {data.quantity:,} SMS credits from {names[0]} to "
                                           f"{names[1]}. The credits are applied.")
        return once.run(request, user, form, move)
    except CreditdeskError as exc:
        if isinstance(exc, FieldErrors):
            errors = errors_of(exc)
        else:
            # The other side is the recipient only when credits go from this account.
            by_code = dict(TRANSFER_FIELDS)
            if exc.code == "recipient_cannot_send_sms" and exc.details.get("user_id") != values["other"]:
                by_code.pop("recipient_cannot_send_sms")
            errors = forms.placed(exc, by_code, words={
                "not_found": "Choose the account to transfer " + ("to" if direction == "from" else "from")
                             + " from the list.",
                "insufficient_credits": f"Only {exc.details.get('available', 0):,} SMS credits are available to "
                                        f"transfer; nothing was transferred."})
        return _transfer_page(request, user, key, direction, values, errors=errors,
                              status_code=403 if isinstance(exc, NotPermitted) else 422)


# --- logs -------------------------------------------------------------------------------------------

def _log_rows(request: Request, user: WebUser, account: str | None):
    with reading(db_of(request)) as session:
        entries = list(sms.iter_logs(session, actor=user.actor, account=account))
        title = _key_name(session, account) if account else None
    return entries, title


@router.get("/sms/logs", response_class=HTMLResponse)
def logs(request: Request, user: WebUser = Depends(current_user)):
    account = (request.query_params.get("account") or "")[:40] or None
    entries, title = _log_rows(request, user, account)
    printing = request.query_params.get("print") == "1"
    return render(request, "sms_logs.html", nav="sms", entries=entries, account=account, title=title,
                  labels=MOVEMENT_LABELS, days=sms.LOG_DAYS, printing=printing, now=clock.now())


@router.get("/sms/logs.csv")
def logs_csv(request: Request, user: WebUser = Depends(current_user)):
    account = (request.query_params.get("account") or "")[:40] or None
    db = db_of(request)
    # Check access before streaming: an error after the first byte could not be a proper answer.
    with reading(db) as session:
        sms.list_logs(session, actor=user.actor, account=account, limit=1)

    def rows():
        with db.read() as session:
            for entry in sms.iter_logs(session, actor=user.actor, account=account):
                yield sms.log_csv_row(entry)

    return csvexport.response(sms.LOG_CSV_COLUMNS, rows(), filename=f"sms-logs-{account or 'all'}.csv")


# --- send an SMS / the outbox -------------------------------------------------------------------------

def _messages_page(request: Request, user: WebUser, values: dict, *, error: str | None = None,
                   errors: dict | None = None, status_code: int = 200) -> HTMLResponse:
    rows, settings, _ = _accounts(request, user)
    own = next((r for r in rows if r.kind == "user" and r.is_self), None)
    with reading(db_of(request)) as session:
        page = sms.list_messages(session, actor=user.actor, limit=100)
        messages = [sms.message_out(m) for m in page.items]
        ids = {m.sender_user_id for m in messages} | {m.on_behalf_of_user_id for m in messages
                                                       if m.on_behalf_of_user_id}
        names = {i: sms.holder_name(session, "user", i) for i in ids}
        people = repository.users_for_select(session, user.workspace_id)
        # The form only for those the service will let send; the others read why and who can change it.
        refusal = sms.sending_refusal(session, user.actor)
        payers = (sms.shared_payers(session, user.actor)
                  if settings.credit_mode == "shared" and refusal is None else None)
    errors = dict(errors or {})
    error = error or errors.pop("", None) or ("Nothing was sent: correct the fields marked below." if errors else None)
    return render(request, "sms_messages.html", nav="sms", own=own, messages=messages, names=names, people=people,
                  payers=payers, values=values, error=error, errors=errors, status_code=status_code,
                  sms_alphabet=SMS_ALPHABET, refusal=refusal)


# The live counter on Send SMS (static/sms_counter.js) counts with the server's own alphabet and limits
# (sms/segments.py), handed to it in data attributes, so the two cannot drift apart.
SMS_ALPHABET = {
    "basic": "".join(sorted(segments.GSM7_BASIC)), "extension": "".join(sorted(segments.GSM7_EXTENSION)),
    "limits": f"{segments.GSM7_SINGLE},{segments.GSM7_PART},{segments.UCS2_SINGLE},{segments.UCS2_PART}",
}


@router.get("/sms/messages", response_class=HTMLResponse)
def messages(request: Request, user: WebUser = Depends(current_user)):
    return _messages_page(request, user, {"to": "", "body": "", "on_behalf_of": ""})


@router.post("/sms/messages", response_class=HTMLResponse)
def send(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    body = str(form.get("body") or "")[:1600]
    values = {"to": forms.text(form, "to", limit=40), "body": body,
              "on_behalf_of": forms.text(form, "on_behalf_of", limit=40)}
    with reading(db_of(request)) as session:
        refusal = sms.sending_refusal(session, user.actor)  # the service's own rule, asked before any key
    if refusal is not None:
        return _messages_page(request, user, values, error=refusal, status_code=403)
    try:
        errors: dict[str, str] = {}
        if not values["to"]:
            errors["to"] = "Enter the phone number to send to, like +61400000000."
        if not body.strip():
            errors["body"] = "Type the message to send."
        data, schema = forms.schema_errors(s.MessageCreate, {
            "to": values["to"], "body": body, "on_behalf_of_user_id": values["on_behalf_of"] or None},
            fields={"on_behalf_of_user_id": "on_behalf_of"}, labels={"on_behalf_of": "On behalf of"})
        for name, message in schema.items():
            errors.setdefault(name, message)
        if errors:
            raise FieldErrors(errors)

        def send_once(session) -> once.Done:
            message = sms.send_message(session, data, actor=user.actor)

            def first_answer():
                # Runs after the commit, once the sender has answered (the service hands the message over
                # after commit and updates this object with the outcome).
                if message.status != "accepted":
                    # Done all the same (the failed message is in the outbox); the form comes back filled in.
                    text = f"The message was not sent: {message.failure_reason} No credits were used."
                    return _messages_page(request, user, values, status_code=422, error=text)
                return redirect(request, "/sms/messages", flash=f"SMS sent to {message.recipient}: "
                                f"{message.segments} segment(s), {message.credits_charged} credit(s) used.")
            # A repeat of the form only learns that it was done: the outbox shows what became of it.
            return once.Done("/sms/messages", flash=f"SMS to {message.recipient} handed to the sender; see the "
                                                    "outbox below.", first=first_answer)
        return once.run(request, user, form, send_once)
    except CreditdeskError as exc:
        errors = errors_of(exc) if isinstance(exc, FieldErrors) else forms.placed(exc, {
            "message_too_long": "body", "not_found": "on_behalf_of"}, words={
            "not_found": "Choose whom the message is sent for from the list, or Myself."})
        return _messages_page(request, user, values, errors=errors,
                              status_code=403 if isinstance(exc, NotPermitted) else 422)


# --- settings (master users) ---------------------------------------------------------------------------

@router.post("/settings/sms", response_class=HTMLResponse)
def sms_settings(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    """Change the SMS credit mode (individual or shared): master users only, audited by the service."""
    try:
        data = forms.validated(s.SmsSettingsUpdate, credit_mode=forms.text(form, "credit_mode", limit=20),
                               confirm_mode_change=form.get("confirm") == "yes")
        db_of(request).write(lambda session: sms.update_settings(session, data, actor=user.actor))
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        if exc.code == "mode_change_unconfirmed":  # say what the change does and leaves, then ask
            return render(request, "sms_mode_confirm.html", nav="settings", mode=data.credit_mode,
                          question=exc.message.rsplit(" Confirm the change", 1)[0], left=exc.details)
        return redirect(request, "/settings", flash=forms.plain(exc.message), level="error")
    label = "individual user" if data.credit_mode == "individual" else "shared office"
    return redirect(request, "/settings", flash=f"SMS credit mode: {label} SMS credits.")
