"""Credits: credit types, packs, consumption in burn order, holds, reversals, transfers, expiry.

Burn order (documented in the README): priority (smaller first), then soonest expiry (packs that
never expire last), then free before paid, then oldest (created first).

Locking protocol: the ledger account of a pack guards the pack. Anything that changes a pack's
balance, status or holder first locks its ledger account (`ledger.lock_accounts`, id order), then
re-reads the pack. So two consumptions never see the same balance, and a void or a holder change
cannot slip between a consumption's check and its write.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from types import SimpleNamespace
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from creditdesk import audit, clock, rawsql
from creditdesk.audit import Actor, snapshot
from creditdesk.credits import governance, schemas
from creditdesk.credits.errors import (
    AlreadyReversed,
    CreditsFrozen,
    HoldExpired,
    HoldNotPending,
    InsufficientCredits,
    InvalidCredits,
    NothingToMove,
    NothingToReverse,
    PackNotActive,
)
from creditdesk.credits.models import Consumption, CreditTransfer, CreditType, Hold, Pack, Project, ProjectContact
from creditdesk.errors import Conflict, InvalidInput, NotFound, NotPermitted
from creditdesk.ids import new_id
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import (
    DEBITS_MUST_NOT_EXCEED_CREDITS,
    NO_CACHE,
    PENDING,
    LedgerAccount,
    LedgerTransfer,
)
from creditdesk.ledger.service import Reference, TransferSpec
from creditdesk.parties.models import Customer, Office, User
from creditdesk.repository import get_in_workspace

# Ledger transfer codes (why credits moved).
GRANT, CONSUME, HOLD, CAPTURE, RELEASE, REVERSAL, TRANSFER, EXPIRE, VOID = (
    "grant", "consume", "hold", "capture", "release", "reversal", "transfer", "expire", "void")


# --- permissions: credits/governance.py (one place; the API, back office, CLI and import come through
# here). The generic checks stay importable from this module, as callers always had them.
can_manage_packs = governance.can_manage_packs
require_manage_packs = governance.require_manage_packs
require_grant = governance.require_grant
require_consume = governance.require_consume


# --- credit types --------------------------------------------------------------------------------

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


def _unknown_credit_type(code: str) -> InvalidCredits:
    return InvalidCredits(f"Unknown credit type {code!r}. Create it first (POST /v1/credit-types).",
                          code="unknown_credit_type")


def credit_type_by_code(session: Session, workspace_id: str, code: str) -> CreditType:
    ct = session.scalar(select(CreditType).where(CreditType.workspace_id == workspace_id, CreditType.code == code))
    if ct is None:
        raise _unknown_credit_type(code)
    # The session's identity map holds objects weakly: keep this one for the rest of the transaction,
    # so rendering the answer (consumption_out, hold_out) finds it instead of selecting it again.
    session.info.setdefault("credit_types", {})[ct.id] = ct
    return ct


def _credit_type(session: Session, credit_type_id: str) -> CreditType:
    ct = session.info.get("credit_types", {}).get(credit_type_id)
    return ct if ct is not None else session.get(CreditType, credit_type_id)


def list_credit_types(session: Session, *, actor: Actor) -> list[CreditType]:
    return list(session.scalars(select(CreditType).where(CreditType.workspace_id == actor.workspace_id)
                                .order_by(CreditType.code)))


# --- holders -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HolderRef:
    kind: str
    id: str

    def as_dict(self) -> dict:
        return {"kind": self.kind, "id": self.id}


_OFFICE_SQL = "SELECT id, customer_id FROM offices WHERE id = :id AND workspace_id = :workspace_id"


def resolve_holder(session: Session, workspace_id: str, kind: str, holder_id: str | None) -> tuple[HolderRef, str | None]:
    """Check the holder exists in this workspace; return it with the customer it belongs to."""
    if kind == "workspace":
        if holder_id not in (None, workspace_id):
            raise NotFound("The workspace pool is this workspace's own; give no id.")
        return HolderRef("workspace", workspace_id), None
    if not holder_id:
        raise InvalidCredits(f"A {kind} holder needs an id.", code="holder_id_required")
    if kind == "office":
        # SQL text: every consumption by an office asks this (creditdesk.rawsql).
        found = rawsql.rows(session, _OFFICE_SQL, {"id": holder_id, "workspace_id": workspace_id})
        if not found:
            raise NotFound(f"No office with id {holder_id!r} in this workspace.", object_id=holder_id)
        return HolderRef("office", found[0][0]), found[0][1]
    if kind == "user":
        user = get_in_workspace(session, User, workspace_id, holder_id)
        return HolderRef("user", user.id), _customer_of_user(session, user)
    if kind == "customer":
        customer = get_in_workspace(session, Customer, workspace_id, holder_id)
        return HolderRef("customer", customer.id), customer.id
    raise InvalidCredits(f"Unknown holder kind {kind!r}.", code="invalid_holder_kind")


def _customer_of_user(session: Session, user: User) -> str | None:
    if not user.primary_office_id:
        return None
    return session.scalar(select(Office.customer_id).where(Office.id == user.primary_office_id))


# --- packs ---------------------------------------------------------------------------------------

def add_months(moment: datetime, months: int) -> datetime:
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def grant_pack(session: Session, data: schemas.PackCreate, *, actor: Actor, internal_key: str | None = None,
               purchase_id: str | None = None) -> Pack:
    """Create a pack and fund it: a ledger transfer from issuance to its account.

    `data.idempotency_key` is the user's key: the same request under it answers with the pack it made,
    another request is refused (idempotency_key_conflict, naming that pack). Internal callers give
    `internal_key` instead (the importer's content-derived keys), kept in a column of its own that no
    request can write. `purchase_id` is given by the SMS purchase flow only, once the purchase is paid:
    its pack (source purchase, keyed by the purchase) is the only way credits are bought."""
    if purchase_id is None:
        governance.require_grant(actor)
    else:
        if data.source != "purchase" or data.external_ref != purchase_id or data.idempotency_key is not None:
            raise ValueError("a purchase's pack has the source purchase and the purchase as external_ref")
        internal_key = f"sms_purchase:{purchase_id}"
    ws = actor.workspace_id
    ct = credit_type_by_code(session, ws, data.credit_type)
    holder, customer_id = resolve_holder(session, ws, data.holder.kind, data.holder.id)
    governance.authorize_grant(session, actor, ct, holder, data, paid_purchase=purchase_id is not None)
    existing = _pack_by_key(session, ws, data, internal_key, ct, holder)
    if existing is not None:
        return existing
    for user_id in (data.relationship_manager_id, data.project_manager_id):
        if user_id:
            get_in_workspace(session, User, ws, user_id)
    now = clock.now()
    purchased_at = clock.aware(data.purchased_at) or now
    starts_at = clock.aware(data.starts_at) or purchased_at
    if data.expires_at and data.expiry_months:
        raise InvalidCredits("Give either expires_at or expiry_months, not both.", code="expiry_ambiguous")
    expires_at = clock.aware(data.expires_at)
    if data.expiry_months:
        try:
            expires_at = add_months(purchased_at, data.expiry_months)
        except ValueError:  # past year 9999
            raise InvalidCredits("The expiry date would be past the year 9999; give a nearer date.",
                                 code="expiry_out_of_range") from None
    if expires_at is not None and expires_at <= starts_at:
        raise InvalidCredits("The pack would expire before it starts.", code="expiry_before_start")
    if data.price_paid and not data.currency:
        raise InvalidCredits("A price paid needs its currency.", code="currency_required")
    if data.idempotency_key or internal_key:
        # Two grants with one key at once (PostgreSQL): the second waits on the unique key, then fails
        # on it. Insert under a savepoint, and on that failure answer as if the first had been seen.
        session.flush()
        try:
            with session.begin_nested():
                account, pack = _insert_pack(session, data, ct, holder, customer_id, purchased_at, starts_at,
                                             expires_at, now, internal_key)
        except IntegrityError:
            existing = _pack_by_key(session, ws, data, internal_key, ct, holder)
            if existing is None:
                raise
            return existing
    else:
        account, pack = _insert_pack(session, data, ct, holder, customer_id, purchased_at, starts_at, expires_at,
                                     now, internal_key)
    ledger.post(session, [TransferSpec(ct.issuance_account_id, account.id, data.quantity, GRANT,
                                       Reference("pack", pack.id))],
                workspace_id=ws, operation_id=pack.id, actor_id=actor.user_id, locked={account.id: account})
    audit.record(session, actor=actor, action="pack.create", object_type="pack", object_id=pack.id,
                 after=snapshot(pack))
    return pack


def _pack_by_key(session: Session, workspace_id: str, data: schemas.PackCreate, internal_key: str | None,
                 ct: CreditType, holder: HolderRef) -> Pack | None:
    """The pack already granted under this grant's key, if any. An internal key is its caller's own
    (derived from what it grants); a user key reused for another request is a conflict, never the
    answer of another pack."""
    if internal_key is not None:
        found = session.scalar(select(Pack).where(Pack.workspace_id == workspace_id,
                                                  Pack.internal_key == internal_key))
        if found is not None or not data.idempotency_key:
            return found
    if not data.idempotency_key:
        return None
    found = session.scalar(select(Pack).where(Pack.workspace_id == workspace_id,
                                              Pack.idempotency_key == data.idempotency_key))
    if found is None:
        return None
    differ = grant_differences(session, found, data, ct, holder)
    if differ:
        raise Conflict(f"The idempotency_key {data.idempotency_key!r} was used for pack {found.id}, granted with "
                       f"other values ({', '.join(differ)}). Use a new key for a new pack.",
                       code="idempotency_key_conflict", pack_id=found.id, fields=differ)
    return found


def grant_differences(session: Session, pack: Pack, data: schemas.PackCreate, ct, holder: HolderRef) -> list[str]:
    """The fields in which a grant request differs from the one that made `pack`, as its pack.create audit
    row recorded it (names, notes and labels may have been edited since: the grant is what counts).
    Dates left out of the request (defaults: now) are not compared."""
    from creditdesk.audit import AuditEvent

    granted = session.scalar(select(AuditEvent.after).where(
        AuditEvent.workspace_id == pack.workspace_id, AuditEvent.object_id == pack.id,
        AuditEvent.action == "pack.create").order_by(AuditEvent.id).limit(1)) or snapshot(pack)
    wanted = {
        "holder_kind": holder.kind, "holder_id": holder.id, "credit_type_id": ct.id, "quantity": data.quantity,
        "name": data.name, "price_paid": data.price_paid, "currency": data.currency,
        "is_paid": data.price_paid > 0 if data.is_paid is None else data.is_paid, "source": data.source,
        "external_ref": data.external_ref, "relationship_manager_id": data.relationship_manager_id,
        "project_manager_id": data.project_manager_id, "expiry_months": data.expiry_months,
        "priority": data.priority, "product_codes": list(data.product_codes), "status_label": data.status_label,
        "notes": data.notes}
    differ = [name for name, value in wanted.items() if granted.get(name) != value]
    for name in ("purchased_at", "starts_at", "expires_at"):
        value = getattr(data, name)
        if value is not None and _instant(granted.get(name)) != clock.aware(value):
            differ.append(name)
    if data.expires_at is None and data.expiry_months is None and granted.get("expires_at") is not None:
        differ.append("expires_at")
    return differ


def _instant(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return clock.aware(value)
    try:
        return clock.aware(datetime.fromisoformat(value))
    except (TypeError, ValueError):
        return None


def _insert_pack(session: Session, data: schemas.PackCreate, ct: CreditType, holder: HolderRef,
                 customer_id: str | None, purchased_at: datetime, starts_at: datetime, expires_at: datetime | None,
                 now: datetime, internal_key: str | None) -> tuple[LedgerAccount, Pack]:
    account = ledger.open_account(session, workspace_id=ct.workspace_id, unit=ct.code, code="pack",
                                  flags=DEBITS_MUST_NOT_EXCEED_CREDITS)
    pack = _new_pack(data, ct, holder, customer_id, purchased_at, starts_at, expires_at, None, None, now, account.id,
                     internal_key=internal_key)
    session.add(pack)
    session.flush()
    return account, pack


def _new_pack(data: schemas.PackCreate, ct, holder: HolderRef, customer_id: str | None, purchased_at: datetime,
              starts_at: datetime, expires_at: datetime | None, origin_pack_id: str | None, transfer_id: str | None,
              now: datetime, account_id: str, *, internal_key: str | None = None) -> Pack:
    """A pack's row as granted (not yet in any session)."""
    return Pack(
        id=new_id("pack"), workspace_id=ct.workspace_id, holder_kind=holder.kind, holder_id=holder.id,
        customer_id=customer_id, credit_type_id=ct.id, unit=ct.code, quantity=data.quantity,
        price_paid=data.price_paid, currency=data.currency,
        is_paid=data.price_paid > 0 if data.is_paid is None else data.is_paid,
        source=data.source, external_ref=data.external_ref, name=data.name,
        relationship_manager_id=data.relationship_manager_id, project_manager_id=data.project_manager_id,
        purchased_at=purchased_at, starts_at=starts_at, expires_at=expires_at, expiry_months=data.expiry_months,
        priority=data.priority, product_codes=list(data.product_codes), status="active",
        status_label=data.status_label, notes=data.notes, void_reason=None, ledger_account_id=account_id,
        origin_pack_id=origin_pack_id, credit_transfer_id=transfer_id,
        idempotency_key=data.idempotency_key, internal_key=internal_key, created_at=now, updated_at=now)


def get_pack(session: Session, workspace_id: str, pack_id: str, *, for_update: bool = False,
             actor: Actor | None = None) -> Pack:
    """A pack of this workspace; with `actor`, only one that actor may see (governance: a governed pack
    outside their scope is not found)."""
    pack = get_in_workspace(session, Pack, workspace_id, pack_id)
    if actor is not None:
        governance.require_visible_pack(session, actor, pack)
    if for_update:
        ledger.lock_accounts(session, [pack.ledger_account_id])
        session.refresh(pack)
    return pack


def update_pack(session: Session, pack_id: str, data: schemas.PackUpdate, *, actor: Actor) -> Pack:
    """Edit the business fields of a pack (status label and notes during credit drives, names, managers)."""
    pack = get_pack(session, actor.workspace_id, pack_id, for_update=True, actor=actor)
    fields = data.model_fields_set
    if fields - {"status_label", "notes"}:
        require_manage_packs(actor, "change a pack's name, managers or priority")
    before = snapshot(pack)
    for name in ("relationship_manager_id", "project_manager_id"):
        if name in fields and getattr(data, name):
            get_in_workspace(session, User, actor.workspace_id, getattr(data, name))
    for name in fields:
        value = getattr(data, name)
        if value is None and name in ("status_label", "notes", "name", "priority"):
            continue
        setattr(pack, name, value)
    pack.updated_at = clock.now()
    audit.record(session, actor=actor, action="pack.update", object_type="pack", object_id=pack.id,
                 before=before, after=snapshot(pack))
    return pack


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


def void_pack(session: Session, pack_id: str, data: schemas.VoidPack, *, actor: Actor) -> Pack:
    """Void a pack: its available credits go to breakage. Credits on hold follow when released."""
    governance.require_manage_packs(actor, "void packs")
    pack = get_pack(session, actor.workspace_id, pack_id, for_update=True, actor=actor)
    ct = session.get(CreditType, pack.credit_type_id)
    governance.authorize_correction(actor, ct, "void packs")
    if pack.status == "voided":
        raise PackNotActive("This pack is already voided.", code="pack_already_voided")
    before = snapshot(pack)
    account = session.get(LedgerAccount, pack.ledger_account_id)
    if account.available > 0:
        ledger.post(session, [TransferSpec(account.id, ct.breakage_account_id, account.available, VOID,
                                           Reference("pack", pack.id))],
                    workspace_id=pack.workspace_id, operation_id=pack.id, actor_id=actor.user_id,
                    locked={account.id: account})
    pack.status = "voided"
    pack.void_reason = data.reason
    pack.updated_at = clock.now()
    audit.record(session, actor=actor, action="pack.void", object_type="pack", object_id=pack.id,
                 before=before, after=snapshot(pack))
    return pack


def pack_status(pack, now: datetime) -> str:
    """The status a pack has now. An active pack past its expiry is expired from that moment, whether or
    not the expiry job has swept it yet (the job then moves what is left to breakage)."""
    if pack.status == "active" and pack.expires_at is not None and clock.aware(pack.expires_at) <= now:
        return "expired"
    return pack.status


def status_clause(statuses: list[str], now: datetime):
    """The packs whose status now (pack_status) is one of these, as a filter."""
    wanted = set(statuses)
    live = or_(Pack.expires_at.is_(None), Pack.expires_at > now)
    conds = []
    stored = [s for s in wanted if s not in ("active", "expired")]
    if stored:
        conds.append(Pack.status.in_(sorted(stored)))
    if "active" in wanted:
        conds.append(and_(Pack.status == "active", live))
    if "expired" in wanted:
        conds.append(Pack.status == "expired")
        conds.append(and_(Pack.status == "active", Pack.expires_at <= now))
    return or_(*conds) if len(conds) > 1 else conds[0]


def _status_for(account) -> str:
    """active <-> depleted follows the balance (held credits are still in the pack)."""
    return "depleted" if account.credit_balance == 0 and account.debits_pending == 0 else "active"


def _refresh_status(pack: Pack, account: LedgerAccount) -> None:
    """active <-> depleted follows the balance; expired and voided are final."""
    if pack.status in ("expired", "voided"):
        return
    new = _status_for(account)
    if new != pack.status:
        pack.status = new
        pack.updated_at = clock.now()


# --- projects ------------------------------------------------------------------------------------

def _check_contacts(session: Session, workspace_id: str, ids: list[str]) -> list[str]:
    unique = list(dict.fromkeys(ids))
    for user_id in unique:
        get_in_workspace(session, User, workspace_id, user_id)
    return unique


def project_contact_ids(session: Session, project_id: str) -> list[str]:
    return list(session.scalars(select(ProjectContact.user_id).where(ProjectContact.project_id == project_id)
                                .order_by(ProjectContact.user_id)))


def project_out(session: Session, project: Project) -> schemas.ProjectOut:
    office = session.get(Office, project.office_id)
    return schemas.ProjectOut(id=project.id, name=project.name, office_id=project.office_id,
                              customer_id=office.customer_id if office else None,
                              contact_ids=project_contact_ids(session, project.id), status=project.status,
                              created_at=project.created_at, updated_at=project.updated_at)


def create_project(session: Session, data: schemas.ProjectCreate, *, actor: Actor) -> Project:
    if not (actor.is_master or actor.role == "manager" or actor.has("consume_credits")):
        raise NotPermitted("Creating projects needs a manager role or the consume_credits permission.")
    get_in_workspace(session, Office, actor.workspace_id, data.office_id)
    contacts = _check_contacts(session, actor.workspace_id, data.contact_ids)
    now = clock.now()
    project = Project(id=new_id("prj"), workspace_id=actor.workspace_id, office_id=data.office_id, name=data.name,
                      status="open", created_at=now, updated_at=now)
    session.add(project)
    session.flush()
    for user_id in contacts:
        session.add(ProjectContact(project_id=project.id, user_id=user_id, workspace_id=actor.workspace_id))
    session.flush()
    audit.record(session, actor=actor, action="project.create", object_type="project", object_id=project.id,
                 after=snapshot(project, contact_ids=contacts))
    return project


def update_project(session: Session, project_id: str, data: schemas.ProjectUpdate, *, actor: Actor) -> Project:
    if not (actor.is_master or actor.role == "manager" or actor.has("consume_credits")):
        raise NotPermitted("Changing projects needs a manager role or the consume_credits permission.")
    project = get_in_workspace(session, Project, actor.workspace_id, project_id, for_update=True)
    before = snapshot(project, contact_ids=project_contact_ids(session, project.id))
    fields = data.model_fields_set
    if "name" in fields and data.name:
        project.name = data.name
    if "status" in fields and data.status:
        project.status = data.status
    if "office_id" in fields and data.office_id:
        get_in_workspace(session, Office, actor.workspace_id, data.office_id)
        project.office_id = data.office_id
    if "contact_ids" in fields and data.contact_ids is not None:
        contacts = _check_contacts(session, actor.workspace_id, data.contact_ids)
        for row in session.scalars(select(ProjectContact).where(ProjectContact.project_id == project.id)):
            session.delete(row)
        session.flush()
        for user_id in contacts:
            session.add(ProjectContact(project_id=project.id, user_id=user_id, workspace_id=actor.workspace_id))
    project.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="project.update", object_type="project", object_id=project.id,
                 before=before, after=snapshot(project, contact_ids=project_contact_ids(session, project.id)))
    return project


# --- contexts, eligibility, burn order -----------------------------------------------------------

@dataclass
class ResolvedContext:
    kind: str
    id: str
    holders: list[HolderRef]
    customer_id: str | None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "id": self.id}


def resolve_context(session: Session, workspace_id: str, kind: str, context_id: str | None) -> ResolvedContext:
    """Whose packs may pay: a project (its office and its contacts), a user, an office, a customer
    (the customer's own packs and its offices'), or the workspace pool."""
    if kind == "project":
        project = get_in_workspace(session, Project, workspace_id, context_id or "")
        office = session.get(Office, project.office_id)
        holders = [HolderRef("office", project.office_id)] + [
            HolderRef("user", uid) for uid in project_contact_ids(session, project.id)]
        return ResolvedContext(kind, project.id, holders, office.customer_id if office else None)
    if kind == "customer":
        customer = get_in_workspace(session, Customer, workspace_id, context_id or "")
        office_ids = session.scalars(select(Office.id).where(Office.workspace_id == workspace_id,
                                                             Office.customer_id == customer.id))
        return ResolvedContext(kind, customer.id, [HolderRef("customer", customer.id)] + [
            HolderRef("office", oid) for oid in office_ids], customer.id)
    holder, customer_id = resolve_holder(session, workspace_id, kind, context_id)
    return ResolvedContext(kind, holder.id, [holder], customer_id)


def burn_key(pack: Pack):
    far = datetime.max.replace(tzinfo=pack.starts_at.tzinfo)
    return (pack.priority, pack.expires_at or far, pack.is_paid, pack.created_at, pack.id)


def _holder_clause(holders: list[HolderRef]):
    by_kind: dict[str, list[str]] = {}
    for h in holders:
        by_kind.setdefault(h.kind, []).append(h.id)
    return or_(*[and_(Pack.holder_kind == kind, Pack.holder_id.in_(ids)) for kind, ids in by_kind.items()])


def frozen_user_ids(session: Session, workspace_id: str, ct: CreditType, user_ids: set[str]) -> set[str]:
    """Users whose credits of this type are frozen (governance.may_use: the one definition)."""
    if not user_ids:
        return set()
    return {user.id for user in session.scalars(select(User).where(User.workspace_id == workspace_id,
                                                                   User.id.in_(user_ids)))
            if governance.is_frozen(user, ct)}


def is_frozen(session: Session, pack: Pack, ct: CreditType | None = None) -> bool:
    if pack.holder_kind != "user":
        return False
    ct = ct or session.get(CreditType, pack.credit_type_id)
    return bool(frozen_user_ids(session, pack.workspace_id, ct, {pack.holder_id}))


def _covers(pack: Pack, product_code: str | None) -> bool:
    return not pack.product_codes or (product_code is not None and product_code in pack.product_codes)


# The burn (consume and hold) reads, locks and writes with SQL text (creditdesk.rawsql): it is the
# hottest path there is, and the ORM's statement building was most of its cost (bench/README.md).

@dataclass
class Candidate:
    """A pack that may pay, with its account as read (under lock) in this transaction."""
    id: str
    ledger_account_id: str
    holder_kind: str
    holder_id: str
    priority: int
    starts_at: datetime
    expires_at: datetime | None
    is_paid: bool
    created_at: datetime
    product_codes: list
    account: ledger.AccountTotals

    @property
    def available(self) -> int:
        return self.account.available


_P = Pack.__table__
_CANDIDATE_COLUMNS = (None, None, None, None, None, _P.c.starts_at, _P.c.expires_at, _P.c.is_paid, _P.c.created_at,
                      _P.c.product_codes)
_CANDIDATES_SQL = (
    "SELECT p.id, p.ledger_account_id, p.holder_kind, p.holder_id, p.priority, p.starts_at, p.expires_at, p.is_paid, "
    "p.created_at, p.product_codes, "
    + ", ".join("a." + c for c in ledger.ACCOUNT_TOTALS_COLUMNS.split(", ")) + " "
    "FROM packs p JOIN ledger_accounts a ON a.id = p.ledger_account_id "
    "WHERE p.workspace_id = :workspace_id AND p.credit_type_id = :credit_type_id AND p.status = 'active' "
    "AND ({holders}) AND p.starts_at <= :now AND (p.expires_at IS NULL OR p.expires_at > :now)")


def _holders_sql(holders: list[HolderRef], params: dict) -> str:
    parts = []
    for n, h in enumerate(holders):
        params[f"hk{n}"], params[f"hi{n}"] = h.kind, h.id
        parts.append(f"(p.holder_kind = :hk{n} AND p.holder_id = :hi{n})")
    return " OR ".join(parts)


def candidate_packs(session: Session, ct, holders: list[HolderRef], now: datetime) -> list[Candidate]:
    """The holders' packs of this credit type that are live now (the SQL half of "usable now"), with
    their accounts as read; not yet filtered by product or frozen holder (`usable_now`)."""
    params = {"workspace_id": ct.workspace_id, "credit_type_id": ct.id,
              "now": rawsql.bind(session, _P.c.starts_at, now)}
    sql = _CANDIDATES_SQL.format(holders=_holders_sql(holders, params))
    return [Candidate(*row[:10], ledger.AccountTotals(*row[10:]))
            for row in rawsql.rows(session, sql, params, _CANDIDATE_COLUMNS)]


def usable_now(packs, product_code: str | None, frozen: set[str]) -> list:
    """Of live packs (`candidate_packs`), those that may pay for this product now, in burn order: the
    pack covers the product, and its holder is not a user whose credits of this type are frozen."""
    return sorted((p for p in packs if _covers(p, product_code)
                   and not (p.holder_kind == "user" and p.holder_id in frozen)), key=burn_key)


def _candidates(session: Session, ctx: ResolvedContext, ct, product_code: str | None, now: datetime) -> list[Candidate]:
    """The context's packs that may pay now, frozen holders left out, in burn order."""
    packs = candidate_packs(session, ct, ctx.holders, now)
    frozen = frozen_user_ids(session, ct.workspace_id, ct, {p.holder_id for p in packs if p.holder_kind == "user"})
    return usable_now(packs, product_code, frozen)


def lock_candidates_of(session: Session, ct, holders: list[HolderRef], now: datetime) -> list[Candidate]:
    """The holders' live packs (`candidate_packs`) with their accounts locked and read afresh; holds
    past their timeout on them are released first."""
    rawsql.flush_pending(session)
    packs = candidate_packs(session, ct, holders, now)
    if any(p.account.debits_pending for p in packs):
        released = release_timed_out_holds(session, workspace_id=ct.workspace_id, account_ids=[
            p.ledger_account_id for p in packs if p.account.debits_pending])
        if released:
            session.flush()
            packs = candidate_packs(session, ct, holders, now)
    if not packs or rawsql.dialect_name(session) == "sqlite":
        # SQLite write transactions hold the database's write lock from BEGIN IMMEDIATE: what was
        # just read cannot change before this transaction ends.
        return packs
    # PostgreSQL: lock the accounts (in id order, against deadlocks), then read the packs again: a
    # concurrent void or depletion committed meanwhile is seen.
    locked = ledger.account_totals(session, [p.ledger_account_id for p in packs], lock=True)
    still = {p.id for p in candidate_packs(session, ct, holders, now)}
    fresh = []
    for p in packs:
        if p.id in still and p.ledger_account_id in locked:
            p.account = locked[p.ledger_account_id]
            fresh.append(p)
    return fresh


def _lock_candidates(session: Session, ctx: ResolvedContext, ct, product_code: str | None,
                     now: datetime) -> list[Candidate]:
    """The context's usable packs in burn order, their accounts locked (`lock_candidates_of`)."""
    packs = lock_candidates_of(session, ct, ctx.holders, now)
    frozen = frozen_user_ids(session, ct.workspace_id, ct, {p.holder_id for p in packs if p.holder_kind == "user"})
    return usable_now(packs, product_code, frozen)


def _plan(packs: list, amount: int, accounts: dict | None = None) -> list[tuple]:
    """Take from the packs in the order given until `amount` is met (what each can give: its
    account's available, from `accounts` when the packs are ORM rows)."""
    plan, need = [], amount
    for pack in packs:
        if need == 0:
            break
        available = accounts[pack.ledger_account_id].available if accounts is not None else pack.available
        take = min(available, need)
        if take > 0:
            plan.append((pack, take))
            need -= take
    return plan


def check_reference(ref: schemas.ReferenceIn | None) -> None:
    """A reference's link is stored to be rendered as a link: absolute http(s) only (never javascript:)."""
    if ref is not None and ref.url is not None and not schemas.is_http_url(ref.url):
        raise InvalidInput("reference.url must be an absolute http:// or https:// URL.", code="invalid_url",
                           field="reference.url")


def _reference(ref: schemas.ReferenceIn | None) -> Reference:
    if ref is None:
        return Reference()
    return Reference(ref.kind, ref.id, ref.url)


def _burn(session: Session, ctx: ResolvedContext, ct, amount: int, product_code: str | None,
          allow_partial: bool) -> list[tuple[Candidate, int]]:
    """Which packs pay how much, in burn order; their accounts are locked for the rest of the transaction."""
    now = clock.now()
    packs = _lock_candidates(session, ctx, ct, product_code, now)
    plan = _plan(packs, amount)
    refused = shortage(session, ctx, ct, amount, sum(t for _, t in plan), product_code, allow_partial, now)
    if refused is not None:
        raise refused
    return plan


def shortage(session: Session, ctx: ResolvedContext, ct, amount: int, taken: int, product_code: str | None,
             allow_partial: bool, now: datetime) -> InsufficientCredits | CreditsFrozen | None:
    """Why a burn that found `taken` of `amount` is refused (None: it is not)."""
    if not (taken == 0 or (taken < amount and not allow_partial)):
        return None
    frozen = _frozen_available(session, ctx, ct, product_code, now)
    if frozen and taken + frozen >= (amount if not allow_partial else 1):
        # The credits exist but are frozen: say so, so the holder knows a transfer out is the way.
        return CreditsFrozen(
            f"Not enough usable {ct.code} credits: {taken} available for this {ctx.kind}, {amount} requested; "
            f"{frozen} more are frozen (their holder is deactivated or lacks the permission to use them). "
            "Frozen credits can be transferred to a permitted holder.",
            available=taken, requested=amount, frozen=frozen)
    return InsufficientCredits(
        f"Not enough {ct.code} credits: {taken} available for this {ctx.kind}, {amount} requested.",
        available=taken, requested=amount)


def _frozen_available(session: Session, ctx: ResolvedContext, ct: CreditType, product_code: str | None,
                      now: datetime) -> int:
    """Credits of the context that would pay but for being frozen (a refused consumption only)."""
    rows = session.scalars(select(Pack).where(
        Pack.workspace_id == ct.workspace_id, Pack.credit_type_id == ct.id, Pack.status == "active",
        Pack.holder_kind == "user", _holder_clause(ctx.holders), Pack.starts_at <= now,
        or_(Pack.expires_at.is_(None), Pack.expires_at > now))).all()
    packs = [p for p in rows if _covers(p, product_code)]
    frozen = frozen_user_ids(session, ct.workspace_id, ct, {p.holder_id for p in packs})
    accounts = {a.id: a for a in session.scalars(select(LedgerAccount).where(
        LedgerAccount.id.in_([p.ledger_account_id for p in packs if p.holder_id in frozen])))}
    return sum(max(a.available, 0) for a in accounts.values())


@dataclass(frozen=True)
class CreditTypeRef:
    """What consume needs of a credit type, read with SQL text."""
    id: str
    workspace_id: str
    code: str
    required_permission: str | None
    consumed_account_id: str


_CREDIT_TYPES_SQL = ("SELECT id, workspace_id, code, required_permission, consumed_account_id FROM credit_types "
                     "WHERE workspace_id = :workspace_id AND code IN ({codes})")
_DEPLETE_SQL = "UPDATE packs SET status = 'depleted', updated_at = :now WHERE id = :id AND status = 'active'"


def _mark_depleted(session: Session, packs: list[tuple[str, ledger.AccountTotals]], now: datetime) -> None:
    """Active packs whose account was just emptied become depleted (SQL text: see consume)."""
    depleted = [pack_id for pack_id, account in packs if _status_for(account) == "depleted"]
    for pack_id in depleted:
        rawsql.execute(session, _DEPLETE_SQL, {"now": rawsql.bind(session, _P.c.updated_at, now), "id": pack_id}).close()
    rawsql.expire_cached(session, Pack, depleted)


def _credit_type_ref(session: Session, workspace_id: str, code: str) -> CreditTypeRef:
    found = credit_type_refs(session, workspace_id, {code})
    if not found:
        raise _unknown_credit_type(code)
    return found[0]


def credit_type_refs(session: Session, workspace_id: str, codes: set[str]) -> list[CreditTypeRef]:
    """The workspace's credit types with these codes (those that exist), with one query."""
    params: dict = {"workspace_id": workspace_id}
    for n, code in enumerate(sorted(codes)):
        params[f"c{n}"] = code
    found = [CreditTypeRef(*row) for row in rawsql.rows(
        session, _CREDIT_TYPES_SQL.format(codes=", ".join(f":c{n}" for n in range(len(codes)))), params)]
    known = session.info.setdefault("credit_type_codes", {})
    for ct in found:
        known[ct.id] = ct.code
    return found


def consume(session: Session, data: schemas.ConsumeRequest, *, actor: Actor) -> schemas.ConsumptionOut:
    """Consume in burn order: a batch of one (credits.consume_engine, which the API also runs for many
    requests at once). Returns the consumption as the API shows it; raises the error refusing it."""
    from creditdesk.credits.consume_engine import consume_many

    result = consume_many(session, [(actor, data)])[0]
    if isinstance(result, Exception):
        raise result
    return result


def _remember_lines(session: Session, operation_id: str, code: str, plan: list[tuple[Pack, int]]) -> None:
    # The legs just written, in the order written (their transfer ids increase): what operation_lines
    # would read back from the database in this transaction.
    session.info.setdefault("operation_lines", {})[(operation_id, code)] = [
        {"pack_id": p.id, "amount": take} for p, take in plan]


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
    code = session.info.get("credit_type_codes", {}).get(c.credit_type_id) or _credit_type(session, c.credit_type_id).code
    return schemas.ConsumptionOut(
        id=c.id, context={"kind": c.context_kind, "id": c.context_id}, credit_type=code,
        product_code=c.product_code, amount_requested=c.amount_requested, amount=c.amount,
        allow_partial=c.allow_partial, reference=schemas.ReferenceOut(kind=c.reference_kind, id=c.reference_id,
                                                                      url=c.reference_url),
        status=c.status, lines=operation_lines(session, c.id, CONSUME), reversed_at=c.reversed_at,
        created_at=c.created_at)


def _return_to_packs(session: Session, *, actor: Actor, ct: CreditType, operation_id: str,
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
    if breakage:
        ledger.post(session, breakage, workspace_id=actor.workspace_id, operation_id=operation_id,
                    actor_id=actor.user_id, locked=accounts)
    for pack in packs.values():
        _refresh_status(pack, accounts[pack.ledger_account_id])


def reverse_consumption(session: Session, consumption_id: str, *, actor: Actor, reason: str = "") -> Consumption:
    require_manage_packs(actor, "reverse consumptions")
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
    _return_to_packs(session, actor=actor, ct=ct, operation_id=c.id, legs=legs,
                     ref=Reference(c.reference_kind, c.reference_id, c.reference_url))
    c.status = "reversed"
    c.reversed_at = clock.now()
    audit.record(session, actor=actor, action="consumption.reverse", object_type="consumption", object_id=c.id,
                 before=before, after=snapshot(c, reason=reason))
    return c


def list_consumptions(session: Session, *, actor: Actor, limit=None, cursor=None, context_kind=None,
                      context_id=None, reference_kind=None, reference_id=None):
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
    return paginate(session, stmt, id_column=Consumption.id, limit=limit, cursor=cursor, descending=True)


# --- holds ---------------------------------------------------------------------------------------

def create_hold(session: Session, data: schemas.HoldRequest, *, actor: Actor) -> Hold:
    require_consume(actor)
    check_reference(data.reference)
    ct = credit_type_by_code(session, actor.workspace_id, data.credit_type)
    governance.authorize_spend(session, actor, ct, data.context.kind, data.context.id)
    ctx = resolve_context(session, actor.workspace_id, data.context.kind, data.context.id)
    plan = _burn(session, ctx, ct, data.amount, data.product_code, allow_partial=False)
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
                                       _reference(data.reference)) for p, take in plan],
                workspace_id=actor.workspace_id, operation_id=hold.id, actor_id=actor.user_id, pending=True,
                timeout_at=hold.timeout_at, locked=accounts)
    audit.record(session, actor=actor, action="hold.create", object_type="hold", object_id=hold.id,
                 after=snapshot(hold, lines=[{"pack_id": p.id, "amount": t} for p, t in plan]))
    return hold


def _hold_pendings(session: Session, hold: Hold) -> list[LedgerTransfer]:
    return list(session.scalars(select(LedgerTransfer).where(
        LedgerTransfer.operation_id == hold.id, LedgerTransfer.phase == PENDING).order_by(LedgerTransfer.id)))


def _lock_hold(session: Session, workspace_id: str, hold_id: str):
    hold = get_in_workspace(session, Hold, workspace_id, hold_id)
    pendings = _hold_pendings(session, hold)
    accounts = ledger.lock_accounts(session, [t.debit_account_id for t in pendings])
    session.refresh(hold)
    return hold, pendings, accounts


def capture_hold(session: Session, hold_id: str, data: schemas.CaptureRequest, *, actor: Actor) -> Hold:
    """Capture all or part of a hold (in burn order); the rest is released."""
    require_consume(actor)
    hold, pendings, accounts = _lock_hold(session, actor.workspace_id, hold_id)
    governance.authorize_spend(session, actor, _credit_type(session, hold.credit_type_id), hold.context_kind,
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
    _after_release(session, actor=actor, ct=ct, hold=hold, released=released, accounts=accounts)
    hold.status = "captured"
    hold.captured_amount = amount
    hold.resolved_at = clock.now()
    audit.record(session, actor=actor, action="hold.capture", object_type="hold", object_id=hold.id,
                 before=before, after=snapshot(hold))
    return hold


def release_hold(session: Session, hold_id: str, *, actor: Actor, timed_out: bool = False) -> Hold:
    if not timed_out:
        require_consume(actor)
    hold, pendings, accounts = _lock_hold(session, actor.workspace_id, hold_id)
    if not timed_out:
        governance.authorize_spend(session, actor, _credit_type(session, hold.credit_type_id), hold.context_kind,
                                   hold.context_id)
    if hold.status != "pending":
        raise HoldNotPending(f"This hold is {hold.status}; only a pending hold can be released.")
    _release(session, hold, pendings, accounts, actor=actor, timed_out=timed_out)
    return hold


def _release(session: Session, hold: Hold, pendings: list[LedgerTransfer], accounts, *, actor: Actor,
             timed_out: bool) -> None:
    before = snapshot(hold)
    ct = session.get(CreditType, hold.credit_type_id)
    op = ledger.Operation(hold.workspace_id, actor_id=actor.user_id)
    for pending in pendings:
        op.resolve(pending.id, void=True, code=RELEASE)
    if pendings:
        ledger.one_shot(session, op, accounts=accounts)
    _after_release(session, actor=actor, ct=ct, hold=hold,
                   released=[(p.debit_account_id, p.amount) for p in pendings], accounts=accounts)
    hold.status = "timed_out" if timed_out else "released"
    hold.resolved_at = clock.now()
    audit.record(session, actor=actor, action="hold.timeout" if timed_out else "hold.release", object_type="hold",
                 object_id=hold.id, before=before, after=snapshot(hold))


def _after_release(session: Session, *, actor: Actor, ct: CreditType, hold: Hold, released: list[tuple[str, int]],
                   accounts: dict[str, LedgerAccount]) -> None:
    """Released credits of a pack that expired (or was voided) while held go to breakage now."""
    # Every pack of the hold (not only those with something released): a fully captured pack is depleted.
    packs = {p.ledger_account_id: p for p in session.scalars(select(Pack).where(
        Pack.ledger_account_id.in_(list({a for a, _ in released} | set(accounts)))))}
    breakage = [TransferSpec(acc, ct.breakage_account_id, amount, VOID if packs[acc].status == "voided" else EXPIRE,
                             Reference("hold", hold.id))
                for acc, amount in released if amount > 0 and packs[acc].status in ("expired", "voided")]
    if breakage:
        ledger.post(session, breakage, workspace_id=hold.workspace_id, operation_id=hold.id, actor_id=actor.user_id,
                    locked=accounts)
    for pack in packs.values():
        _refresh_status(pack, accounts[pack.ledger_account_id])


def release_timed_out_holds(session: Session, *, workspace_id: str | None = None, account_ids: list[str] | None = None,
                            locked: dict[str, LedgerAccount] | None = None, limit: int = 500) -> int:
    """Release pending holds past their timeout (all of a workspace, or those touching some accounts)."""
    now = clock.now()
    stmt = select(Hold).where(Hold.status == "pending", Hold.timeout_at <= now)
    if workspace_id:
        stmt = stmt.where(Hold.workspace_id == workspace_id)
    if account_ids is not None:
        stmt = stmt.where(Hold.id.in_(select(LedgerTransfer.operation_id).where(
            LedgerTransfer.debit_account_id.in_(account_ids), LedgerTransfer.phase == PENDING,
            LedgerTransfer.code == HOLD)))
    count = 0
    for hold in session.scalars(stmt.order_by(Hold.id).limit(limit)).all():
        pendings = _hold_pendings(session, hold)
        accounts = dict(locked or {})
        accounts.update(ledger.lock_accounts(session, [t.debit_account_id for t in pendings
                                                       if t.debit_account_id not in accounts]))
        session.refresh(hold)
        if hold.status != "pending":
            continue
        _release(session, hold, pendings, accounts, actor=Actor.system(hold.workspace_id), timed_out=True)
        count += 1
    return count


def reverse_hold(session: Session, hold_id: str, *, actor: Actor, reason: str = "") -> Hold:
    """Reverse a captured hold: the captured credits go back to the packs they came from."""
    require_manage_packs(actor, "reverse captured holds")
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
    _return_to_packs(session, actor=actor, ct=ct, operation_id=hold.id, legs=legs,
                     ref=Reference(hold.reference_kind, hold.reference_id, hold.reference_url))
    hold.reversed_at = clock.now()
    audit.record(session, actor=actor, action="hold.reverse", object_type="hold", object_id=hold.id,
                 before=before, after=snapshot(hold, reason=reason))
    return hold


def hold_out(session: Session, hold: Hold) -> schemas.HoldOut:
    ct = _credit_type(session, hold.credit_type_id)
    return schemas.HoldOut(
        id=hold.id, context={"kind": hold.context_kind, "id": hold.context_id}, credit_type=ct.code,
        product_code=hold.product_code, amount=hold.amount, captured_amount=hold.captured_amount, status=hold.status,
        timeout_at=hold.timeout_at, reference=schemas.ReferenceOut(kind=hold.reference_kind, id=hold.reference_id,
                                                                   url=hold.reference_url),
        lines=operation_lines(session, hold.id, HOLD), created_at=hold.created_at, resolved_at=hold.resolved_at,
        reversed_at=hold.reversed_at)


# --- transfers between holders -------------------------------------------------------------------

@dataclass
class TransferResult:
    transfer: CreditTransfer
    lines: list[dict] = field(default_factory=list)


_PACK_COLUMNS = tuple(Pack.__table__.columns)
_SOURCE_SQL = (
    "SELECT " + ", ".join("p." + c.name for c in _PACK_COLUMNS) + ", "
    + ", ".join("a." + c for c in ledger.ACCOUNT_TOTALS_COLUMNS.split(", ")) + " "
    "FROM packs p JOIN ledger_accounts a ON a.id = p.ledger_account_id WHERE p.workspace_id = :workspace_id AND ")
# Frozen credits may be transferred away; not-yet-started packs keep waiting where they are.
_SOURCE_BY_HOLDER_SQL = _SOURCE_SQL + (
    "p.credit_type_id = :credit_type_id AND p.status = 'active' AND p.holder_kind = :holder_kind "
    "AND p.holder_id = :holder_id AND p.starts_at <= :now AND (p.expires_at IS NULL OR p.expires_at > :now)")
_SOURCE_BY_ID_SQL = _SOURCE_SQL + "p.id = :id"


@dataclass
class _SourcePack:
    """A pack as read for a transfer (a plain copy of its row, never added to a session) and its account."""
    row: SimpleNamespace
    account: ledger.AccountTotals

    @property
    def available(self) -> int:
        return self.account.available

    def __getattr__(self, name):
        return getattr(self.row, name)


def _source_packs(session: Session, sql: str, params: dict) -> list[_SourcePack]:
    n = len(_PACK_COLUMNS)
    return [_SourcePack(SimpleNamespace(**{c.key: v for c, v in zip(_PACK_COLUMNS, row[:n])}),
                        ledger.AccountTotals(*row[n:]))
            for row in rawsql.rows(session, sql, params, _PACK_COLUMNS)]


def transfer_credits(session: Session, data: schemas.TransferRequest, *, actor: Actor,
                     authorize=None) -> TransferResult:
    """Move credits to another holder. Each slice taken from a source pack becomes a pack on the
    receiver with the same expiry, priority, products, cost per credit and paid/free nature.

    Written with SQL text (creditdesk.rawsql), as consume is; the returned transfer is not in the session."""
    ws = actor.workspace_id
    rawsql.flush_pending(session)
    ct = _credit_type_ref(session, ws, data.credit_type)
    to, to_customer_id = resolve_holder(session, ws, data.to.kind, data.to.id)
    now = clock.now()
    if data.from_pack_id:
        sql, params = _SOURCE_BY_ID_SQL, {"workspace_id": ws, "id": data.from_pack_id}
        candidates = _source_packs(session, sql, params)
        if not candidates:
            raise NotFound(f"No pack with id {data.from_pack_id!r} in this workspace.", object_id=data.from_pack_id)
        if candidates[0].credit_type_id != ct.id:
            raise InvalidCredits("The source pack holds another credit type.", code="credit_type_mismatch")
        source = HolderRef(candidates[0].holder_kind, candidates[0].holder_id)
    elif data.from_ is not None:
        source, _ = resolve_holder(session, ws, data.from_.kind, data.from_.id)
        sql, params = _SOURCE_BY_HOLDER_SQL, {
            "workspace_id": ws, "credit_type_id": ct.id, "holder_kind": source.kind, "holder_id": source.id,
            "now": rawsql.bind(session, _P.c.starts_at, now)}
        candidates = _source_packs(session, sql, params)
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
        candidates = _source_packs(session, sql, params)
    live = [p for p in candidates if p.status == "active" and (p.holder_kind, p.holder_id) == (source.kind, source.id)
            and (p.expires_at is None or p.expires_at > now)]
    if data.from_pack_id and not live:
        raise PackNotActive("The source pack is not active.")
    plan = _plan(sorted(live, key=burn_key), data.amount)
    moved = sum(t for _, t in plan)
    if moved < data.amount:
        raise InsufficientCredits(f"Not enough {ct.code} credits to transfer: {moved} available, "
                                  f"{data.amount} requested.", available=moved, requested=data.amount)
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
        new_pack = _new_pack(schemas.PackCreate(
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
        op.post(TransferSpec(pack.ledger_account_id, account_id, take, TRANSFER, Reference("credit_transfer", xfer.id)))
        result.lines.append({"from_pack_id": pack.id, "to_pack_id": new_pack.id, "amount": take})
    ledger.one_shot(session, op, accounts=accounts)
    for new_pack in new_packs:
        rawsql.insert(session, Pack.__table__, {c.key: getattr(new_pack, c.key) for c in _PACK_COLUMNS})
    _mark_depleted(session, [(p.id, p.account) for p, _ in plan], now)
    audit.record(session, actor=actor, action="credit_transfer.create", object_type="credit_transfer",
                 object_id=xfer.id, after=snapshot(xfer, lines=result.lines))
    return result


def transfer_lines(session: Session, xfer: CreditTransfer) -> list[dict]:
    rows = session.execute(select(Pack.origin_pack_id, Pack.id, Pack.quantity).where(
        Pack.workspace_id == xfer.workspace_id, Pack.credit_transfer_id == xfer.id).order_by(Pack.id)).all()
    return [{"from_pack_id": o, "to_pack_id": p, "amount": q} for o, p, q in rows]


def transfer_out(session: Session, xfer: CreditTransfer, lines: list[dict] | None = None) -> schemas.TransferOut:
    code = session.info.get("credit_type_codes", {}).get(xfer.credit_type_id) or _credit_type(session, xfer.credit_type_id).code
    return schemas.TransferOut(
        id=xfer.id, credit_type=code, from_={"kind": xfer.from_holder_kind, "id": xfer.from_holder_id,
                                                "pack_id": xfer.from_pack_id},
        to={"kind": xfer.to_holder_kind, "id": xfer.to_holder_id}, amount=xfer.amount, memo=xfer.memo,
        lines=lines if lines is not None else transfer_lines(session, xfer), created_at=xfer.created_at)


# --- expiry --------------------------------------------------------------------------------------

def due_pack_ids(session: Session, *, now: datetime | None = None, limit: int = 1000,
                 workspace_id: str | None = None) -> list[str]:
    now = now or clock.now()
    stmt = select(Pack.id).where(Pack.status == "active", Pack.expires_at.is_not(None), Pack.expires_at <= now)
    if workspace_id:
        stmt = stmt.where(Pack.workspace_id == workspace_id)
    return list(session.scalars(stmt.order_by(Pack.expires_at, Pack.id).limit(limit)))


def count_due_packs(session: Session, *, workspace_id: str | None = None) -> int:
    from sqlalchemy import func

    stmt = select(func.count()).select_from(Pack).where(Pack.status == "active", Pack.expires_at.is_not(None),
                                                        Pack.expires_at <= clock.now())
    if workspace_id:
        stmt = stmt.where(Pack.workspace_id == workspace_id)
    return session.scalar(stmt) or 0


def expire_packs(session: Session, pack_ids: list[str]) -> int:
    """Expire these packs if still due: available credits go to breakage; held credits stay held until
    their hold ends, then follow. Safe to run on several nodes at once and to re-run. In bulk (a few
    statements per batch, the same records as pack by pack): see credits/expiry.py."""
    from creditdesk.credits import expiry

    return expiry.expire_packs(session, pack_ids)
