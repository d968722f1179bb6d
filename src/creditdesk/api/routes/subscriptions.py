"""Subscriptions, bills and billing runs (seed 002): create and activate a subscription, add, remove and
change services, suspend, resume, terminate; bill a subscriber as of a day (preview writes nothing); bills
(invoices of subscriptions); billing runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.orm import Session

from creditdesk.api.deps import (Cursor, Limit, WriteContext, get_actor, read_session, status_query,
                                 statuses, write_context)
from creditdesk.api.schemas import ListOf, list_of
from creditdesk import idempotency
from creditdesk.audit import Actor
from creditdesk.billing import billing_runs, invoices, subscriptions
from creditdesk.billing import invoice_schemas as ins
from creditdesk.billing import subscription_schemas as s
from creditdesk.parties.schemas import Day

router = APIRouter()

STATUSES = ("draft", "active", "suspended", "terminated")
BILL_STATUSES = ("posted", "settled")
SubscriptionRef = Annotated[str, Path(description=(
    "The subscription's `id`, or its number (SUB-000001). Subscriptions of other workspaces are not found (404)."))]
RunId = Annotated[str, Path(description="The id of the billing run, as its `id` field gives it.")]
AccountFilter = Query(default=None, max_length=40, description="Only those of this account (its id).")
CustomerFilter = Query(default=None, max_length=40, description="Only those of this customer (its id).")


def _out(fn):
    def run(db, actor):
        return subscriptions.subscription_out(db, fn(db, actor))
    return run


@router.post("/subscriptions", status_code=201, response_model=s.SubscriptionOut, tags=["subscriptions"])
def create_subscription(body: s.SubscriptionCreate, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. A draft with its services (subscription_service products), activated at once when
    `activate_on` is given. Activation is a fund-using event: 409 credit_limit_exceeded, account_suspended."""
    return ctx.run(_out(lambda db, actor: subscriptions.create_subscription(db, body, actor=actor)), status_code=201)


@router.get("/subscriptions", response_model=ListOf[s.SubscriptionOut], tags=["subscriptions"])
def list_subscriptions(account_id: str | None = AccountFilter,
                       customer_id: str | None = CustomerFilter,
                       status: list[str] | None = status_query(STATUSES, what="subscriptions"),
                       limit: int | None = Limit, cursor: str | None = Cursor, actor: Actor = Depends(get_actor),
                       session: Session = Depends(read_session)):
    page = subscriptions.list_subscriptions(session, actor=actor, account_id=account_id, customer_id=customer_id,
                                            status=statuses(status, STATUSES), limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, lambda sub: subscriptions.subscription_out(session, sub))


@router.get("/subscriptions/{subscription_id}", response_model=s.SubscriptionOut, tags=["subscriptions"])
def get_subscription(subscription_id: SubscriptionRef, actor: Actor = Depends(get_actor),
                     session: Session = Depends(read_session)):
    """By id or number (SUB-000001)."""
    return subscriptions.subscription_out(session, subscriptions.get_subscription(session, actor.workspace_id,
                                                                                  subscription_id))


@router.post("/subscriptions/{subscription_id}/activate", response_model=s.SubscriptionOut, tags=["subscriptions"])
def activate(subscription_id: SubscriptionRef, body: s.Activate, ctx: WriteContext = Depends(write_context)):
    """A fund-using event: 409 credit_limit_exceeded (unless an override rule matches or an opted-in preference
    pays first), account_suspended, subscription_empty."""
    return ctx.run(_out(lambda db, actor: subscriptions.activate(db, subscription_id, body, actor=actor)))


@router.post("/subscriptions/{subscription_id}/services", response_model=s.SubscriptionOut, tags=["subscriptions"])
def add_service(subscription_id: SubscriptionRef, body: s.ServiceIn, ctx: WriteContext = Depends(write_context)):
    """Add a service (a fund-using event on an active subscription). 422 not_a_subscription_service."""
    return ctx.run(_out(lambda db, actor: subscriptions.add_service(db, subscription_id, body, actor=actor)))


@router.post("/subscriptions/{subscription_id}/remove-services", response_model=s.SubscriptionOut,
             tags=["subscriptions"])
def remove_service(subscription_id: SubscriptionRef, body: s.ServiceRemove, ctx: WriteContext = Depends(write_context)):
    """The seed's Remove Services: the service, action type remove, the effective day (the first day without it).
    422 effective_in_billed_period when that day is inside a period already billed."""
    return ctx.run(_out(lambda db, actor: subscriptions.remove_service(db, subscription_id, body, actor=actor)))


@router.post("/subscriptions/{subscription_id}/change-quantity", response_model=s.SubscriptionOut,
             tags=["subscriptions"])
def change_quantity(subscription_id: SubscriptionRef, body: s.QuantityChange,
                    ctx: WriteContext = Depends(write_context)):
    """The new quantity is billed from the next period not yet billed."""
    return ctx.run(_out(lambda db, actor: subscriptions.change_quantity(db, subscription_id, body, actor=actor)))


@router.post("/subscriptions/{subscription_id}/suspend", response_model=s.SubscriptionOut, tags=["subscriptions"])
def suspend(subscription_id: SubscriptionRef, body: s.DatedAction, ctx: WriteContext = Depends(write_context)):
    return ctx.run(_out(lambda db, actor: subscriptions.suspend(db, subscription_id, body, actor=actor)))


@router.post("/subscriptions/{subscription_id}/resume", response_model=s.SubscriptionOut, tags=["subscriptions"])
def resume(subscription_id: SubscriptionRef, body: s.DatedAction, ctx: WriteContext = Depends(write_context)):
    """Billing starts again from the resume day: the days suspended are not billed."""
    return ctx.run(_out(lambda db, actor: subscriptions.resume(db, subscription_id, body, actor=actor)))


@router.post("/subscriptions/{subscription_id}/terminate", response_model=s.SubscriptionOut, tags=["subscriptions"])
def terminate(subscription_id: SubscriptionRef, body: s.DatedAction, ctx: WriteContext = Depends(write_context)):
    return ctx.run(_out(lambda db, actor: subscriptions.terminate(db, subscription_id, body, actor=actor)))


@router.post("/subscriptions/{subscription_id}/bill-preview", response_model=s.BillPreviewOut,
             tags=["subscriptions"])
def preview_bill(subscription_id: SubscriptionRef, body: s.BillAsOf, actor: Actor = Depends(get_actor),
                 session: Session = Depends(read_session)):
    """The bill that billing as of that day would make: lines, proration, taxes, totals. Writes nothing."""
    return subscriptions.preview_bill(session, subscription_id, body, actor=actor)


@router.post("/subscriptions/{subscription_id}/bill", status_code=201, response_model=ins.InvoiceOut | None,
             tags=["subscriptions"])
def bill_subscriber(subscription_id: SubscriptionRef, body: s.BillAsOf, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Bill everything due as of that day: a posted bill (an invoice, numbered, with its
    PDF), or null when nothing is due (billing again as of the same day bills nothing)."""
    def run(db, actor):
        invoice = subscriptions.bill(db, subscription_id, body, actor=actor)
        return invoices.invoice_out(db, invoice) if invoice is not None else None
    return ctx.run(run, status_code=201)


@router.get("/bills", response_model=ListOf[ins.InvoiceOut], tags=["bills"])
def list_bills(account_id: str | None = AccountFilter,
               customer_id: str | None = CustomerFilter,
               subscription_id: str | None = Query(default=None, max_length=40, description=(
                   "Only the bills of this subscription (its id, not its number).")),
               status: list[str] | None = status_query(BILL_STATUSES, what="bills"),
               period_on: Day | None = Query(default=None, description=(
                   "Only bills whose billing period covers this day (YYYY-MM-DD): from the period's first day "
                   "(inclusive) up to its end (exclusive).")),
               overdue: bool | None = Query(default=None, description=(
                   "`true`: only bills posted, with something still due and past their due date; `false`: only "
                   "the others; omitted: both.")),
               limit: int | None = Limit, cursor: str | None = Cursor,
               actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Bills: the invoices of subscriptions, newest first (each is also at /v1/invoices/{id}, with its PDF)."""
    page = subscriptions.list_bills(session, actor=actor, subscription_id=subscription_id, account_id=account_id,
                                    customer_id=customer_id, status=statuses(status, BILL_STATUSES),
                                    period_on=period_on, overdue=overdue,
                                    limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, lambda inv: invoices.invoice_out(session, inv))


@router.post("/billing-runs", status_code=201, response_model=s.BillingRunOut, tags=["bills"])
def start_billing_run(body: s.BillingRunIn, ctx: WriteContext = Depends(write_context)):
    """Masters. Bill every subscription of the workspace due as of the day, in batches (see README "Billing
    runs"): running it again bills nothing twice, and a run cut off resumes where it stopped. Answers the
    finished run. For large workspaces use the CLI (`creditdesk billing run --as-of`) or the jobs.

    With an `Idempotency-Key`, as every write: the same key and body replay the first run's answer
    (`Idempotent-Replayed: true`) and start nothing; the same key with another body is refused (422
    idempotency_key_reused); while the first run is still going, 409 idempotency_request_in_progress."""
    return _start_run(body, ctx)


def _start_run(body: s.BillingRunIn, ctx: WriteContext) -> Response:
    from creditdesk.parties.service import require_master

    actor = ctx.actor
    require_master(actor, "start billing runs")  # before the key: a 403 is never stored under it

    def answer(row) -> tuple[int, str]:
        return 201, billing_runs.run_out(row).model_dump_json()
    key = billing_runs.RunKey(caller=idempotency.caller_of(actor), key=ctx.key, fingerprint=ctx.fingerprint,
                              method=ctx.method, path=ctx.path, answer=answer) if ctx.key is not None else None
    # A run is many transactions (one per batch), so not ctx.run's one: the key is claimed with the run's row
    # and answered when it finishes (billing_runs.run).
    outcome = billing_runs.run(ctx.db, body.as_of, workspace_id=actor.workspace_id, actor_for=lambda ws: actor,
                               run_actor=actor, key=key)
    if isinstance(outcome, idempotency.Replay):
        return Response(outcome.body, status_code=outcome.status, headers={"Idempotent-Replayed": "true"},
                        media_type="application/json" if outcome.status < 400 else "application/problem+json")
    return Response(answer(outcome)[1], status_code=201, media_type="application/json")


@router.get("/billing-runs", response_model=ListOf[s.BillingRunOut], tags=["bills"])
def list_billing_runs(limit: int | None = Limit, cursor: str | None = Cursor, actor: Actor = Depends(get_actor),
                      session: Session = Depends(read_session)):
    page = billing_runs.list_runs(session, actor=actor, limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, billing_runs.run_out)


@router.get("/billing-runs/{run_id}", response_model=s.BillingRunOut, tags=["bills"])
def get_billing_run(run_id: RunId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return billing_runs.run_out(billing_runs.get_run(session, actor.workspace_id, run_id))
