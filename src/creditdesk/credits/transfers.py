"""Transfers between holders and a pack's change of holder (a transfer); SQL in repository.py (one place)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, rawsql, webhooks
from creditdesk.audit import Actor, snapshot
from creditdesk.credits import burn, governance, packs, repository, schemas
from creditdesk.credits.errors import InsufficientCredits, InvalidCredits, NothingToMove, PackNotActive
from creditdesk.credits.models import CreditTransfer, CreditType, Pack
from creditdesk.credits.packs import HolderRef, get_pack, pack_status, resolve_holder
from creditdesk.credits.repository import PACK_COLUMNS, TRANSFER, credit_type_ref
from creditdesk.credits.credit_types import credit_type
from creditdesk.errors import NotFound
from creditdesk.ids import new_id
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import DEBITS_MUST_NOT_EXCEED_CREDITS, LedgerAccount
from creditdesk.ledger.service import Reference, TransferSpec


@dataclass
class TransferResult:
    transfer: CreditTransfer
    lines: list[dict] = field(default_factory=list)


def transfer_credits(session: Session, data: schemas.TransferRequest, *, actor: Actor,
                     authorize=None) -> TransferResult:
    """Move credits to another holder. Each slice taken from a source pack becomes a pack on the
    receiver with the same expiry, priority, products, cost per credit and paid/free nature.

    Written with SQL text (creditdesk.rawsql), as consume is; the returned transfer is not in the session."""
    ws = actor.workspace_id
    rawsql.flush_pending(session)
    ct = credit_type_ref(session, ws, data.credit_type)
    to, to_customer_id = resolve_holder(session, ws, data.to.kind, data.to.id)
    now = clock.now()
    if data.from_pack_id:
        sql, params = repository.SOURCE_BY_ID_SQL, {"workspace_id": ws, "id": data.from_pack_id}
        candidates = repository.source_packs(session, sql, params)
        if not candidates:
            raise NotFound(f"No pack with id {data.from_pack_id!r} in this workspace.", object_id=data.from_pack_id)
        if candidates[0].credit_type_id != ct.id:
            raise InvalidCredits("The source pack holds another credit type.", code="credit_type_mismatch")
        source = HolderRef(candidates[0].holder_kind, candidates[0].holder_id)
    elif data.from_ is not None:
        source, _ = resolve_holder(session, ws, data.from_.kind, data.from_.id)
        sql, params = repository.SOURCE_BY_HOLDER_SQL, {
            "workspace_id": ws, "credit_type_id": ct.id, "holder_kind": source.kind, "holder_id": source.id,
            "now": repository.bind_now(session, now)}
        candidates = repository.source_packs(session, sql, params)
    else:
        raise InvalidCredits("Say where the credits come from: from (a holder) or from_pack_id.",
                             code="transfer_source_required")
    if (source.kind, source.id) == (to.kind, to.id):
        raise InvalidCredits("Source and destination are the same holder.", code="same_holder")
    if authorize is not None:  # the caller's own rules (SMS transfers: governance.check_transfer)
        authorize(session, actor, source, to, ct)
    else:
        governance.authorize_transfer(session, actor, ct, source, to)
    if candidates and rawsql.dialect_name(session) != "sqlite":
        # PostgreSQL: lock the accounts (id order), then read the packs again under the lock. (SQLite's
        # write transaction already excludes every other writer.)
        ledger.account_totals(session, [p.ledger_account_id for p in candidates], lock=True)
        candidates = repository.source_packs(session, sql, params)
    live = [p for p in candidates if p.status == "active" and (p.holder_kind, p.holder_id) == (source.kind, source.id)
            and (p.expires_at is None or p.expires_at > now)]
    if data.from_pack_id and not live:
        raise PackNotActive("The source pack is not active.")
    plan = burn.plan(sorted(live, key=burn.burn_key), data.amount)
    moved = sum(t for _, t in plan)
    if moved < data.amount:
        from creditdesk.amounts import format_amount

        # In the credit type's unit and name (the stable fields carry the integers); read only on this refusal.
        row = session.get(CreditType, ct.id)
        raise InsufficientCredits(f"Not enough {row.name} to transfer: {format_amount(moved, row.scale)} "
                                  f"available, {format_amount(data.amount, row.scale)} requested.", available=moved,
                                  requested=data.amount)
    xfer = CreditTransfer(id=new_id("xfer"), workspace_id=ws, credit_type_id=ct.id, from_holder_kind=source.kind,
                          from_holder_id=source.id, to_holder_kind=to.kind, to_holder_id=to.id,
                          from_pack_id=data.from_pack_id, amount=data.amount, memo=data.memo, actor_id=actor.user_id,
                          created_at=now)
    rawsql.insert(session, CreditTransfer.__table__, {c.key: getattr(xfer, c.key) for c in CreditTransfer.__table__.columns})
    result = TransferResult(xfer)
    accounts = {p.ledger_account_id: p.account for p, _ in plan}
    # One ledger operation opens each new pack's account and moves the credits into it; the packs are
    # inserted once their accounts exist.
    op = ledger.Operation(ws, operation_id=xfer.id, actor_id=actor.user_id)
    new_packs = []
    for pack, take in plan:
        # Cost per credit is kept: the new pack's price is its share of the original price.
        price = pack.price_paid * take // pack.quantity if pack.quantity else 0
        account_id = op.open_account(unit=ct.code, code="pack", flags=DEBITS_MUST_NOT_EXCEED_CREDITS, at=now)
        new_pack = packs.new_pack(schemas.PackCreate(
            holder=schemas.Holder(kind=to.kind, id=to.id if to.kind != "workspace" else None),
            credit_type=ct.code, quantity=take, name=pack.name, price_paid=price, currency=pack.currency,
            is_paid=pack.is_paid, source="transfer", external_ref=pack.external_ref,
            relationship_manager_id=pack.relationship_manager_id, project_manager_id=pack.project_manager_id,
            priority=pack.priority, product_codes=list(pack.product_codes or []), status_label=pack.status_label),
            ct, to, to_customer_id, pack.purchased_at, pack.starts_at, pack.expires_at, pack.id, xfer.id, now,
            account_id)
        new_pack.expiry_months = pack.expiry_months
        new_packs.append(new_pack)
        audit.record(session, actor=actor, action="pack.create", object_type="pack", object_id=new_pack.id,
                     after=snapshot(new_pack))
        webhooks.emit(session, ws, "pack.created", lambda: webhooks.pack_data(new_pack))
        op.post(TransferSpec(pack.ledger_account_id, account_id, take, TRANSFER, Reference("credit_transfer", xfer.id)))
        result.lines.append({"from_pack_id": pack.id, "to_pack_id": new_pack.id, "amount": take})
    ledger.one_shot(session, op, accounts=accounts)
    for new_pack in new_packs:
        rawsql.insert(session, Pack.__table__, {c.key: getattr(new_pack, c.key) for c in PACK_COLUMNS})
    packs.mark_depleted(session, [(p.id, p.account) for p, _ in plan], now)
    audit.record(session, actor=actor, action="credit_transfer.create", object_type="credit_transfer",
                 object_id=xfer.id, after=snapshot(xfer, lines=result.lines))
    webhooks.emit(session, ws, "transfer.created",
                  lambda: transfer_out(session, xfer, result.lines).model_dump(mode="json"))
    return result


def transfer_lines(session: Session, xfer: CreditTransfer) -> list[dict]:
    rows = session.execute(select(Pack.origin_pack_id, Pack.id, Pack.quantity).where(
        Pack.workspace_id == xfer.workspace_id, Pack.credit_transfer_id == xfer.id).order_by(Pack.id)).all()
    return [{"from_pack_id": o, "to_pack_id": p, "amount": q} for o, p, q in rows]


def transfer_out(session: Session, xfer: CreditTransfer, lines: list[dict] | None = None) -> schemas.TransferOut:
    code = (session.info.get("credit_type_codes", {}).get(xfer.credit_type_id)
            or credit_type(session, xfer.credit_type_id).code)
    return schemas.TransferOut(
        id=xfer.id, credit_type=code, from_={"kind": xfer.from_holder_kind, "id": xfer.from_holder_id,
                                                "pack_id": xfer.from_pack_id},
        to={"kind": xfer.to_holder_kind, "id": xfer.to_holder_id}, amount=xfer.amount, memo=xfer.memo,
        lines=lines if lines is not None else transfer_lines(session, xfer), created_at=xfer.created_at)


def change_holder(session: Session, pack_id: str, data: schemas.ChangeHolder, *, actor: Actor) -> Pack:
    """Give what is left of a pack to another holder (user <-> user <-> office <-> pool). Returns the new pack.

    A change of holder is a transfer, at this moment, of the pack's available credits to a new pack of the
    new holder (origin_pack_id: this pack) that keeps the expiry, priority, products, cost per credit and
    paid/free nature: an out/in pair in both histories and in the SMS logs. The pack itself and every line
    of its history stay with the holder it had then (nothing is re-attributed); credits on hold stay with
    their hold. The move follows the transfer rules of the credit type (governance.authorize_transfer)."""
    governance.require_manage_packs(actor, "change a pack's holder")
    pack = get_pack(session, actor.workspace_id, pack_id, for_update=True, actor=actor)
    if pack.status == "voided":
        raise PackNotActive("A voided pack cannot change holder.")
    holder, _ = resolve_holder(session, actor.workspace_id, data.holder.kind, data.holder.id)
    if (holder.kind, holder.id) == (pack.holder_kind, pack.holder_id):
        raise InvalidCredits("The pack already belongs to this holder.", code="same_holder")
    ct = session.get(CreditType, pack.credit_type_id)
    governance.authorize_transfer(session, actor, ct, HolderRef(pack.holder_kind, pack.holder_id), holder,
                                  what="change a pack's holder")
    if pack_status(pack, clock.now()) != "active":
        raise PackNotActive(f"This pack is {pack_status(pack, clock.now())}: there is nothing left to give to "
                            "another holder.")
    available = session.get(LedgerAccount, pack.ledger_account_id).available
    if available <= 0:
        raise NothingToMove("Nothing of this pack is available to move: its credits are used up or on hold.")
    before = {"holder_kind": pack.holder_kind, "holder_id": pack.holder_id}
    result = transfer_credits(session, schemas.TransferRequest.model_validate({
        "from_pack_id": pack.id, "to": {"kind": holder.kind, "id": holder.id if holder.kind != "workspace" else None},
        "credit_type": ct.code, "amount": available,
        "memo": f"Change of holder: {data.reason}" if data.reason else "Change of holder"}),
        actor=actor, authorize=lambda *_: None)  # authorized above, with the change-holder wording
    new_pack = session.get(Pack, result.lines[0]["to_pack_id"])
    audit.record(session, actor=actor, action="pack.change_holder", object_type="pack", object_id=pack.id,
                 before=before, after={"holder_kind": holder.kind, "holder_id": holder.id, "reason": data.reason,
                                       "balance_moved": available, "to_pack_id": new_pack.id,
                                       "credit_transfer_id": result.transfer.id})
    return new_pack


def list_transfers(session: Session, *, actor: Actor, limit=None, cursor=None, holder_kind=None, holder_id=None,
                   pack_id=None, credit_type_code=None, created_from=None, created_to=None):
    """Transfers the actor may see (either side in their scope), newest first. A holder filter matches
    either side; `pack_id` matches the transfer that took credits from the pack or made it; dates
    compare created_at, `from` inclusive, `to` exclusive."""
    from sqlalchemy import and_, or_

    from creditdesk.pagination import paginate

    ws = actor.workspace_id
    T = CreditTransfer
    stmt = select(T).where(T.workspace_id == ws)
    sent = governance.visible_clause(session, actor, T.credit_type_id, T.from_holder_kind, T.from_holder_id)
    if sent is not None:
        received = governance.visible_clause(session, actor, T.credit_type_id, T.to_holder_kind, T.to_holder_id)
        stmt = stmt.where(or_(sent, received))
    if holder_kind:
        side_from = T.from_holder_kind == holder_kind
        side_to = T.to_holder_kind == holder_kind
        if holder_id:
            side_from, side_to = and_(side_from, T.from_holder_id == holder_id), and_(side_to, T.to_holder_id == holder_id)
        stmt = stmt.where(or_(side_from, side_to))
    if pack_id:
        from creditdesk.credits.reads import get_visible_pack

        pack = get_visible_pack(session, actor=actor, pack_id=pack_id)
        made_from = select(Pack.credit_transfer_id).where(Pack.workspace_id == ws, Pack.origin_pack_id == pack.id)
        stmt = stmt.where(or_(T.id.in_(made_from), T.id == pack.credit_transfer_id))
    if credit_type_code:
        stmt = stmt.where(T.credit_type_id == credit_type_ref(session, ws, credit_type_code).id)
    if created_from:
        stmt = stmt.where(T.created_at >= clock.aware(created_from))
    if created_to:
        stmt = stmt.where(T.created_at < clock.aware(created_to))
    return paginate(session, stmt, id_column=T.id, limit=limit, cursor=cursor, descending=True)
