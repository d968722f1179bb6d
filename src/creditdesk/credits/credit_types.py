"""Credit types: create, change, look up; SQL (credit_type_ref) in repository.py (one place to tune it)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock
from creditdesk.audit import Actor, snapshot
from creditdesk.credits import schemas
from creditdesk.credits.errors import InvalidCredits, unknown_credit_type
from creditdesk.credits.models import CreditType
from creditdesk.errors import NotPermitted
from creditdesk.ids import new_id
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import NO_CACHE


def create_credit_type(session: Session, data: schemas.CreditTypeCreate, *, actor: Actor) -> CreditType:
    if not actor.is_master:
        raise NotPermitted("Only master users may create credit types.")
    if session.scalar(select(CreditType.id).where(CreditType.workspace_id == actor.workspace_id,
                                                  CreditType.code == data.code)):
        raise InvalidCredits(f"Credit type {data.code!r} already exists.", code="credit_type_exists")
    ws = actor.workspace_id
    sinks = {}
    for kind in ("issuance", "consumed", "breakage"):
        sinks[kind] = ledger.open_account(session, workspace_id=ws, unit=data.code, code=kind, flags=NO_CACHE,
                                          system_key=f"{kind}:{data.code}")
    now = clock.now()
    ct = CreditType(id=new_id("ct"), workspace_id=ws, code=data.code, name=data.name, scale=data.scale,
                    required_permission=data.required_permission,
                    issuance_account_id=sinks["issuance"].id, consumed_account_id=sinks["consumed"].id,
                    breakage_account_id=sinks["breakage"].id, created_at=now, updated_at=now)
    session.add(ct)
    session.flush()
    audit.record(session, actor=actor, action="credit_type.create", object_type="credit_type", object_id=ct.id,
                 after=snapshot(ct))
    return ct


def update_credit_type(session: Session, code: str, data: schemas.CreditTypeUpdate, *, actor: Actor) -> CreditType:
    if not actor.is_master:
        raise NotPermitted("Only master users may change credit types.")
    ct = credit_type_by_code(session, actor.workspace_id, code)
    before = snapshot(ct)
    ct.name = data.name
    ct.updated_at = clock.now()
    audit.record(session, actor=actor, action="credit_type.update", object_type="credit_type", object_id=ct.id,
                 before=before, after=snapshot(ct))
    return ct


def credit_type_by_code(session: Session, workspace_id: str, code: str) -> CreditType:
    ct = session.scalar(select(CreditType).where(CreditType.workspace_id == workspace_id, CreditType.code == code))
    if ct is None:
        raise unknown_credit_type(code)
    # The session's identity map holds objects weakly: keep this one for the rest of the transaction,
    # so rendering the answer (consumption_out, hold_out) finds it instead of selecting it again.
    session.info.setdefault("credit_types", {})[ct.id] = ct
    return ct


def credit_type(session: Session, credit_type_id: str) -> CreditType:
    ct = session.info.get("credit_types", {}).get(credit_type_id)
    return ct if ct is not None else session.get(CreditType, credit_type_id)


def list_credit_types(session: Session, *, actor: Actor) -> list[CreditType]:
    return list(session.scalars(select(CreditType).where(CreditType.workspace_id == actor.workspace_id)
                                .order_by(CreditType.code)))
