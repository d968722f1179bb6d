"""Finance > Billing runs (seed 002's Billing Run; product brief: finance runs billing): the runs of the workspace
(as of, status, who started it, what it billed, what it refused and why) and the form starting one as of a day.

Starting a run is the API's POST /v1/billing-runs, through the same function (billing_runs.run) and the same
rule (masters only). The form carries a one-time key like every form that moves money (web.once), but a run
is many transactions (one per batch), not the one `once.run` wraps: the key is claimed with the run's row and
answered when the run finishes (billing_runs.RunKey). A second submit of the same form while the run goes on
is told so; after it, it goes to the run's page, told it was already done: one run, whatever the clicks."""

from __future__ import annotations

import json
from datetime import date

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from starlette.datastructures import FormData

from creditdesk import clock, currencies, idempotency
from creditdesk.billing import billing_runs
from creditdesk.billing.invoice_models import Invoice
from creditdesk.billing.models import BillingAccount
from creditdesk.billing.subscription_models import Subscription
from creditdesk.errors import CreditdeskError, IdempotencyInProgress, IdempotencyKeyReused, NotPermitted
from creditdesk.parties.models import User
from creditdesk.parties.service import require_master
from creditdesk.web import forms, once
from creditdesk.web.catalog import FieldErrors
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, redirect, render
from creditdesk.web.finance import form_errors

router = APIRouter(route_class=WebRoute, include_in_schema=False)

SHOWN_BILLS = 500  # a run's page lists this many of its bills; the totals count them all


def may_start(user: WebUser) -> bool:
    try:
        require_master(user.actor, "start billing runs")
    except NotPermitted:
        return False
    return True


def _starters(session, rows) -> dict[str, str]:
    ids = {r.run.actor_id for r in rows if r.run.actor_id}
    if not ids:
        return {}
    return {u.id: u.name or u.email for u in session.scalars(select(User).where(User.id.in_(ids)))}


@router.get("/billing-runs", response_class=HTMLResponse)
def billing_runs_page(request: Request, user: WebUser = Depends(current_user)):
    return _list(request, user)


def _list(request: Request, user: WebUser, *, values: dict | None = None, errors: dict | None = None,
          status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        page = billing_runs.list_summaries(session, actor=user.actor, limit=50,
                                           cursor=request.query_params.get("cursor") or None)
        starters = _starters(session, page.items)
        due = billing_runs.count_due(session, clock.now().date(), workspace_id=user.workspace_id)
    return render(request, "billing_runs.html", nav="finance", rows=page.items, next_cursor=page.next_cursor,
                  starters=starters, may_start=may_start(user), due_today=due,
                  values=values or {"as_of": clock.now().date().isoformat()}, errors=errors or {},
                  status_code=status_code)


def _as_of(form: FormData) -> date:
    raw = forms.text(form, "as_of", limit=20)
    if not raw:
        raise FieldErrors({"as_of": "Bill as of: choose a day."})
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FieldErrors({"as_of": "Bill as of: choose a day (YYYY-MM-DD)."}) from None


def _done(row) -> str:
    return (f"Billing run as of {row.as_of} finished: {row.subscriptions_billed} subscription(s) billed, "
            f"{row.bills} bill(s) posted, {row.refused} refused.")


@router.post("/billing-runs", response_class=HTMLResponse)
def start_billing_run(request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    require_master(user.actor, "start billing runs")  # the API's rule; before the key, as the API does
    values = {"as_of": forms.text(form, "as_of", limit=20)}
    try:
        day = _as_of(form)
        key = billing_runs.RunKey(
            caller=idempotency.caller_of(user.actor), key=once.key_of(form),
            fingerprint=once.fingerprint(request, form), method="POST", path=request.url.path,
            answer=lambda row: (303, json.dumps({"url": f"/billing-runs/{row.id}", "flash": _done(row),
                                                 "level": "success"})))
        outcome = billing_runs.run(db_of(request), day, workspace_id=user.workspace_id,
                                   actor_for=lambda ws: user.actor, run_actor=user.actor, key=key)
    except IdempotencyKeyReused:
        errors = {"": "This form was already submitted, with another day, and that run was done. Nothing more was "
                      "done now: choose the day again below to start another run."}
        return _list(request, user, values=values, errors=errors, status_code=409)
    except IdempotencyInProgress:
        errors = {"": "This run is still going (the form was submitted twice): nothing more was started. Reload "
                      "this page in a moment to see it finished."}
        return _list(request, user, values=values, errors=errors, status_code=409)
    except CreditdeskError as exc:
        errors = form_errors(exc, values=values, labels={"as_of": "Bill as of"})
        return _list(request, user, values=values, errors=errors,
                     status_code=exc.http_status if exc.http_status >= 400 else 422)
    if isinstance(outcome, idempotency.Replay):
        stored = json.loads(outcome.body)
        return redirect(request, stored["url"], flash=f"{once.ALREADY_DONE}: {stored['flash']}")
    return redirect(request, f"/billing-runs/{outcome.id}", flash=_done(outcome))


@router.get("/billing-runs/{run_id}", response_class=HTMLResponse)
def billing_run_page(run_id: str, request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        summary = billing_runs.get_summary(session, actor=user.actor, run_id=run_id)
        bill_ids = [bill_id for _, bill_id in summary.billed if bill_id]
        bills, totals = [], {}
        for n in range(0, len(bill_ids), 500):  # every bill in the totals, a bounded IN list at a time
            chunk = list(session.scalars(select(Invoice).where(Invoice.workspace_id == user.workspace_id,
                                                               Invoice.id.in_(bill_ids[n:n + 500]))))
            for inv in chunk:
                totals[inv.currency] = totals.get(inv.currency, 0) + inv.total
            if len(bills) < SHOWN_BILLS:
                bills += chunk[:SHOWN_BILLS - len(bills)]
        bills.sort(key=lambda inv: inv.number or "")
        account_of = {a.id: a for a in session.scalars(select(BillingAccount).where(
            BillingAccount.id.in_({inv.account_id for inv in bills})))} if bills else {}
        number_of = {row.id: row.number for row in session.execute(select(Subscription.id, Subscription.number).where(
            Subscription.id.in_({inv.subscription_id for inv in bills if inv.subscription_id})))} if bills else {}
        starters = _starters(session, [summary])
    return render(request, "billing_run.html", nav="finance", summary=summary, row=summary.run, bills=bills,
                  bill_count=len(bill_ids), totals=sorted(totals.items()), account_of=account_of,
                  number_of=number_of, starters=starters, money=currencies.format_money)
