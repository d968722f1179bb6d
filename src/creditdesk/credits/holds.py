"""Holds: hold in burn order, capture, release, reverse, render; SQL in repository.py (one place to tune it)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock
from creditdesk.audit import Actor, snapshot
from creditdesk.credits import burn, governance, schemas
from creditdesk.credits.consumptions import check_reference, operation_lines, reference, return_to_packs
from creditdesk.credits.errors import AlreadyReversed, HoldExpired, HoldNotPending, InvalidCredits, NothingToReverse
from creditdesk.credits.expiry import after_release, hold_pendings, release
from creditdesk.credits.models import CreditType, Hold
from creditdesk.credits.repository import CAPTURE, HOLD, RELEASE
from creditdesk.credits.credit_types import credit_type, credit_type_by_code
from creditdesk.ids import new_id
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import LedgerTransfer
from creditdesk.ledger.service import Reference, TransferSpec
from creditdesk.repository import get_in_workspace


def create_hold(session: Session, data: schemas.HoldRequest, *, actor: Actor) -> Hold:
    governance.require_consume(actor)
    check_reference(data.reference)
    ct = credit_type_by_code(session, actor.workspace_id, data.credit_type)
    governance.authorize_spend(session, actor, ct, data.context.kind, data.context.id)
    ctx = burn.resolve_context(session, actor.workspace_id, data.context.kind, data.context.id)
    plan = burn.burn(session, ctx, ct, data.amount, data.product_code, allow_partial=False)
    accounts = ledger.lock_accounts(session, [p.ledger_account_id for p, _ in plan])
    now = clock.now()
    hold = Hold(id=new_id("hold"), workspace_id=actor.workspace_id, context_kind=ctx.kind, context_id=ctx.id,
                credit_type_id=ct.id, product_code=data.product_code, amount=data.amount, captured_amount=0,
                status="pending", timeout_at=now + timedelta(seconds=data.timeout_seconds),
                reference_kind=data.reference.kind if data.reference else None,
                reference_id=data.reference.id if data.reference else None,
                reference_url=data.reference.url if data.reference else None, actor_id=actor.user_id,
                created_at=now)
    session.add(hold)
    ledger.post(session, [TransferSpec(p.ledger_account_id, ct.consumed_account_id, take, HOLD,
                                       reference(data.reference)) for p, take in plan],
                workspace_id=actor.workspace_id, operation_id=hold.id, actor_id=actor.user_id, pending=True,
                timeout_at=hold.timeout_at, locked=accounts)
    audit.record(session, actor=actor, action="hold.create", object_type="hold", object_id=hold.id,
                 after=snapshot(hold, lines=[{"pack_id": p.id, "amount": t} for p, t in plan]))
    return hold


def _lock_hold(session: Session, workspace_id: str, hold_id: str):
    hold = get_in_workspace(session, Hold, workspace_id, hold_id)
    pendings = hold_pendings(session, hold)
    accounts = ledger.lock_accounts(session, [t.debit_account_id for t in pendings])
    session.refresh(hold)
    return hold, pendings, accounts


def capture_hold(session: Session, hold_id: str, data: schemas.CaptureRequest, *, actor: Actor) -> Hold:
    """Capture all or part of a hold (in burn order); the rest is released."""
    governance.require_consume(actor)
    hold, pendings, accounts = _lock_hold(session, actor.workspace_id, hold_id)
    governance.authorize_spend(session, actor, credit_type(session, hold.credit_type_id), hold.context_kind,
                               hold.context_id)
    if hold.status != "pending":
        raise HoldNotPending(f"This hold is {hold.status}; only a pending hold can be captured.")
    if clock.now() >= hold.timeout_at:
        raise HoldExpired("This hold timed out; its credits are released.")
    amount = hold.amount if data.amount is None else data.amount
    if amount > hold.amount:
        raise InvalidCredits(f"Cannot capture {amount}: the hold is for {hold.amount}.", code="capture_exceeds_hold")
    before = snapshot(hold)
    ct = session.get(CreditType, hold.credit_type_id)
    left = amount
    released = []
    # Every pending leg of the hold is resolved by one ledger operation: captured in burn order, the rest released.
    op = ledger.Operation(actor.workspace_id, actor_id=actor.user_id)
    for pending in pendings:
        take = min(left, pending.amount)
        if take > 0:
            op.resolve(pending.id, amount=take, code=CAPTURE)
            left -= take
            if take < pending.amount:
                released.append((pending.debit_account_id, pending.amount - take))
        else:
            op.resolve(pending.id, void=True, code=RELEASE)
            released.append((pending.debit_account_id, pending.amount))
    ledger.one_shot(session, op, accounts=accounts)
    after_release(session, actor=actor, ct=ct, hold=hold, released=released, accounts=accounts)
    hold.status = "captured"
    hold.captured_amount = amount
    hold.resolved_at = clock.now()
    audit.record(session, actor=actor, action="hold.capture", object_type="hold", object_id=hold.id,
                 before=before, after=snapshot(hold))
    return hold


def release_hold(session: Session, hold_id: str, *, actor: Actor, timed_out: bool = False) -> Hold:
    if not timed_out:
        governance.require_consume(actor)
    hold, pendings, accounts = _lock_hold(session, actor.workspace_id, hold_id)
    if not timed_out:
        governance.authorize_spend(session, actor, credit_type(session, hold.credit_type_id), hold.context_kind,
                                   hold.context_id)
    if hold.status != "pending":
        raise HoldNotPending(f"This hold is {hold.status}; only a pending hold can be released.")
    release(session, hold, pendings, accounts, actor=actor, timed_out=timed_out)
    return hold


def reverse_hold(session: Session, hold_id: str, *, actor: Actor, reason: str = "") -> Hold:
    """Reverse a captured hold: the captured credits go back to the packs they came from."""
    governance.require_manage_packs(actor, "reverse captured holds")
    hold = get_in_workspace(session, Hold, actor.workspace_id, hold_id, for_update=True)
    ct = session.get(CreditType, hold.credit_type_id)
    governance.authorize_correction(actor, ct, "reverse captured holds")
    if hold.status != "captured":
        raise NothingToReverse("Only a captured hold can be reversed.")
    if hold.reversed_at is not None:
        raise AlreadyReversed("This hold was already reversed.")
    legs = [(t.debit_account_id, t.amount) for t in session.scalars(select(LedgerTransfer).where(
        LedgerTransfer.operation_id == hold.id, LedgerTransfer.code == CAPTURE).order_by(LedgerTransfer.id))]
    before = snapshot(hold)
    return_to_packs(session, actor=actor, ct=ct, operation_id=hold.id, legs=legs,
                    ref=Reference(hold.reference_kind, hold.reference_id, hold.reference_url))
    hold.reversed_at = clock.now()
    audit.record(session, actor=actor, action="hold.reverse", object_type="hold", object_id=hold.id,
                 before=before, after=snapshot(hold, reason=reason))
    return hold


def hold_out(session: Session, hold: Hold) -> schemas.HoldOut:
    ct = credit_type(session, hold.credit_type_id)
    return schemas.HoldOut(
        id=hold.id, context={"kind": hold.context_kind, "id": hold.context_id}, credit_type=ct.code,
        product_code=hold.product_code, amount=hold.amount, captured_amount=hold.captured_amount, status=hold.status,
        timeout_at=hold.timeout_at, reference=schemas.ReferenceOut(kind=hold.reference_kind, id=hold.reference_id,
                                                                   url=hold.reference_url),
        lines=operation_lines(session, hold.id, HOLD), created_at=hold.created_at, resolved_at=hold.resolved_at,
        reversed_at=hold.reversed_at)


def list_holds(session: Session, *, actor: Actor, limit=None, cursor=None, status=None, context_kind=None,
               context_id=None, credit_type_code=None, pack_id=None, created_from=None, created_to=None):
    """Holds of the workspace the actor may see, newest first. `status` is a list (any of them);
    `pack_id` keeps the holds that reserved credits of that pack; dates compare created_at, the
    `from` bound inclusive and the `to` bound exclusive."""
    from creditdesk.pagination import paginate

    ws = actor.workspace_id
    stmt = select(Hold).where(Hold.workspace_id == ws)
    visible = governance.visible_clause(session, actor, Hold.credit_type_id, Hold.context_kind, Hold.context_id)
    if visible is not None:
        stmt = stmt.where(visible)
    if status:
        stmt = stmt.where(Hold.status.in_(status))
    if context_kind:
        stmt = stmt.where(Hold.context_kind == context_kind)
    if context_id:
        stmt = stmt.where(Hold.context_id == context_id)
    if credit_type_code:
        stmt = stmt.where(Hold.credit_type_id == credit_type_by_code(session, ws, credit_type_code).id)
    if pack_id:
        from creditdesk.credits.reads import get_visible_pack
        from creditdesk.credits.repository import operations_taking_from

        pack = get_visible_pack(session, actor=actor, pack_id=pack_id)
        stmt = stmt.where(Hold.id.in_(operations_taking_from(pack, HOLD)))
    if created_from:
        stmt = stmt.where(Hold.created_at >= clock.aware(created_from))
    if created_to:
        stmt = stmt.where(Hold.created_at < clock.aware(created_to))
    return paginate(session, stmt, id_column=Hold.id, limit=limit, cursor=cursor, descending=True)
