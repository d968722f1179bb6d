"""Low-balance thresholds and their crossings (issue 16): a holder's balance of a credit type falling below its
threshold emits balance.low once per crossing and, when configured, an automatic top-up."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from creditdesk import clock
from creditdesk.api.deps import Cursor, Limit, WriteContext, get_actor, read_session, write_context
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.credits import low_balance
from creditdesk.credits import schemas as s
from creditdesk.credits.credit_types import credit_type

router = APIRouter()

ThresholdId = Annotated[str, Path(description="The id of the balance threshold, as its `id` field gives it.")]


def _holder(kind: str, holder_id: str) -> dict | None:
    return None if (kind, holder_id) == low_balance.ANY else {"kind": kind, "id": holder_id}


def threshold_out(session: Session, row) -> s.ThresholdOut:
    return s.ThresholdOut(id=row.id, credit_type=credit_type(session, row.credit_type_id).code,
                          holder=_holder(row.holder_kind, row.holder_id), threshold=row.threshold,
                          top_up_package_id=row.top_up_product_id, top_up_count=row.top_up_count, active=row.active,
                          created_at=clock.aware(row.created_at), updated_at=clock.aware(row.updated_at))


@router.put("/balance-thresholds", response_model=s.ThresholdOut, tags=["low balance"])
def set_threshold(body: s.ThresholdSet, ctx: WriteContext = Depends(write_context)):
    """Masters. Create or replace the threshold of a holder (or, without a holder, the workspace default) for a
    credit type. 422 top_up_not_a_package."""
    return ctx.run(lambda db, actor: threshold_out(db, low_balance.set_threshold(db, body, actor=actor)))


@router.get("/balance-thresholds", response_model=ListOf[s.ThresholdOut], tags=["low balance"])
def list_thresholds(actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return list_of(low_balance.list_thresholds(session, actor=actor), None, lambda r: threshold_out(session, r))


class Deleted(BaseModel):
    id: str
    object: Literal["balance_threshold"] = "balance_threshold"
    deleted: bool = Field(description="false: it has crossings, so it was switched off and kept for them.")


@router.delete("/balance-thresholds/{threshold_id}", response_model=Deleted, tags=["low balance"])
def delete_threshold(threshold_id: ThresholdId, ctx: WriteContext = Depends(write_context)):
    """Masters. A threshold that has crossings is switched off (kept for them); otherwise deleted."""
    return ctx.run(lambda db, actor: {"id": threshold_id, "object": "balance_threshold",
                                      "deleted": low_balance.delete_threshold(db, threshold_id, actor=actor)})


@router.get("/balance-crossings", response_model=ListOf[s.CrossingOut], tags=["low balance"])
def list_crossings(holder_kind: s.HolderKind | None = Query(default=None, description=(
                       "Only crossings of holders of this kind: `office`, `user`, `customer` or `workspace`.")),
                   holder_id: str | None = Query(default=None, max_length=40, description=(
                       "Only the crossings of this holder (an office, user or customer id).")),
                   limit: int | None = Limit, cursor: str | None = Cursor,
                   actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Newest first: each crossing below a threshold, with the balances and the top-up invoice."""
    page = low_balance.list_crossings(session, actor=actor, holder_kind=holder_kind, holder_id=holder_id,
                                      limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, lambda r: s.CrossingOut(
        id=r.id, holder={"kind": r.holder_kind, "id": r.holder_id}, credit_type=credit_type(session,
                                                                                            r.credit_type_id).code,
        threshold=r.threshold, balance_before=r.balance_before, balance_after=r.balance_after,
        consumption_id=r.consumption_id, top_up_invoice_id=r.top_up_invoice_id, top_up_note=r.top_up_note,
        created_at=clock.aware(r.created_at)))
