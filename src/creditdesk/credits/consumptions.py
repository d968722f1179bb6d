"""Consumptions: consume in burn order, render, reverse, list; SQL in repository.py (one place to tune it)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, webhooks
from creditdesk.audit import Actor, snapshot
from creditdesk.credits import governance, schemas
from creditdesk.credits.errors import AlreadyReversed
from creditdesk.credits.models import Consumption, CreditType, Pack
from creditdesk.credits.packs import refresh_status
from creditdesk.credits.repository import CONSUME, EXPIRE, REVERSAL, VOID
from creditdesk.credits.credit_types import credit_type
from creditdesk.errors import InvalidInput, NotPermitted
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import LedgerTransfer
from creditdesk.ledger.service import Reference, TransferSpec
from creditdesk.repository import get_in_workspace


def check_reference(ref: schemas.ReferenceIn | None) -> None:
    """A reference's link is stored to be rendered as a link: absolute http(s) only (never javascript:)."""
    if ref is not None and ref.url is not None and not schemas.is_http_url(ref.url):
        raise InvalidInput("reference.url must be an absolute http:// or https:// URL.", code="invalid_url",
                           field="reference.url")


def reference(ref: schemas.ReferenceIn | None) -> Reference:
    if ref is None:
        return Reference()
    return Reference(ref.kind, ref.id, ref.url)


def consume(session: Session, data: schemas.ConsumeRequest, *, actor: Actor) -> schemas.ConsumptionOut:
    """Consume in burn order: a batch of one (credits.consume_engine, which the API also runs for many
    requests at once). Returns the consumption as the API shows it; raises the error refusing it."""
    from creditdesk.credits.consume_engine import consume_many  # it builds on this module

    result = consume_many(session, [(actor, data)])[0]
    if isinstance(result, Exception):
        raise result
    return result


def operation_lines(session: Session, operation_id: str, code: str) -> list[dict]:
    """Which packs paid for an operation, and how much (net of nothing: the original legs)."""
    known = session.info.get("operation_lines", {}).get((operation_id, code))
    if known is not None:
        return [dict(line) for line in known]
    rows = session.execute(
        select(Pack.id, LedgerTransfer.amount).join(Pack, Pack.ledger_account_id == LedgerTransfer.debit_account_id)
        .where(LedgerTransfer.operation_id == operation_id, LedgerTransfer.code == code)
        .order_by(LedgerTransfer.id)).all()
    return [{"pack_id": pid, "amount": amount} for pid, amount in rows]


def consumption_out(session: Session, c: Consumption) -> schemas.ConsumptionOut:
    code = (session.info.get("credit_type_codes", {}).get(c.credit_type_id)
            or credit_type(session, c.credit_type_id).code)
    return schemas.ConsumptionOut(
        id=c.id, context={"kind": c.context_kind, "id": c.context_id}, credit_type=code,
        product_code=c.product_code, amount_requested=c.amount_requested, amount=c.amount,
        allow_partial=c.allow_partial, reference=schemas.ReferenceOut(kind=c.reference_kind, id=c.reference_id,
                                                                      url=c.reference_url),
        status=c.status, lines=operation_lines(session, c.id, CONSUME), reversed_at=c.reversed_at,
        created_at=c.created_at)


def return_to_packs(session: Session, *, actor: Actor, ct: CreditType, operation_id: str,
                    legs: list[tuple[str, int]], ref: Reference) -> None:
    """Send credits back from `consumed` to the packs they came from; expired or voided packs pass
    them straight on to breakage (recorded as such)."""
    packs = {p.ledger_account_id: p for p in session.scalars(select(Pack).where(
        Pack.ledger_account_id.in_([a for a, _ in legs])))}
    accounts = ledger.lock_accounts(session, packs)
    for p in session.scalars(select(Pack).where(Pack.id.in_([p.id for p in packs.values()]))
                             .execution_options(populate_existing=True)):
        packs[p.ledger_account_id] = p
    ledger.post(session, [TransferSpec(ct.consumed_account_id, acc, amount, REVERSAL, ref) for acc, amount in legs],
                workspace_id=actor.workspace_id, operation_id=operation_id, actor_id=actor.user_id, locked=accounts)
    now = clock.now()
    breakage = []
    for acc, amount in legs:
        pack = packs[acc]
        dead = pack.status in ("expired", "voided") or (pack.expires_at is not None and pack.expires_at <= now)
        if not dead:
            continue
        breakage.append(TransferSpec(acc, ct.breakage_account_id, amount,
                                     EXPIRE if pack.status != "voided" else VOID, ref))
        if pack.status == "depleted":
            # It was empty when its expiry came, so the job never expired it; the credits now passing
            # through it to breakage make it expired. (An active pack past its expiry keeps its own rest
            # for the job, which will expire it.)
            audit.record(session, actor=Actor.system(pack.workspace_id), action="pack.expire",
                         object_type="pack", object_id=pack.id, before={"status": pack.status},
                         after={"status": "expired", "breakage": amount, "held": 0})
            pack.status = "expired"
            pack.updated_at = now
            webhooks.emit(session, pack.workspace_id, "pack.expired", {"id": pack.id, "breakage": amount, "held": 0})
    if breakage:
        ledger.post(session, breakage, workspace_id=actor.workspace_id, operation_id=operation_id,
                    actor_id=actor.user_id, locked=accounts)
    for pack in packs.values():
        refresh_status(pack, accounts[pack.ledger_account_id])


def reverse_consumption(session: Session, consumption_id: str, *, actor: Actor, reason: str = "") -> Consumption:
    governance.require_manage_packs(actor, "reverse consumptions")
    c = get_in_workspace(session, Consumption, actor.workspace_id, consumption_id, for_update=True)
    ct = session.get(CreditType, c.credit_type_id)
    governance.authorize_correction(actor, ct, "reverse consumptions")
    return _reverse(session, c, ct, actor=actor, reason=reason)


def reverse_document_consumption(session: Session, consumption_id: str, *, actor: Actor, reference_kind: str,
                                 reason: str = "") -> Consumption:
    """Reverse a consumption made for a document that is being undone by its own service (an invoice line
    whose draft invoice is voided, or whose credits are taken off): that service authorized the undo by
    its rules, so manage_packs is not asked. Only a consumption referencing `reference_kind` qualifies."""
    c = get_in_workspace(session, Consumption, actor.workspace_id, consumption_id, for_update=True)
    if c.reference_kind != reference_kind:
        raise NotPermitted(f"This consumption was not made for a {reference_kind}.")
    return _reverse(session, c, session.get(CreditType, c.credit_type_id), actor=actor, reason=reason)


def _reverse(session: Session, c: Consumption, ct: CreditType, *, actor: Actor, reason: str) -> Consumption:
    if c.status == "reversed":
        raise AlreadyReversed("This consumption was already reversed.")
    legs = [(t.debit_account_id, t.amount) for t in session.scalars(select(LedgerTransfer).where(
        LedgerTransfer.operation_id == c.id, LedgerTransfer.code == CONSUME).order_by(LedgerTransfer.id))]
    before = snapshot(c)
    return_to_packs(session, actor=actor, ct=ct, operation_id=c.id, legs=legs,
                    ref=Reference(c.reference_kind, c.reference_id, c.reference_url))
    c.status = "reversed"
    c.reversed_at = clock.now()
    audit.record(session, actor=actor, action="consumption.reverse", object_type="consumption", object_id=c.id,
                 before=before, after=snapshot(c, reason=reason))
    webhooks.emit(session, c.workspace_id, "consumption.reversed",
                  lambda: {**consumption_out(session, c).model_dump(mode="json"), "reason": reason})
    return c


def list_consumptions(session: Session, *, actor: Actor, limit=None, cursor=None, context_kind=None,
                      context_id=None, reference_kind=None, reference_id=None, pack_id=None,
                      created_from=None, created_to=None):
    from creditdesk.pagination import paginate

    stmt = select(Consumption).where(Consumption.workspace_id == actor.workspace_id)
    visible = governance.visible_clause(session, actor, Consumption.credit_type_id, Consumption.context_kind,
                                        Consumption.context_id)
    if visible is not None:
        stmt = stmt.where(visible)
    if context_kind:
        stmt = stmt.where(Consumption.context_kind == context_kind)
    if context_id:
        stmt = stmt.where(Consumption.context_id == context_id)
    if reference_kind:
        stmt = stmt.where(Consumption.reference_kind == reference_kind)
    if reference_id:
        stmt = stmt.where(Consumption.reference_id == reference_id)
    if pack_id:
        # The consumptions that took credits from this pack: their consume legs debit its account.
        from creditdesk.credits.reads import get_visible_pack
        from creditdesk.credits.repository import operations_taking_from

        pack = get_visible_pack(session, actor=actor, pack_id=pack_id)
        stmt = stmt.where(Consumption.id.in_(operations_taking_from(pack, CONSUME)))
    if created_from:
        stmt = stmt.where(Consumption.created_at >= clock.aware(created_from))
    if created_to:
        stmt = stmt.where(Consumption.created_at < clock.aware(created_to))
    return paginate(session, stmt, id_column=Consumption.id, limit=limit, cursor=cursor, descending=True)
