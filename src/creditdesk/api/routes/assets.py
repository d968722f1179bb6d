"""Account assets (seed 004): list, read with history, import a customer-owned item, transfer ownership,
return to the warehouse. Goods bought on an invoice become assets when the invoice is posted."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from creditdesk.api.deps import (Cursor, Limit, WriteContext, get_actor, read_session, status_query, statuses,
                                 write_context)
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.billing import assets
from creditdesk.billing import asset_schemas as s

router = APIRouter()

ASSET_STATUSES = ("active", "returned")
AssetId = Annotated[str, Path(description="The id of the asset, as its `id` field gives it.")]


class AssetsMoved(BaseModel):
    object: Literal["list"] = "list"
    data: list[s.AssetOut]
    stock_in_number: str | None = None


@router.get("/assets", response_model=ListOf[s.AssetOut], tags=["assets"])
def list_assets(limit: int | None = Limit, cursor: str | None = Cursor,
                account_id: str | None = Query(default=None, max_length=40, description=(
                    "Only this account's current assets (its id): those it owns now, active ones only.")),
                owned_before_by: str | None = Query(default=None, max_length=40, description=(
                    "Only the assets this account (its id) transferred away or returned: its asset history.")),
                status: list[str] | None = status_query(ASSET_STATUSES, what="assets"),
                actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = assets.list_assets(session, actor=actor, account_id=account_id, owned_before_by=owned_before_by,
                              status=statuses(status, ASSET_STATUSES), limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, lambda a: assets.asset_out(session, a))


@router.get("/assets/{asset_id}", response_model=s.AssetOut, tags=["assets"])
def get_asset(asset_id: AssetId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """The asset with its history (acquired, imported, transferred, returned)."""
    return assets.asset_out(session, assets.get_asset(session, actor.workspace_id, asset_id), with_history=True)


@router.post("/assets/import", status_code=201, response_model=s.AssetOut, tags=["assets"])
def import_asset(body: s.AssetImport, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. A customer-owned item (registered with the provisioning provider, not bought
    here) associated with the account: ownership customer_owned. 409 account_terminated."""
    return ctx.run(lambda db, actor: assets.asset_out(db, assets.import_asset(db, body, actor=actor)),
                   status_code=201)


@router.post("/assets/transfer", response_model=AssetsMoved, tags=["assets"])
def transfer_assets(body: s.AssetTransfer, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Transfer ownership of one or more assets to another account, all or none; the
    warranty moves unchanged. 409 asset_returned, account_terminated; 422 asset_same_account."""
    def run(db, actor):
        moved = assets.transfer_assets(db, body, actor=actor)
        return {"object": "list", "data": [assets.asset_out(db, a).model_dump(mode="json") for a in moved]}
    return ctx.run(run)


@router.post("/assets/return", response_model=AssetsMoved, tags=["assets"])
def return_assets(body: s.AssetReturn, ctx: WriteContext = Depends(write_context)):
    """Masters and managers. Goods sold go back to the warehouse through one stock-in (its number in the
    answer). 409 asset_returned, asset_customer_owned (a customer's own item stays with the account)."""
    def run(db, actor):
        stock_in, returned = assets.return_assets(db, body, actor=actor)
        return {"object": "list", "data": [assets.asset_out(db, a).model_dump(mode="json") for a in returned],
                "stock_in_number": stock_in}
    return ctx.run(run)
