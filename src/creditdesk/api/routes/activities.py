"""Activities (seed 002): activity types, and activities scheduled for customers (open -> in_progress ->
completed, or cancelled); completing one bills its services on a posted invoice."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session

from creditdesk.activities import schemas as s
from creditdesk.activities import service as activities
from creditdesk.api.deps import (Cursor, Limit, WriteContext, get_actor, read_session, status_query, statuses,
                                 write_context)
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor

router = APIRouter()

ACTIVITY_STATUSES = get_args(s.ActivityStatus)
ActivityTypeId = Annotated[str, Path(description="The id of the activity type, as its `id` field gives it.")]
ActivityId = Annotated[str, Path(description="The id of the activity, as its `id` field gives it.")]


# --- activity types ---

@router.get("/activity-types", response_model=ListOf[s.ActivityTypeOut], tags=["activities"])
def list_activity_types(limit: int | None = Limit, cursor: str | None = Cursor,
                        active: bool | None = Query(default=None, description=(
                            "`true`: only types in use; `false`: only those switched off; omitted: both.")),
                        actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = activities.list_types(session, actor=actor, active=active, limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, lambda t: activities.type_out(session, t))


@router.post("/activity-types", status_code=201, response_model=s.ActivityTypeOut, tags=["activities"])
def create_activity_type(body: s.ActivityTypeCreate, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. A kind of activity (installation, repair, visit); `services` are one-time
    service products added to every new activity of the type. 409 code_taken; 422 not_a_service."""
    return ctx.run(lambda db, actor: activities.type_out(db, activities.create_type(db, body, actor=actor)),
                   status_code=201)


@router.get("/activity-types/{activity_type_id}", response_model=s.ActivityTypeOut, tags=["activities"])
def get_activity_type(activity_type_id: ActivityTypeId, actor: Actor = Depends(get_actor),
                      session: Session = Depends(read_session)):
    return activities.type_out(session, activities.get_type(session, actor.workspace_id, activity_type_id))


@router.patch("/activity-types/{activity_type_id}", response_model=s.ActivityTypeOut, tags=["activities"])
def update_activity_type(activity_type_id: ActivityTypeId, body: s.ActivityTypeUpdate,
                         ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Name, active, services (the code never changes)."""
    return ctx.run(lambda db, actor: activities.type_out(
        db, activities.update_type(db, activity_type_id, body, actor=actor)))


# --- activities ---

@router.get("/activities", response_model=ListOf[s.ActivityOut], tags=["activities"])
def list_activities(limit: int | None = Limit, cursor: str | None = Cursor,
                    customer_id: str | None = Query(default=None, max_length=40, description=(
                        "Only the activities scheduled for this customer (its id).")),
                    assignee_user_id: str | None = Query(default=None, max_length=40, description=(
                        "Only the activities assigned to this user (its id).")),
                    unit_id: str | None = Query(default=None, max_length=40, description=(
                        "Only the activities assigned to this office or team (its id).")),
                    type: str | None = Query(default=None, max_length=100, description=(
                        "Only activities of this activity type, by its code or its id.")),
                    status: list[str] | None = status_query(ACTIVITY_STATUSES, what="activities"),
                    overdue: bool = Query(default=False, description=(
                        "Only activities whose expected completion has passed, neither completed nor cancelled.")),
                    mine: bool = Query(default=False, description="Only activities assigned to the caller's user."),
                    actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = activities.list_activities(session, actor=actor, customer_id=customer_id,
                                      assignee_user_id=assignee_user_id, unit_id=unit_id, type=type,
                                      status=statuses(status, ACTIVITY_STATUSES), overdue=overdue, mine=mine,
                                      limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, lambda a: activities.activity_out(session, a))


@router.post("/activities", status_code=201, response_model=s.ActivityOut, tags=["activities"])
def schedule_activity(body: s.ActivityCreate, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Schedule an activity for a customer (status open). Contact: default the
    customer's name and email; services: default the type's. 422 link_not_of_customer,
    account_not_of_customer, not_a_service, invalid_dates, unit_not_own, assignee_not_staff."""
    return ctx.run(lambda db, actor: activities.activity_out(db, activities.schedule(db, body, actor=actor)),
                   status_code=201)


@router.get("/activities/{activity_id}", response_model=s.ActivityOut, tags=["activities"])
def get_activity(activity_id: ActivityId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return activities.activity_out(session, activities.get_activity(session, actor.workspace_id, activity_id))


@router.patch("/activities/{activity_id}", response_model=s.ActivityOut, tags=["activities"])
def update_activity(activity_id: ActivityId, body: s.ActivityUpdate, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Dates and assignment until it is completed or cancelled (409 activity_final);
    contact, link, account and services while it is open (409 activity_not_open)."""
    return ctx.run(lambda db, actor: activities.activity_out(
        db, activities.update(db, activity_id, body, actor=actor)))


@router.post("/activities/{activity_id}/start", response_model=s.ActivityOut, tags=["activities"])
def start_activity(activity_id: ActivityId, ctx: WriteContext = Depends(write_context)):
    """Masters, managers and the assigned user. open -> in_progress (409 invalid_transition otherwise)."""
    return ctx.run(lambda db, actor: activities.activity_out(db, activities.start(db, activity_id, actor=actor)))


@router.post("/activities/{activity_id}/complete", response_model=s.ActivityOut, tags=["activities"])
def complete_activity(activity_id: ActivityId, ctx: WriteContext = Depends(write_context)):
    """Masters, managers and the assigned user. in_progress -> completed; its services are billed on an
    invoice of the activity's account (else the customer's only active one), posted at once: `invoice_id`.
    409 invalid_transition, no_account, account_ambiguous; a refusal of the invoice refuses the completion."""
    return ctx.run(lambda db, actor: activities.activity_out(db, activities.complete(db, activity_id, actor=actor)))


@router.post("/activities/{activity_id}/cancel", response_model=s.ActivityOut, tags=["activities"])
def cancel_activity(activity_id: ActivityId, body: s.ActivityCancel | None = None,
                    ctx: WriteContext = Depends(write_context)):
    """Masters and managers. open or in_progress -> cancelled (final)."""
    return ctx.run(lambda db, actor: activities.activity_out(
        db, activities.cancel(db, activity_id, body, actor=actor)))
