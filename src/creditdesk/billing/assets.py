"""Account assets (seed 004): physical goods bought become the account's assets; an asset changes hands by
a transfer of ownership (its warranty goes with it, unchanged), goes back to the warehouse by a return (a
stock-in), or is registered as the customer's own (an import). Each asset keeps its history, so a good
transferred away stays in the history of its first owner.

Rules decided here (the seed is silent on them): a terminated account takes no new assets (neither an
import nor a transfer to it); a customer-owned item is not returned to our warehouse (it stays with the
account, the seed says); an asset is transferred to another account of the workspace only, never to the
account that holds it; several assets move together, all or none. Masters and managers act; every staff
user reads.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from creditdesk import audit, clock
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import accounts
from creditdesk.billing import asset_schemas as s
from creditdesk.billing.asset_models import Asset, AssetEvent
from creditdesk.billing.invoice_models import QUANTITY_SCALE, Invoice, InvoiceLine
from creditdesk.billing.models import BillingAccount
from creditdesk.catalog.models import Product
from creditdesk.errors import Conflict, InvalidInput, NotFound
from creditdesk.ids import new_id
from creditdesk.pagination import Page, paginate
from creditdesk.parties.service import require_manager
from creditdesk.repository import one_of

PHYSICAL = "physical_good"


def _event(session: Session, asset: Asset, kind: str, *, actor: Actor, from_account_id: str | None = None,
           to_account_id: str | None = None, stock_in_number: str | None = None, note: str = "") -> AssetEvent:
    event = AssetEvent(id=new_id("aev"), workspace_id=asset.workspace_id, asset_id=asset.id, kind=kind,
                       from_account_id=from_account_id, to_account_id=to_account_id, stock_in_number=stock_in_number,
                       note=note, actor_id=actor.user_id, created_at=clock.now())
    session.add(event)
    return event


def _open_account(session: Session, workspace_id: str, account_id: str, *, field: str) -> BillingAccount:
    account = accounts.get_account(session, workspace_id, account_id)
    if account.status == "terminated":
        raise Conflict(f"Account {account.number} is terminated: it takes no new assets.", code="account_terminated",
                       field=field)
    return account


def _months_after(day, months: int):
    """The same day `months` later (the month's last day when it is shorter: 31 Jan + 1 month = 28/29 Feb)."""
    import calendar
    from datetime import date

    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def acquire_for_posted_invoice(session: Session, invoice: Invoice, *, actor: Actor) -> list[Asset]:
    """The posting hook (billing.invoices.post_invoice): one asset per unit of each physical-good line, owned by
    the invoice's account. Run again, it makes nothing twice (unique line + unit)."""
    rows = session.execute(select(InvoiceLine, Product).join(Product, Product.id == InvoiceLine.product_id).where(
        InvoiceLine.invoice_id == invoice.id, Product.kind == PHYSICAL).order_by(InvoiceLine.position)).all()
    made = []
    now = clock.now()
    posted_on = (clock.aware(invoice.posted_at) or now).date()
    for line, product in rows:
        warranty = _months_after(posted_on, product.warranty_months) if product.warranty_months else None
        have = set(session.scalars(select(Asset.unit_index).where(Asset.invoice_line_id == line.id)))
        for unit in range(line.quantity_milli // QUANTITY_SCALE):
            if unit in have:
                continue
            asset = Asset(id=new_id("ast"), workspace_id=invoice.workspace_id, account_id=invoice.account_id,
                          product_id=product.id, description=line.description or product.name, serial_number=None,
                          ownership="company_sold", status="active", warranty_ends_on=warranty,
                          invoice_line_id=line.id, unit_index=unit, created_at=now, updated_at=now)
            session.add(asset)
            session.flush([asset])
            _event(session, asset, "acquired", actor=actor, to_account_id=invoice.account_id,
                   note=f"Bought on invoice {invoice.number}")
            audit.record(session, actor=actor, action="asset.acquire", object_type="asset", object_id=asset.id,
                         after=snapshot(asset))
            made.append(asset)
    return made


def import_asset(session: Session, data: s.AssetImport, *, actor: Actor) -> Asset:
    """Register an item the customer owns (with the provisioning provider, not bought from us)."""
    require_manager(actor, "import assets")
    account = _open_account(session, actor.workspace_id, data.account_id, field="account_id")
    product_id = None
    if data.product:
        from creditdesk.catalog.service import get_product

        product_id = get_product(session, actor.workspace_id, data.product).id
    now = clock.now()
    asset = Asset(id=new_id("ast"), workspace_id=actor.workspace_id, account_id=account.id, product_id=product_id,
                  description=data.description, serial_number=data.serial_number or None, ownership="customer_owned",
                  status="active", warranty_ends_on=data.warranty_ends_on, created_at=now, updated_at=now)
    session.add(asset)
    session.flush([asset])
    _event(session, asset, "imported", actor=actor, to_account_id=account.id, note=data.note)
    audit.record(session, actor=actor, action="asset.import", object_type="asset", object_id=asset.id,
                 after=snapshot(asset))
    return asset


def _locked_assets(session: Session, workspace_id: str, asset_ids: list[str]) -> list[Asset]:
    if len(set(asset_ids)) != len(asset_ids):
        raise InvalidInput("An asset is named twice.", code="duplicate_asset", field="asset_ids")
    found = {a.id: a for a in session.scalars(select(Asset).where(
        Asset.workspace_id == workspace_id, Asset.id.in_(asset_ids)).order_by(Asset.id).with_for_update())}
    missing = [i for i in asset_ids if i not in found]
    if missing:
        raise NotFound(f"No asset with id {missing[0]!r} in this workspace.", object_id=missing[0])
    return [found[i] for i in asset_ids]


def transfer_assets(session: Session, data: s.AssetTransfer, *, actor: Actor) -> list[Asset]:
    """Transfer ownership to another account: all the assets or none. The warranty moves unchanged; the
    first owner keeps the asset in its history."""
    require_manager(actor, "transfer assets")
    to = _open_account(session, actor.workspace_id, data.to_account_id, field="to_account_id")
    moved = _locked_assets(session, actor.workspace_id, data.asset_ids)
    for asset in moved:
        if asset.status != "active":
            raise Conflict(f"Asset {asset.description!r} was returned: it belongs to no account.",
                           code="asset_returned", object_id=asset.id)
        if asset.account_id == to.id:
            raise InvalidInput(f"Asset {asset.description!r} already belongs to account {to.number}.",
                               code="asset_same_account", field="to_account_id", object_id=asset.id)
    now = clock.now()
    for asset in moved:
        before = snapshot(asset)
        _event(session, asset, "transferred", actor=actor, from_account_id=asset.account_id, to_account_id=to.id,
               note=data.note)
        asset.account_id, asset.updated_at = to.id, now
        audit.record(session, actor=actor, action="asset.transfer", object_type="asset", object_id=asset.id,
                     before=before, after=snapshot(asset))
    return moved


def return_assets(session: Session, data: s.AssetReturn, *, actor: Actor) -> tuple[str, list[Asset]]:
    """Return goods sold to the warehouse: one stock-in for all of them (its number is returned)."""
    require_manager(actor, "return assets")
    returned = _locked_assets(session, actor.workspace_id, data.asset_ids)
    for asset in returned:
        if asset.status != "active":
            raise Conflict(f"Asset {asset.description!r} was already returned.", code="asset_returned",
                           object_id=asset.id)
        if asset.ownership == "customer_owned":
            raise Conflict(f"Asset {asset.description!r} is the customer's own: it stays with the account.",
                           code="asset_customer_owned", object_id=asset.id)
    stock_in = new_id("si")
    now = clock.now()
    for asset in returned:
        before = snapshot(asset)
        _event(session, asset, "returned", actor=actor, from_account_id=asset.account_id, stock_in_number=stock_in,
               note=data.note)
        asset.status, asset.updated_at = "returned", now
        audit.record(session, actor=actor, action="asset.return", object_type="asset", object_id=asset.id,
                     before=before, after=snapshot(asset, stock_in=stock_in))
    return stock_in, returned


def get_asset(session: Session, workspace_id: str, asset_id: str) -> Asset:
    asset = session.scalar(select(Asset).where(Asset.workspace_id == workspace_id, Asset.id == asset_id))
    if asset is None:
        raise NotFound(f"No asset with id {asset_id!r} in this workspace.", object_id=asset_id)
    return asset


def history(session: Session, asset: Asset) -> list[AssetEvent]:
    return list(session.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id).order_by(AssetEvent.id)))


def list_assets(session: Session, *, actor: Actor, account_id: str | None = None,
                status: str | Sequence[str] | None = None,
                owned_before_by: str | None = None, limit: int | None = None, cursor: str | None = None) -> Page:
    """Assets of the workspace; `account_id`: its current assets; `owned_before_by`: the assets an account
    transferred or returned (its asset history)."""
    stmt = select(Asset).where(Asset.workspace_id == actor.workspace_id)
    if account_id:
        stmt = stmt.where(Asset.account_id == account_id, Asset.status == "active")
    if owned_before_by:
        stmt = stmt.where(Asset.id.in_(select(AssetEvent.asset_id).where(
            AssetEvent.workspace_id == actor.workspace_id, AssetEvent.from_account_id == owned_before_by)),
            or_(Asset.account_id != owned_before_by, Asset.status == "returned"))
    if status:
        stmt = stmt.where(one_of(Asset.status, status))
    return paginate(session, stmt, id_column=Asset.id, limit=limit, cursor=cursor)


def asset_out(session: Session, asset: Asset, *, with_history: bool = False) -> s.AssetOut:
    product = session.get(Product, asset.product_id) if asset.product_id else None
    events = None
    if with_history:
        events = [s.AssetEventOut(id=e.id, kind=e.kind, from_account_id=e.from_account_id,
                                  to_account_id=e.to_account_id, stock_in_number=e.stock_in_number, note=e.note,
                                  actor_id=e.actor_id, created_at=clock.aware(e.created_at))
                  for e in history(session, asset)]
    return s.AssetOut(id=asset.id, account_id=asset.account_id, product=product.code if product else None,
                      description=asset.description, serial_number=asset.serial_number, ownership=asset.ownership,
                      status=asset.status, warranty_ends_on=asset.warranty_ends_on,
                      invoice_line_id=asset.invoice_line_id, created_at=clock.aware(asset.created_at),
                      updated_at=clock.aware(asset.updated_at), history=events)
