"""Packs: holders, grant, update, void, a pack's status; SQL in repository.py (one place to tune it)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from creditdesk import audit, clock, timezones, webhooks
from creditdesk.audit import Actor, snapshot
from creditdesk.credits import governance, repository, schemas
from creditdesk.credits.errors import InvalidCredits, PackNotActive
from creditdesk.credits.models import CreditType, Pack
from creditdesk.credits.repository import GRANT, VOID
from creditdesk.credits.credit_types import credit_type_by_code
from creditdesk.errors import Conflict, NotFound
from creditdesk.ids import new_id
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import DEBITS_MUST_NOT_EXCEED_CREDITS, LedgerAccount
from creditdesk.ledger.service import Reference, TransferSpec
from creditdesk.parties.models import Customer, Office, User
from creditdesk.repository import get_in_workspace


# --- holders -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HolderRef:
    kind: str
    id: str

    def as_dict(self) -> dict:
        return {"kind": self.kind, "id": self.id}


def resolve_holder(session: Session, workspace_id: str, kind: str, holder_id: str | None) -> tuple[HolderRef, str | None]:
    """Check the holder exists in this workspace; return it with the customer it belongs to."""
    if kind == "workspace":
        if holder_id not in (None, workspace_id):
            raise NotFound("The workspace pool is this workspace's own; give no id.")
        return HolderRef("workspace", workspace_id), None
    if not holder_id:
        raise InvalidCredits(f"A {kind} holder needs an id.", code="holder_id_required")
    if kind == "office":
        found = repository.office_row(session, workspace_id, holder_id)
        if found is None:
            raise NotFound(f"No office with id {holder_id!r} in this workspace.", object_id=holder_id)
        return HolderRef("office", found[0]), found[1]
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


# Sources whose external_ref names what a pack came from rather than the grant itself: a transfer's pack
# keeps its origin's ref, a promotion's names the package given (many packs each); they claim no key.
UNKEYED_SOURCES = frozenset({"transfer", "promotion"})


def external_key_of(data: schemas.PackCreate) -> str | None:
    """The (source, external_ref) key this grant claims (Pack.external_key), if any."""
    return data.external_ref if data.external_ref and data.source not in UNKEYED_SOURCES else None


def grant_pack(session: Session, data: schemas.PackCreate, *, actor: Actor, internal_key: str | None = None,
               purchase_id: str | None = None, wallet_id: str | None = None) -> Pack:
    """Create a pack and fund it (see grant_or_find); the pack, new or the one granted before."""
    return grant_or_find(session, data, actor=actor, internal_key=internal_key, purchase_id=purchase_id,
                         wallet_id=wallet_id)[0]


def dates_in_workspace_zone(session: Session, workspace_id: str, data: schemas.PackCreate) -> schemas.PackCreate:
    """The grant with its bare dates made moments where the business is: expires_at the end of that day,
    purchased_at and starts_at its start (the form, the import, the API and packages all mean that)."""
    bare = {name: value for name in ("purchased_at", "starts_at", "expires_at")
            if timezones.is_bare_date(value := getattr(data, name))}
    if not bare:
        return data
    where = timezones.workspace_zone(session, workspace_id)
    return data.model_copy(update={name: (timezones.end_of_day if name == "expires_at" else timezones.start_of_day)(
        day, where) for name, day in bare.items()})


def grant_or_find(session: Session, data: schemas.PackCreate, *, actor: Actor, internal_key: str | None = None,
                  purchase_id: str | None = None, wallet_id: str | None = None) -> tuple[Pack, bool]:
    """Create a pack and fund it: a ledger transfer from issuance to its account. (pack, created): created
    is False when the pack was granted before (a replay), and nothing was done now.

    `data.idempotency_key` is the user's key: the same request under it answers with the pack it made,
    another request is refused (idempotency_key_conflict, naming that pack). Internal callers give
    `internal_key` instead (the importer's content-derived keys), kept in a column of its own that no
    request can write. `purchase_id` is given by the SMS purchase flow only, once the purchase is paid:
    its pack (source purchase, keyed by the purchase) is the only way credits are bought. `wallet_id` is
    given by billing.wallets only (a top up, which checked who may): the pack is that wallet's money.

    `data.external_ref` (with `data.source`, transfers and promotions aside) is a key of its own, whatever
    the idempotency key: the same request for a source and ref that has a pack answers with that pack,
    another request is refused (409 external_ref_taken, naming it). Two at once: one pack."""
    if wallet_id is not None:
        if data.source != "wallet" or internal_key is None:
            raise ValueError("a wallet's pack has the source wallet and an internal key")
    elif purchase_id is None:
        governance.require_grant(actor)
    else:
        if data.source != "purchase" or data.external_ref != purchase_id or data.idempotency_key is not None:
            raise ValueError("a purchase's pack has the source purchase and the purchase as external_ref")
        internal_key = f"sms_purchase:{purchase_id}"
    ws = actor.workspace_id
    data = dates_in_workspace_zone(session, ws, data)
    ct = credit_type_by_code(session, ws, data.credit_type)
    holder, customer_id = resolve_holder(session, ws, data.holder.kind, data.holder.id)
    if wallet_id is None:
        governance.authorize_grant(session, actor, ct, holder, data, paid_purchase=purchase_id is not None)
    external_key = external_key_of(data)
    existing = _pack_by_key(session, ws, data, internal_key, ct, holder) or \
        _pack_by_ref(session, ws, data, external_key, ct, holder)
    if existing is not None:
        return existing, False
    for user_id in (data.relationship_manager_id, data.project_manager_id):
        if user_id:
            get_in_workspace(session, User, ws, user_id)
    now = clock.now()
    purchased_at = clock.aware(data.purchased_at) or now
    starts_at = clock.aware(data.starts_at) or purchased_at
    if data.expires_at and data.expiry_months:
        raise InvalidCredits("Give an expiry date or a number of months until the expiry, not both.",
                             code="expiry_ambiguous", field="expiry_months")
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
    if data.idempotency_key or internal_key or external_key:
        # Two grants with one key at once (PostgreSQL): the second waits on the unique key, then fails
        # on it. Insert under a savepoint, and on that failure answer as if the first had been seen.
        session.flush()
        try:
            with session.begin_nested():
                account, pack = _insert_pack(session, data, ct, holder, customer_id, purchased_at, starts_at,
                                             expires_at, now, internal_key, external_key)
        except IntegrityError:
            existing = _pack_by_key(session, ws, data, internal_key, ct, holder) or \
                _pack_by_ref(session, ws, data, external_key, ct, holder)
            if existing is None:
                raise
            return existing, False
    else:
        account, pack = _insert_pack(session, data, ct, holder, customer_id, purchased_at, starts_at, expires_at,
                                     now, internal_key, None)
    if wallet_id is not None:
        pack.wallet_id = wallet_id
    ledger.post(session, [TransferSpec(ct.issuance_account_id, account.id, data.quantity, GRANT,
                                       Reference("pack", pack.id))],
                workspace_id=ws, operation_id=pack.id, actor_id=actor.user_id, locked={account.id: account})
    audit.record(session, actor=actor, action="pack.create", object_type="pack", object_id=pack.id,
                 after=snapshot(pack))
    webhooks.emit(session, ws, "pack.created", lambda: webhooks.pack_data(pack))
    return pack, True


def pack_by_external_ref(session: Session, workspace_id: str, source: str, external_ref: str) -> Pack | None:
    """The pack holding the key of this source and external ref, if any."""
    return session.scalar(select(Pack).where(Pack.workspace_id == workspace_id, Pack.source == source,
                                             Pack.external_key == external_ref))


def _pack_by_ref(session: Session, workspace_id: str, data: schemas.PackCreate, external_key: str | None,
                 ct: CreditType, holder: HolderRef) -> Pack | None:
    """The pack already granted for this source and external ref: the answer when the request is the same,
    a conflict naming it when it is not (whatever the idempotency key: one pack per ref)."""
    if external_key is None:
        return None
    found = pack_by_external_ref(session, workspace_id, data.source, external_key)
    if found is None:
        return None
    differ = grant_differences(session, found, data, ct, holder)
    if differ:
        raise Conflict(f"The external_ref {external_key!r} (source {data.source}) already has pack {found.id}, "
                       f"granted with other values ({', '.join(differ)}). One pack per source and external ref: "
                       "correct that pack instead, or use another ref.",
                       code="external_ref_taken", pack_id=found.id, fields=differ)
    return found


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
                 now: datetime, internal_key: str | None,
                 external_key: str | None) -> tuple[LedgerAccount, Pack]:
    account = ledger.open_account(session, workspace_id=ct.workspace_id, unit=ct.code, code="pack",
                                  flags=DEBITS_MUST_NOT_EXCEED_CREDITS)
    pack = new_pack(data, ct, holder, customer_id, purchased_at, starts_at, expires_at, None, None, now, account.id,
                    internal_key=internal_key, external_key=external_key)
    session.add(pack)
    session.flush()
    return account, pack


def new_pack(data: schemas.PackCreate, ct, holder: HolderRef, customer_id: str | None, purchased_at: datetime,
             starts_at: datetime, expires_at: datetime | None, origin_pack_id: str | None, transfer_id: str | None,
             now: datetime, account_id: str, *, internal_key: str | None = None,
             external_key: str | None = None) -> Pack:
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
        idempotency_key=data.idempotency_key, internal_key=internal_key, created_at=now, updated_at=now,
        external_key=external_key)


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
        governance.require_manage_packs(actor, "change a pack's name, managers or priority")
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
    webhooks.emit(session, pack.workspace_id, "pack.voided", lambda: {**webhooks.pack_data(pack), "reason": data.reason})
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


def refresh_status(pack: Pack, account: LedgerAccount) -> None:
    """active <-> depleted follows the balance; expired and voided are final."""
    if pack.status in ("expired", "voided"):
        return
    new = _status_for(account)
    if new != pack.status:
        pack.status = new
        pack.updated_at = clock.now()
        if new == "depleted" and object_session(pack) is not None:
            webhooks.emit(object_session(pack), pack.workspace_id, "pack.depleted", {"id": pack.id})


def mark_depleted(session: Session, packs: list[tuple[str, ledger.AccountTotals]], now: datetime) -> None:
    """Active packs whose account was just emptied become depleted (SQL text: see consume)."""
    depleted = [(pack_id, account.workspace_id) for pack_id, account in packs if _status_for(account) == "depleted"]
    repository.deplete_packs(session, [pack_id for pack_id, _ in depleted], now)
    for pack_id, workspace_id in depleted:
        webhooks.emit(session, workspace_id, "pack.depleted", {"id": pack_id})
