"""SMS credits for individual users (seed 003): pool, purchases, transfers, sending, accounts, logs.

The rules (the API and the back office both call these functions; the rules themselves are the
functions of credits/governance.py, which the generic credits endpoints apply to SMS credits too):

- Credits are of the credit type `sms` (created on first use, frozen while the holder lacks send_sms).
  Holders are the workspace pool ("system / unallocated credits", master users only) and users.
- A user may receive credits (purchase or transfer) only when active, staff, and allowed to send SMS
  (the send_sms permission; master users hold every permission).
- Who manages whom: master users everyone and the pool; users with manage_office_credits (and no
  master role) every user of their offices, primary and additional, themselves included; everyone else
  themselves and the members of their teams.
- Purchase: master -> pool or any user; office manager -> any user of their offices; others -> themselves
  and their team members. Credits are granted only once the payment succeeds.
- Transfer: master -> pool <-> any user, and user <-> user; office manager -> between users of their
  offices; others -> from their own credits to a team member, never from a team member. The
  conditions must be agreed to. Frozen credits may be transferred out (that is how they are unfrozen).
- Sending: the sending user's own credits always pay (one per segment), whoever the message is for;
  a hold is captured when the sender backend accepts the message and released when it fails.
- Every change writes an audit row; the logs show every credit movement of the last 30 days, each at
  its time and with the holder it had then (a change of holder is a transfer out and in).

Services take the session first and a keyword-only actor, and never commit.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, external_calls
from creditdesk.audit import Actor, snapshot
from creditdesk.credits import credit_types, governance, holds, packs, transfers
from creditdesk.credits import schemas as cs
from creditdesk.credits.errors import CreditsFrozen, HoldExpired, HoldNotPending, InsufficientCredits
from creditdesk.credits.models import CreditType, Hold, Pack
from creditdesk.credits.packs import HolderRef
from creditdesk.credits.repository import is_live
from creditdesk.db import Database
from creditdesk.errors import Conflict, InvalidInput, NotFound, NotPermitted
from creditdesk.ids import new_id
from creditdesk.ledger.models import POST_PENDING, POSTED, LedgerAccount, LedgerTransfer
from creditdesk.pagination import Page, paginate
from creditdesk.parties.models import User, Workspace
from creditdesk.parties import service as parties
from creditdesk.parties.service import require_master
from creditdesk.repository import get_in_workspace, one_of
from creditdesk.sms import payments, schemas
from creditdesk.sms.models import SmsMessage, SmsPurchase
from creditdesk.sms.segments import count_segments
from creditdesk.sms.senders import SendResult, SmsSender, current_sender

log = logging.getLogger("creditdesk.sms")

SMS = "sms"
# The workspace pool's one name (seed 003's "system or unallocated credits"), wherever it is shown.
POOL_NAME = "System credits (unallocated)"
LOG_DAYS = 30
MAX_SEGMENTS = 10
HOLD_TIMEOUT_SECONDS = 300
DEFAULT_PRICING = {"unit_price": 10, "currency": "AUD", "tax_rate_bp": 1000, "tax_label": "GST"}
TRANSFER_CONDITIONS = (
    "Transferred SMS credits leave this account at once and become the receiver's own credits: only the "
    "receiver (or someone who manages their account) can move them again. They keep their purchase date and "
    "price. Transfers are recorded in the audit log and in the last 30 days logs of both accounts."
)
# The columns of GET /v1/sms/logs.csv, in this order (documented in the API and tested).
LOG_CSV_COLUMNS = (
    "date_utc", "account_kind", "account_id", "account_name", "direction", "movement", "quantity",
    "counterparty_kind", "counterparty_id", "counterparty_name", "reference", "memo", "reference_kind",
    "reference_id", "actor_id", "actor_name", "movement_id",
)


# --- small helpers ---------------------------------------------------------------------------------

def _with_permission(actor: Actor, permission: str) -> Actor:
    """The actor with one more permission, for one call into the credits layer.

    The SMS rules of this module have already allowed the action; the credits layer checks a generic
    permission (consume_credits to hold and capture) that an SMS user need not hold.
    The audit rows written down there still name the real user and API key."""
    return dataclasses.replace(actor, permissions=actor.permissions | {permission})


# The rules of who may hold, buy, move and see SMS credits are credits/governance.py's (one function per
# rule, used by the generic credits endpoints as well); these are the same functions.
may_send_sms = governance.may_send_sms


def _workspace(session: Session, actor: Actor) -> Workspace:
    return session.get(Workspace, actor.workspace_id)


_require_individual = governance.require_individual_mode


def find_sms_credit_type(session: Session, workspace_id: str) -> CreditType | None:
    return session.scalar(select(CreditType).where(CreditType.workspace_id == workspace_id, CreditType.code == SMS))


def sms_credit_type(session: Session, workspace_id: str) -> CreditType:
    """The `sms` credit type, created on first use (frozen while the holder lacks send_sms)."""
    ct = find_sms_credit_type(session, workspace_id)
    if ct is None:
        ct = credit_types.create_credit_type(session, cs.CreditTypeCreate(
            code=SMS, name="SMS", scale=0, required_permission="send_sms"), actor=Actor.system(workspace_id))
    return ct


# --- settings --------------------------------------------------------------------------------------

def sms_settings(ws: Workspace) -> dict:
    stored = (ws.settings or {}).get("sms") or {}
    seller = {"name": ws.name, "address": "", "tax_id": None, "email": None, **(stored.get("seller") or {})}
    return {"credit_mode": (ws.settings or {}).get("sms_credit_mode", "individual"),
            **{k: stored.get(k, v) for k, v in DEFAULT_PRICING.items()}, "seller": seller}


def payment_methods_for(actor: Actor) -> list[str]:
    """The payment methods this actor may choose. The built-in test payment stays pending until a master user
    records its outcome, so only master users (who can settle it) may choose it: anyone else would leave a
    purchase nobody they know of can move forward."""
    return [code for code in payments.payment_method_codes()
            if code != payments.TestPending.code or actor.is_master]


def settings_out(ws: Workspace, actor: Actor) -> schemas.SmsSettingsOut:
    return schemas.SmsSettingsOut(**sms_settings(ws), payment_methods=payment_methods_for(actor),
                                  transfer_conditions=TRANSFER_CONDITIONS)


def get_settings(session: Session, *, actor: Actor) -> schemas.SmsSettingsOut:
    return settings_out(_workspace(session, actor), actor)


def update_settings(session: Session, data: schemas.SmsSettingsUpdate, *, actor: Actor) -> schemas.SmsSettingsOut:
    """Change the SMS credit mode, prices, tax or seller details. Master users only; audited."""
    require_master(actor, "change SMS settings")
    ws = session.execute(select(Workspace).where(Workspace.id == actor.workspace_id).with_for_update()).scalar_one()
    before = sms_settings(ws)
    fields = data.model_fields_set
    for name in fields:
        if getattr(data, name) is None:
            raise InvalidInput(f"{name} cannot be null.", code="field_not_nullable", field=name)
    settings = dict(ws.settings or {})
    stored = dict(settings.get("sms") or {})
    left = None
    if "credit_mode" in fields and data.credit_mode != before["credit_mode"]:
        left = credits_left_by_mode_change(session, ws.id, data.credit_mode)
        if not data.confirm_mode_change:
            raise Conflict(mode_change_question(data.credit_mode, left), code="mode_change_unconfirmed",
                           credit_mode=data.credit_mode, **left)
    if "credit_mode" in fields:
        settings["sms_credit_mode"] = data.credit_mode
    for name in ("unit_price", "currency", "tax_rate_bp", "tax_label"):
        if name in fields:
            stored[name] = getattr(data, name)
    if "seller" in fields:
        stored["seller"] = data.seller.model_dump(mode="json")
    settings["sms"] = stored
    ws.settings = settings  # a new dict: the JSON column sees the change
    ws.updated_at = clock.now()
    after = sms_settings(ws)
    audit.record(session, actor=actor, action="workspace.sms_settings", object_type="workspace", object_id=ws.id,
                 before=before, after=after)
    if before["credit_mode"] != after["credit_mode"]:
        audit.record(session, actor=actor, action="workspace.sms_credit_mode", object_type="workspace",
                     object_id=ws.id, before={"sms_credit_mode": before["credit_mode"]},
                     after={"sms_credit_mode": after["credit_mode"], **(left or {})})
    return settings_out(ws, actor)


def credits_left_by_mode_change(session: Session, workspace_id: str, new_mode: str) -> dict:
    """What a change of mode leaves where it is (it moves nothing): to shared, the credits users hold (only a
    pool is spent there); to individual, the credits office pools hold. {"holders": n, "credits": total}."""
    ct = find_sms_credit_type(session, workspace_id)
    kind = "user" if new_mode == "shared" else "office"
    if ct is None:
        return {"holders": 0, "credits": 0}
    balances = {key: value for key, value in _balances(session, ct, None, workspace_id).items()
                if key[0] == kind and (value[0] or value[1])}
    return {"holders": len(balances), "credits": sum(v[0] + v[1] for v in balances.values())}


def mode_change_question(new_mode: str, left: dict) -> str:
    what = ("shared office SMS credits: messages are paid from office pools, then the workspace pool"
            if new_mode == "shared" else "individual user SMS credits: each user pays with their own credits")
    text = f"Switching to {what}. Nothing is moved."
    if left["credits"]:
        whose = "users" if new_mode == "shared" else "office pools"
        text += (f" {left['credits']:,} credit(s) held by {left['holders']} {whose} stay where they are and are not "
                 f"spent in the new mode until a master user transfers them (they stay listed in Manage SMS credits "
                 f"until then).")
    return text + " Confirm the change (confirm_mode_change: true)."


# --- who manages whom ------------------------------------------------------------------------------

Scope = governance.Scope
office_user_ids = governance.office_user_ids
scope_of = governance.scope_of


def _account(session: Session, actor: Actor, ref: schemas.AccountRef) -> tuple[HolderRef, User | None]:
    if ref.kind == "office":
        office = governance.require_own_office(session, actor.workspace_id, ref.id)
        return HolderRef("office", office.id), None
    if ref.kind == "workspace":
        if ref.id not in (None, actor.workspace_id):
            raise NotFound("The workspace pool is this workspace's own; give no id.")
        return HolderRef("workspace", actor.workspace_id), None
    if not ref.id:
        raise InvalidInput("A user account needs the user's id.", code="account_id_required")
    user = get_in_workspace(session, User, actor.workspace_id, ref.id)
    return HolderRef("user", user.id), user


_require_pool_manager = governance.require_pool_manager
_require_recipient = governance.require_recipient


def authorize_purchase(session: Session, actor: Actor, ref: schemas.AccountRef) -> HolderRef:
    """Who may buy for whom (seed 003: governance.check_purchase). Returns the holder the credits go to."""
    holder, user = _account(session, actor, ref)
    if governance.is_shared_mode(session, actor.workspace_id):
        governance.check_purchase_shared(session, actor, holder)
        return holder
    if holder.kind == "office":
        raise InvalidInput("Offices hold SMS credits only with shared office SMS credits; this workspace uses "
                           "individual user credits.", code="invalid_sms_account")
    governance.check_purchase(session, actor, holder, user)
    return holder


# Who may transfer what where (seed 003); the credits transfer's authorize hook for SMS transfers.
authorize_transfer = governance.check_transfer


# --- external calls, after commit: creditdesk.external_calls -----------------------------------------
CALL_LEASE_SECONDS = external_calls.CALL_LEASE_SECONDS
_call_lease = external_calls.call_lease
external_idempotency_key = external_calls.idempotency_key
_detached = external_calls.detached
_after_commit = external_calls.run_after_commit  # a module global: tests replace it to play a crash


def complete_due_calls(db: Database, *, workspace_id: str | None = None, batch_size: int = 100) -> int:
    """The recovery job: make the external calls whose outcome was never recorded and whose lease has
    ended (a purchase still to charge, a message still to hand over). Each is claimed first (a new,
    longer lease), so several nodes never make the same call at once. Returns how many were completed."""
    done = 0
    for model, due, attempts, complete in (
            (SmsPurchase, SmsPurchase.charge_due_at, SmsPurchase.charge_attempts, complete_purchase),
            (SmsMessage, SmsMessage.send_due_at, SmsMessage.send_attempts, complete_message)):
        while True:
            claimed = db.write(lambda session: _claim_due(session, model, due, attempts, workspace_id=workspace_id,
                                                          limit=batch_size))
            for object_id in claimed:
                try:
                    complete(db, object_id)
                    done += 1
                except Exception:  # the lease ends and a later run tries again
                    log.exception("completing %s %s failed", model.__name__, object_id)
            if len(claimed) < batch_size:
                break
    return done


def _claim_due(session: Session, model, due, attempts, *, workspace_id: str | None, limit: int) -> list[str]:
    return external_calls.claim_due(session, model, due, attempts, workspace_id=workspace_id, limit=limit)


# --- purchases -------------------------------------------------------------------------------------

def receipt_number(purchase: SmsPurchase) -> str | None:
    return f"SMS-{purchase.number:06d}" if purchase.number is not None else None


def compute_tax(subtotal: int, rate_bp: int) -> int:
    """Tax in minor units, rounded half up (integers only)."""
    return (subtotal * rate_bp + 5_000) // 10_000


def create_purchase(session: Session, data: schemas.PurchaseCreate, *, actor: Actor) -> SmsPurchase:
    """Buy SMS credits for the pool or a user. Decides and records a pending purchase (audited); once
    the caller's transaction has committed, the payment method is charged outside it and the outcome
    recorded (`complete_purchase`), and the returned object then shows it. The credits are granted (a
    pack, source "purchase") only if the method answers paid; pending waits for `settle_purchase`."""
    ws = _workspace(session, actor)
    if data.for_.kind == "user":
        _require_individual(ws)  # shared: purchases go to office pools
    method = payments.get_payment_method(data.payment_method)
    if method is None:
        raise InvalidInput(f"Unknown payment method {data.payment_method!r}; use one of "
                           f"{', '.join(payment_methods_for(actor))}.", code="unknown_payment_method")
    if method.code not in payment_methods_for(actor):
        raise NotPermitted("The test payment stays pending until a master user records its outcome: only master "
                           "users may choose it.", code="payment_method_not_allowed")
    holder = authorize_purchase(session, actor, data.for_)
    settings = sms_settings(ws)
    subtotal = settings["unit_price"] * data.quantity
    tax = compute_tax(subtotal, settings["tax_rate_bp"])
    purchase = SmsPurchase(
        id=new_id("smsp"), workspace_id=ws.id, number=None, status="pending", for_kind=holder.kind,
        for_id=holder.id, quantity=data.quantity, currency=settings["currency"], unit_price=settings["unit_price"],
        subtotal=subtotal, tax_rate_bp=settings["tax_rate_bp"], tax_label=settings["tax_label"], tax=tax,
        total=subtotal + tax, billing=data.billing.model_dump(mode="json"), seller=settings["seller"],
        payment_method=method.code, actor_id=actor.user_id, created_at=clock.now(),
        charge_due_at=clock.now() + _call_lease(1), charge_attempts=1)
    session.add(purchase)
    session.flush()
    audit.record(session, actor=actor, action="sms_purchase.create", object_type="sms_purchase",
                 object_id=purchase.id, after=snapshot(purchase))
    _after_commit(session, purchase, lambda db, purchase_id: complete_purchase(db, purchase_id, actor=actor))
    return purchase


def complete_purchase(db: Database, purchase_id: str, *, actor: Actor | None = None) -> SmsPurchase | None:
    """Charge a purchase whose charge is due, outside any transaction, then record the outcome in a
    short transaction of its own. Run after `create_purchase` committed, and by the recovery job
    (`complete_due_calls`) for a purchase whose request died first. The gateway gets the same
    idempotency key every time, so a second call charges nothing more; the outcome is recorded once
    (the first answer recorded wins). Returns the purchase as it now is (None if there is none)."""
    purchase = _detached(db, SmsPurchase, purchase_id)
    if purchase is None or purchase.charge_due_at is None:
        return purchase
    method = payments.get_payment_method(purchase.payment_method)
    if method is None:
        result = payments.PaymentResult(status="failed", error=f"The payment method {purchase.payment_method!r} "
                                                               "is no longer available.")
    else:
        try:
            result = method.charge(purchase, idempotency_key=external_idempotency_key(purchase.id))
        except Exception as exc:  # a gateway error is a failed payment, never credits
            log.exception("payment method %s raised for purchase %s", method.code, purchase.id)
            result = payments.PaymentResult(status="failed", error=f"The payment could not be completed ({exc}).")
    return db.write(lambda session: _record_charge(session, purchase_id, result, actor=actor))


def _record_charge(session: Session, purchase_id: str, result: payments.PaymentResult, *,
                   actor: Actor | None) -> SmsPurchase:
    purchase = session.execute(select(SmsPurchase).where(SmsPurchase.id == purchase_id).with_for_update()
                               ).scalar_one()
    if purchase.charge_due_at is None or purchase.status != "pending":
        return purchase  # recorded already: by a concurrent recovery, or a master's settle_purchase
    purchase.charge_due_at = None
    _apply_payment(session, purchase, result, actor=actor or Actor.system(purchase.workspace_id))
    return purchase


def _next_number(session: Session, workspace_id: str) -> int:
    # The workspace row is the lock: receipt numbers stay sequential and unique under concurrent purchases.
    session.execute(select(Workspace.id).where(Workspace.id == workspace_id).with_for_update())
    last = session.scalar(select(func.max(SmsPurchase.number)).where(SmsPurchase.workspace_id == workspace_id))
    return (last or 0) + 1


def _apply_payment(session: Session, purchase: SmsPurchase, result: payments.PaymentResult, *,
                   actor: Actor) -> None:
    if result.status == "pending":
        purchase.payment_reference = result.reference
        return
    before = snapshot(purchase)
    if result.status != "paid":
        purchase.status = "failed"
        purchase.payment_reference = result.reference
        purchase.failure_reason = result.error or "The payment failed."
        audit.record(session, actor=actor, action="sms_purchase.payment_failed", object_type="sms_purchase",
                     object_id=purchase.id, before=before, after=snapshot(purchase))
        return
    ct = sms_credit_type(session, purchase.workspace_id)
    purchase.number = _next_number(session, purchase.workspace_id)
    pack = packs.grant_pack(session, cs.PackCreate(
        holder=cs.Holder(kind=purchase.for_kind, id=None if purchase.for_kind == "workspace" else purchase.for_id),
        credit_type=ct.code, quantity=purchase.quantity, name=f"SMS credits, receipt {receipt_number(purchase)}",
        price_paid=purchase.subtotal, currency=purchase.currency, is_paid=purchase.subtotal > 0, source="purchase",
        external_ref=purchase.id), actor=actor, purchase_id=purchase.id)
    purchase.status = "paid"
    purchase.pack_id = pack.id
    purchase.payment_reference = result.reference
    purchase.paid_at = clock.now()
    audit.record(session, actor=actor, action="sms_purchase.paid", object_type="sms_purchase",
                 object_id=purchase.id, before=before, after=snapshot(purchase))


def settle_purchase(session: Session, purchase_id: str, data: schemas.PaymentOutcome, *,
                    actor: Actor) -> SmsPurchase:
    """Record the outcome of a pending payment (a gateway callback, or a master confirming a bank
    transfer). Paid grants the credits and issues the receipt; failed never does."""
    require_master(actor, "record the outcome of an SMS credit payment")
    purchase = get_in_workspace(session, SmsPurchase, actor.workspace_id, purchase_id, label="SMS purchase",
                                for_update=True)
    if purchase.status != "pending":
        raise Conflict(f"This purchase is already {purchase.status}.", code="purchase_not_pending")
    purchase.charge_due_at = None  # the outcome recorded here wins: the payment method is not charged after it
    _apply_payment(session, purchase, payments.PaymentResult(
        status=data.status, reference=data.reference or purchase.payment_reference, error=data.reason), actor=actor)
    return purchase


def _purchase_visible(session: Session, actor: Actor, purchase: SmsPurchase) -> bool:
    if actor.is_master or (actor.user_id is not None and purchase.actor_id == actor.user_id):
        return True
    return purchase.for_kind == "user" and scope_of(session, actor).covers(purchase.for_id)


def get_purchase(session: Session, purchase_id: str, *, actor: Actor) -> SmsPurchase:
    purchase = get_in_workspace(session, SmsPurchase, actor.workspace_id, purchase_id, label="SMS purchase")
    if not _purchase_visible(session, actor, purchase):
        # Not admitted to exist: a 403 would confirm the id.
        raise NotFound(f"No SMS purchase with id {purchase_id!r} in this workspace.", object_id=purchase_id)
    return purchase


def list_purchases(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None,
                   status: str | Sequence[str] | None = None) -> Page[SmsPurchase]:
    stmt = select(SmsPurchase).where(SmsPurchase.workspace_id == actor.workspace_id)
    scope = scope_of(session, actor)
    if scope.kind != "master":
        stmt = stmt.where(or_(SmsPurchase.actor_id == actor.user_id,
                              and_(SmsPurchase.for_kind == "user", SmsPurchase.for_id.in_(scope.user_ids))))
    if status:
        stmt = stmt.where(one_of(SmsPurchase.status, status))
    return paginate(session, stmt, id_column=SmsPurchase.id, limit=limit, cursor=cursor, descending=True)


def purchase_out(purchase: SmsPurchase) -> schemas.PurchaseOut:
    return schemas.PurchaseOut(
        id=purchase.id, number=purchase.number, receipt_number=receipt_number(purchase), status=purchase.status,
        for_={"kind": purchase.for_kind, "id": purchase.for_id}, quantity=purchase.quantity,
        currency=purchase.currency, unit_price=purchase.unit_price, subtotal=purchase.subtotal,
        tax_rate_bp=purchase.tax_rate_bp, tax_label=purchase.tax_label, tax=purchase.tax, total=purchase.total,
        billing=purchase.billing, seller=purchase.seller, payment_method=purchase.payment_method,
        payment_reference=purchase.payment_reference, failure_reason=purchase.failure_reason,
        pack_id=purchase.pack_id,
        receipt_url=f"/v1/sms/purchases/{purchase.id}/receipt.pdf" if purchase.status == "paid" else None,
        created_by=purchase.actor_id, created_at=purchase.created_at, paid_at=purchase.paid_at)


def purchase_receipt(session: Session, purchase_id: str, *, actor: Actor) -> tuple[str, bytes]:
    """The tax invoice / receipt PDF of a paid purchase: (file name, bytes)."""
    from creditdesk.sms.receipts import render_receipt

    purchase = get_purchase(session, purchase_id, actor=actor)
    if purchase.status != "paid":
        raise Conflict(f"This purchase is {purchase.status}: its tax invoice / receipt is issued once the payment "
                       "succeeds.", code="receipt_not_available")
    buyer = session.get(User, purchase.actor_id) if purchase.actor_id else None
    number = receipt_number(purchase)
    pdf = render_receipt(purchase, account_name=holder_name(session, purchase.for_kind, purchase.for_id),
                         number=number, buyer_name=buyer.name if buyer else None)
    return f"receipt-{number}.pdf", pdf


def holder_name(session: Session, kind: str, holder_id: str) -> str:
    """An SMS account's name, the same on every screen, CSV, receipt and message."""
    if kind == "workspace":
        return POOL_NAME
    if kind == "office":
        from creditdesk.parties.models import Office

        office = session.get(Office, holder_id)
        return f"{office.name} (office pool)" if office is not None else holder_id
    user = session.get(User, holder_id)
    return user.name if user is not None else holder_id


# --- transfers -------------------------------------------------------------------------------------

def transfer(session: Session, data: schemas.SmsTransferCreate, *, actor: Actor) -> transfers.TransferResult:
    """Move SMS credits between the pool and users, by the rules of seed 003."""
    if not data.agree_to_conditions:
        raise InvalidInput("Agree to the transfer conditions to transfer SMS credits "
                           "(agree_to_conditions: true; the conditions are in GET /v1/sms/settings).",
                           code="conditions_not_agreed", conditions=TRANSFER_CONDITIONS)
    ws = _workspace(session, actor)
    source, _ = _account(session, actor, data.from_)
    to, _ = _account(session, actor, data.to)
    ct = sms_credit_type(session, ws.id)
    request = cs.TransferRequest.model_validate({
        "from": {"kind": source.kind, "id": None if source.kind == "workspace" else source.id},
        "to": {"kind": to.kind, "id": None if to.kind == "workspace" else to.id},
        "credit_type": ct.code, "amount": data.quantity, "memo": data.memo})
    shared = governance.is_shared_mode(session, ws.id)
    check = governance.check_transfer_shared if shared else authorize_transfer
    try:
        result = transfers.transfer_credits(session, request, actor=actor,
                                          authorize=lambda s, a, src, dst, _ct: check(s, a, src, dst))
    except InsufficientCredits as exc:
        available, requested = exc.details.get("available", 0), exc.details.get("requested", data.quantity)
        raise InsufficientCredits(
            f"Not enough SMS credits to transfer: {holder_name(session, source.kind, source.id)} has "
            f"{available:,} available, {requested:,} requested. Nothing was transferred.",
            available=available, requested=requested) from None
    audit.record(session, actor=actor, action="sms_transfer.create", object_type="credit_transfer",
                 object_id=result.transfer.id,
                 after={"from": source.as_dict(), "to": to.as_dict(), "quantity": data.quantity,
                        "agreed_to_conditions": TRANSFER_CONDITIONS, "memo": data.memo})
    return result


# --- sending ---------------------------------------------------------------------------------------

def send_message(session: Session, data: schemas.MessageCreate, *, actor: Actor,
                 sender: SmsSender | None = None) -> SmsMessage:
    """Send an SMS paid by the sending user's own credits: one credit per segment.

    The credits are held first (no credits: InsufficientCredits, nothing sent) and the message is
    recorded as "sending" (audited). Once the caller's transaction has committed, the sender backend is
    called outside it (`complete_message`): accepted captures the hold, refused (or an exception)
    releases it and keeps the message as failed; the returned object then shows the outcome."""
    if actor.user_id is None:
        raise InvalidInput("A message is sent by a user (their own credits pay); use a user's API key.",
                           code="sender_required")
    refusal = sending_refusal(session, actor)
    if refusal and not actor.has("send_sms"):
        raise NotPermitted(refusal, code="not_permitted")
    ws = _workspace(session, actor)
    shared = governance.is_shared_mode(session, ws.id)
    user = get_in_workspace(session, User, actor.workspace_id, actor.user_id)
    if refusal:
        raise CreditsFrozen(refusal, user_id=user.id)
    if data.on_behalf_of_user_id:
        get_in_workspace(session, User, actor.workspace_id, data.on_behalf_of_user_id)
    count = count_segments(data.body)
    if count.segments > MAX_SEGMENTS:
        raise InvalidInput(f"The message takes {count.segments} segments; at most {MAX_SEGMENTS} are sent.",
                           code="message_too_long", segments=count.segments, max_segments=MAX_SEGMENTS)
    sender = sender or current_sender()
    ct = find_sms_credit_type(session, ws.id)
    if ct is None:
        raise _no_credits(0, count.segments)
    now = clock.now()
    message = SmsMessage(
        id=new_id("msg"), workspace_id=ws.id, sender_user_id=user.id, on_behalf_of_user_id=data.on_behalf_of_user_id,
        api_key_id=actor.api_key_id, recipient=data.to, body=data.body, encoding=count.encoding, segments=count.segments,
        status="sending", backend=sender.name, credits_charged=0, created_at=now)
    session.add(message)
    session.flush()
    spender = _with_permission(actor, "consume_credits")
    # Individual: the sender's own credits. Shared: the sender's office pool, then the workspace pool.
    payers = [cs.Context(kind="user", id=user.id)] if not shared else [
        *([cs.Context(kind="office", id=user.primary_office_id)] if user.primary_office_id else []),
        cs.Context(kind="workspace", id=None)]
    available = 0
    for n, payer in enumerate(payers):
        try:
            hold = holds.create_hold(session, cs.HoldRequest(
                context=payer, credit_type=ct.code, amount=count.segments,
                reference=cs.ReferenceIn(kind="sms_message", id=message.id), timeout_seconds=HOLD_TIMEOUT_SECONDS),
                actor=spender)
            break
        except InsufficientCredits as exc:
            available = max(available, exc.details.get("available", 0))
            if n == len(payers) - 1:
                raise _no_credits(available, count.segments) from exc
    message.hold_id = hold.id
    message.send_due_at = now + _call_lease(1)
    message.send_attempts = 1
    session.flush()
    audit.record(session, actor=actor, action="sms_message.create", object_type="sms_message",
                 object_id=message.id, after=snapshot(message))
    _after_commit(session, message, lambda db, message_id: complete_message(db, message_id, actor=actor,
                                                                            sender=sender))
    return message


def sending_refusal(session: Session, actor: Actor) -> str | None:
    """Why this actor may not send SMS, in words a person reads, with who can change it (None: they may). The
    rule send_message applies, so Send SMS offers the form only to those it will accept."""
    if actor.user_id is None:
        return "A message is sent by a user (their own credits pay); use a user's API key."
    user = session.get(User, actor.user_id)
    if user is not None and user.workspace_id == actor.workspace_id and actor.has("send_sms") and may_send_sms(user):
        return None
    if user is None or not user.is_active:
        return "You may not send SMS: your user is deactivated."
    text = "You may not send SMS: you do not have permission to send SMS."
    helpers = [u.name for u in governance.who_can_allow_sending(session, actor.workspace_id, user)]
    if helpers:
        text += f" {_and(helpers)} can give it to you (Users page)."
    else:
        text += " A master user can give it to you (Users page)."
    if not governance.is_shared_mode(session, actor.workspace_id):
        text += " Any SMS credits you hold are frozen until transferred to a user who may send."
    return text


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def complete_message(db: Database, message_id: str, *, actor: Actor | None = None,
                     sender: SmsSender | None = None) -> SmsMessage | None:
    """Hand a message whose sending is due to the sender backend, outside any transaction, then record
    the outcome in a short transaction of its own (capture or release the hold). Run after
    `send_message` committed, and by the recovery job for a message whose request died first: the
    backend gets the same idempotency key every time, and the outcome is recorded once. A message whose
    hold lapsed meanwhile is not handed over (a late SMS is worse than none): it fails, charging nothing."""
    message = _detached(db, SmsMessage, message_id)
    if message is None or message.send_due_at is None:
        return message
    sender = sender or current_sender()
    hold = _detached(db, Hold, message.hold_id) if message.hold_id else None
    if hold is None or hold.status != "pending" or clock.now() >= hold.timeout_at:
        result = SendResult(accepted=False, error="The message was not handed to the SMS backend before its "
                                                  "credit hold lapsed.")
    else:
        try:
            result = sender.send(message, idempotency_key=external_idempotency_key(message.id))
        except Exception as exc:
            log.exception("SMS backend %s raised for message %s", sender.name, message.id)
            result = SendResult(accepted=False, error=f"The SMS backend failed: {exc}")
    return db.write(lambda session: _record_send(session, message_id, result, backend=sender.name, actor=actor))


def _record_send(session: Session, message_id: str, result: SendResult, *, backend: str,
                 actor: Actor | None) -> SmsMessage:
    message = session.execute(select(SmsMessage).where(SmsMessage.id == message_id).with_for_update()).scalar_one()
    if message.send_due_at is None or message.status != "sending":
        return message  # recorded already, by a concurrent recovery
    hold = session.get(Hold, message.hold_id)
    if actor is None:
        # The recovery job: the hold is the sender's own (a message is always paid by its sender), so its
        # capture or release is the sender's act, as it would have been in the request.
        actor = (parties.actor_for_user(session, session.get(User, hold.context_id))
                 if hold.context_kind == "user" and hold.context_id else Actor.system(message.workspace_id))
    spender = _with_permission(actor, "consume_credits")
    message.send_due_at = None
    message.backend = backend
    if result.accepted:
        message.status = "accepted"
        message.provider_reference = result.provider_reference
        message.sent_at = clock.now()
        try:
            with session.begin_nested():
                holds.capture_hold(session, hold.id, cs.CaptureRequest(), actor=spender)
            message.credits_charged = message.segments
        except (HoldNotPending, HoldExpired):
            # The backend took longer than the hold lives: the SMS is out, and free. Rare, and logged.
            log.warning("SMS message %s was accepted after its hold %s lapsed; nothing charged", message.id, hold.id)
        action = "sms_message.send"
    else:
        if hold is not None and hold.status == "pending":
            try:
                with session.begin_nested():
                    holds.release_hold(session, hold.id, actor=spender, timed_out=clock.now() >= hold.timeout_at)
            except HoldNotPending:
                pass  # the hold-timeout job released it meanwhile: nothing is charged either way
        message.status = "failed"
        message.failure_reason = result.error or "The SMS backend refused the message."
        action = "sms_message.fail"
    audit.record(session, actor=actor, action=action, object_type="sms_message", object_id=message.id,
                 before={"status": "sending"}, after=snapshot(message))
    return message


def _no_credits(available: int, needed: int) -> InsufficientCredits:
    return InsufficientCredits(
        f"Not enough SMS credits: you have {available} available and this message needs {needed} "
        f"(one per segment). Buy SMS credits or ask for a transfer; nothing was sent.",
        available=available, requested=needed)


def message_out(message: SmsMessage) -> schemas.MessageOut:
    return schemas.MessageOut(
        id=message.id, to=message.recipient, body=message.body, encoding=message.encoding, segments=message.segments,
        status=message.status, backend=message.backend, provider_reference=message.provider_reference,
        failure_reason=message.failure_reason, sender_user_id=message.sender_user_id,
        on_behalf_of_user_id=message.on_behalf_of_user_id, hold_id=message.hold_id,
        credits_charged=message.credits_charged, created_at=message.created_at, sent_at=message.sent_at)


def _message_filter(session: Session, actor: Actor):
    scope = scope_of(session, actor)
    if scope.kind == "master":
        return None
    if scope.kind == "office":
        return SmsMessage.sender_user_id.in_(scope.user_ids)
    return or_(SmsMessage.sender_user_id == actor.user_id, SmsMessage.on_behalf_of_user_id == actor.user_id)


def list_messages(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None,
                  status: str | Sequence[str] | None = None, sender_user_id: str | None = None) -> Page[SmsMessage]:
    """The outbox: messages the viewer may see (master: all; office managers: their offices' users';
    others: their own and those sent on their behalf), newest first."""
    stmt = select(SmsMessage).where(SmsMessage.workspace_id == actor.workspace_id)
    cond = _message_filter(session, actor)
    if cond is not None:
        stmt = stmt.where(cond)
    if status:
        stmt = stmt.where(one_of(SmsMessage.status, status))
    if sender_user_id:
        stmt = stmt.where(SmsMessage.sender_user_id == sender_user_id)
    return paginate(session, stmt, id_column=SmsMessage.id, limit=limit, cursor=cursor, descending=True)


def get_message(session: Session, message_id: str, *, actor: Actor) -> SmsMessage:
    message = get_in_workspace(session, SmsMessage, actor.workspace_id, message_id, label="message")
    cond = _message_filter(session, actor)
    if cond is not None and session.scalar(select(SmsMessage.id).where(SmsMessage.id == message.id, cond)) is None:
        raise NotFound(f"No message with id {message_id!r} in this workspace.", object_id=message_id)
    return message


# --- the "Manage SMS credits" box --------------------------------------------------------------------

def _balances(session: Session, ct: CreditType | None, holders: list[HolderRef] | None,
              workspace_id: str) -> dict[tuple[str, str], list[int]]:
    """(kind, id) -> [available, held] for the given holders (None: every pool and user holder)."""
    if ct is None:
        return {}
    now = clock.now()
    stmt = (select(Pack.holder_kind, Pack.holder_id, Pack.status, Pack.starts_at, Pack.expires_at, LedgerAccount)
            .join(LedgerAccount, LedgerAccount.id == Pack.ledger_account_id)
            .where(Pack.workspace_id == workspace_id, Pack.credit_type_id == ct.id,
                   Pack.status.in_(("active", "expired", "voided")),
                   Pack.holder_kind.in_(("workspace", "user", "office"))))
    if holders is not None:
        users = [h.id for h in holders if h.kind == "user"]
        offices = [h.id for h in holders if h.kind == "office"]
        conds = [and_(Pack.holder_kind == "user", Pack.holder_id.in_(users))] if users else []
        if offices:
            conds.append(and_(Pack.holder_kind == "office", Pack.holder_id.in_(offices)))
        if any(h.kind == "workspace" for h in holders):
            conds.append(Pack.holder_kind == "workspace")
        if not conds:
            return {}
        stmt = stmt.where(or_(*conds))
    out: dict[tuple[str, str], list[int]] = {}
    for kind, holder_id, status, starts_at, expires_at, account in session.execute(stmt):
        totals = out.setdefault((kind, holder_id), [0, 0])
        if is_live(status, starts_at, expires_at, now):
            totals[0] += account.available
        totals[1] += account.debits_pending
    return out


def list_accounts(session: Session, *, actor: Actor) -> list[schemas.SmsAccountOut]:
    """What the viewer sees in the Manage SMS credits box, with what they may do on each row.

    master: the pool and every staff user with send_sms; office manager (manage_office_credits): the
    staff with send_sms of their offices, no pool; others: themselves and their team members with send_sms.
    Masters and office managers also see users of their reach who hold frozen credits (send_sms removed,
    or deactivated), so the credits can be transferred away: the seed requires that before they are used."""
    ws = _workspace(session, actor)
    scope = scope_of(session, actor)
    ct = find_sms_credit_type(session, ws.id)
    if governance.is_shared_mode(session, ws.id):
        return _shared_accounts(session, actor, ws, scope, ct)
    stmt = select(User).where(User.workspace_id == ws.id)
    if scope.kind != "master":
        stmt = stmt.where(User.id.in_(scope.user_ids))
    users = list(session.scalars(stmt))
    holders = None if scope.kind == "master" else [HolderRef("user", u.id) for u in users]
    balances = _balances(session, ct, holders, ws.id)
    rows: list[schemas.SmsAccountOut] = []
    if scope.kind == "master":
        available, held = balances.get(("workspace", ws.id), [0, 0])
        rows.append(schemas.SmsAccountOut(
            kind="workspace", id=ws.id, name=holder_name(session, "workspace", ws.id), email=None, is_self=False,
            is_active=True, can_send_sms=False, available=available, held=held, frozen=0,
            actions=["purchase", "transfer_to", "transfer_from", "logs"]))
    people = []
    for user in users:
        is_self = user.id == actor.user_id
        can_send = may_send_sms(user)
        available, held = balances.get(("user", user.id), [0, 0])
        holds_credits = available > 0 or held > 0
        if scope.kind == "team":
            visible = is_self or can_send
        else:
            visible = is_self or (user.is_staff and can_send) or holds_credits
        if not visible:
            continue
        actions = []
        if scope.kind == "team":
            if can_send:
                actions.append("purchase")
            if not is_self and can_send:
                actions.append("transfer_to")
            if is_self:
                actions.append("transfer_from")
        else:
            if can_send:
                actions += ["purchase", "transfer_to"]
            actions.append("transfer_from")
        actions.append("logs")
        people.append(schemas.SmsAccountOut(
            kind="user", id=user.id, name=user.name, email=user.email, is_self=is_self, is_active=user.is_active,
            can_send_sms=can_send, available=available if can_send else 0, held=held,
            frozen=0 if can_send else available, actions=actions))
    people.sort(key=lambda a: (not a.is_self, a.name.lower(), a.id))
    return rows + people + _leftover_pools(session, actor, ws, scope, ct)


def _leftover_pools(session: Session, actor: Actor, ws: Workspace, scope, ct) -> list[schemas.SmsAccountOut]:
    """Individual mode: office pools still holding credits from the shared mode, for those who may move them
    (governance.check_leftover_pool_transfer: master users, office managers for their offices). Their credits
    are frozen (not spent in this mode) until moved to the workspace pool or a user who may send SMS."""
    from creditdesk.parties.models import Office

    if scope.kind == "team":
        return []
    balances = {key: value for key, value in _balances(session, ct, None, ws.id).items()
                if key[0] == "office" and (value[0] or value[1])}
    if not balances:
        return []
    offices = session.scalars(select(Office).where(Office.workspace_id == ws.id, Office.customer_id.is_(None),
                                                   Office.id.in_([key[1] for key in balances]))
                              .order_by(Office.name, Office.id))
    rows = []
    for office in offices:
        if scope.kind != "master" and office.id not in scope.office_ids:
            continue
        available, held = balances[("office", office.id)]
        rows.append(schemas.SmsAccountOut(
            kind="office", id=office.id, name=office.name, email=office.email, is_self=False, is_active=True,
            can_send_sms=False, available=0, held=held, frozen=available, leftover=True,
            actions=["transfer_from", "logs"]))
    return rows


def leftover_credits(session: Session, *, actor: Actor) -> list[schemas.SmsAccountOut]:
    """The SMS accounts of the viewer's reach whose credits need someone to move them: credits left over from
    the other mode (office pools in individual mode, users' own credits in shared mode) and users' frozen
    credits (send_sms removed, deactivated). What the home page counts as needing attention."""
    return [row for row in list_accounts(session, actor=actor) if row.frozen and "transfer_from" in row.actions]


def _shared_accounts(session: Session, actor: Actor, ws: Workspace, scope, ct) -> list[schemas.SmsAccountOut]:
    """Shared office SMS credits: the pool (master users), the business's offices in the viewer's reach (every
    one for a master, their own for others), and users still holding credits from the individual mode (to be
    moved into a pool by those who may)."""
    from creditdesk.parties.models import Office

    offices = list(session.scalars(select(Office).where(Office.workspace_id == ws.id, Office.customer_id.is_(None))
                                   .order_by(Office.name, Office.id)))
    if scope.kind != "master":
        offices = [o for o in offices if o.id in scope.office_ids]
    balances = _balances(session, ct, None, ws.id)
    rows: list[schemas.SmsAccountOut] = []
    if scope.kind == "master":
        available, held = balances.get(("workspace", ws.id), [0, 0])
        rows.append(schemas.SmsAccountOut(
            kind="workspace", id=ws.id, name=holder_name(session, "workspace", ws.id), email=None, is_self=False,
            is_active=True, can_send_sms=False, available=available, held=held, frozen=0,
            actions=["purchase", "transfer_to", "transfer_from", "logs"]))
    manages = scope.kind == "master" or actor.has("manage_office_credits")
    for office in offices:
        available, held = balances.get(("office", office.id), [0, 0])
        actions = (["purchase", "transfer_to", "transfer_from"] if manages else []) + ["logs"]
        rows.append(schemas.SmsAccountOut(
            kind="office", id=office.id, name=office.name, email=office.email, is_self=False, is_active=True,
            can_send_sms=True, available=available, held=held, frozen=0, actions=actions))
    if manages:
        users = {u.id: u for u in session.scalars(select(User).where(User.workspace_id == ws.id))}
        for (kind, holder_id), (available, held) in sorted(balances.items()):
            user = users.get(holder_id)
            if kind != "user" or user is None or not (available or held) or not scope.covers(holder_id):
                continue
            rows.append(schemas.SmsAccountOut(
                kind="user", id=user.id, name=user.name, email=user.email, is_self=user.id == actor.user_id,
                is_active=user.is_active, can_send_sms=False, available=0, held=held, frozen=available,
                leftover=True, actions=["transfer_from", "logs"]))
    return rows


def shared_payers(session: Session, actor: Actor) -> list[tuple[str, int]]:
    """Shared mode: what pays the actor's messages, in order, with what each has available: their office's pool,
    then the workspace pool."""
    ct = find_sms_credit_type(session, actor.workspace_id)
    user = session.get(User, actor.user_id) if actor.user_id else None
    balances = _balances(session, ct, None, actor.workspace_id)
    out = []
    if user is not None and user.primary_office_id:
        out.append((holder_name(session, "office", user.primary_office_id),
                    balances.get(("office", user.primary_office_id), [0, 0])[0]))
    out.append((holder_name(session, "workspace", actor.workspace_id),
                balances.get(("workspace", actor.workspace_id), [0, 0])[0]))
    return out


def get_account(session: Session, *, actor: Actor, kind: str, account_id: str | None) -> schemas.SmsAccountOut:
    target = actor.workspace_id if kind == "workspace" else account_id
    for row in list_accounts(session, actor=actor):
        if row.kind == kind and row.id == target:
            return row
    raise NotFound("No SMS account you may manage with this id.", object_id=account_id or kind)


# --- logs (last 30 days) -------------------------------------------------------------------------------

MOVEMENTS = {("transfer", "in"): "transfer_in", ("transfer", "out"): "transfer_out", ("consume", "out"): "consumed",
             ("reversal", "in"): "reversal", ("expire", "out"): "expired", ("void", "out"): "voided"}


def _log_holders(session: Session, actor: Actor, account: str | None) -> list[HolderRef] | None:
    """Whose movements the viewer reads (None: every SMS holder of the workspace, for a master).

    The logs follow the viewer's scope, not what the Manage SMS credits box shows now: a user whose
    credits were all moved away leaves the box, but both sides of that transfer stay in "all my
    accounts" (a master's, or an office manager's for the users of their offices)."""
    scope = scope_of(session, actor)
    wanted = None
    if account is not None:
        wanted = (HolderRef("workspace", actor.workspace_id) if account == "workspace" else
                  HolderRef("office", account) if account.startswith("off_") else HolderRef("user", account))
    if scope.kind == "master":
        return None if wanted is None else [wanted]
    reach = [HolderRef(a.kind, a.id) for a in list_accounts(session, actor=actor) if "logs" in a.actions]
    if scope.kind == "office":
        reach += [HolderRef("user", uid) for uid in sorted(scope.user_ids) if HolderRef("user", uid) not in reach]
    if wanted is None:
        return reach
    if wanted not in reach:
        raise NotPermitted("You may view the logs only of SMS accounts you manage.", code="not_permitted")
    return [wanted]


def list_logs(session: Session, *, actor: Actor, account: str | None = None, limit: int | None = None,
              cursor: str | None = None) -> Page[schemas.SmsLogEntry]:
    """Every incoming and outgoing SMS credit movement of the last 30 days (by the clock) of one
    account ("workspace" for the pool, an office or a user id), or of every account the viewer manages. Newest
    first. Holds are not movements; a sent message shows when its hold is captured.

    One line per movement and account: a transfer that took credits from eight packs is one line on each side
    (its sum and its memo), a message paid from two packs one line; which packs paid is in the packs' history.
    The grouping is done by the database (one statement, keyset-paginated on the group's last ledger row), so
    a movement never straddles two pages."""
    holders = _log_holders(session, actor, account)
    ct = find_sms_credit_type(session, actor.workspace_id)
    if ct is None or holders == []:
        return Page(items=[], next_cursor=None)
    since = clock.now() - timedelta(days=LOG_DAYS)
    t = LedgerTransfer
    if holders is None:  # a master's "all accounts": every SMS holder (users, offices and the pool)
        conds = [Pack.holder_kind.in_(("user", "workspace", "office"))]
    else:
        users = [h.id for h in holders if h.kind == "user"]
        offices = [h.id for h in holders if h.kind == "office"]
        conds = [and_(Pack.holder_kind == "user", Pack.holder_id.in_(users))] if users else []
        if offices:
            conds.append(and_(Pack.holder_kind == "office", Pack.holder_id.in_(offices)))
        if any(h.kind == "workspace" for h in holders):
            conds.append(Pack.holder_kind == "workspace")
    # What makes one movement: a grant is its own (one pack each); a transfer or a consumption is its ledger
    # operation; a message's capture (no operation id) is its message; anything else its ledger row.
    movement_key = case((t.code == "grant", t.id), (t.operation_id.is_not(None), t.operation_id),
                        (t.reference_kind == "sms_message", t.reference_id), else_=t.id)
    direction = case((Pack.ledger_account_id == t.debit_account_id, "out"), else_="in")
    legs = (select(t.id.label("ledger_id"), t.code.label("code"), movement_key.label("movement_key"),
                   direction.label("direction"), Pack.holder_kind.label("holder_kind"),
                   Pack.holder_id.label("holder_id"), Pack.id.label("pack_id"), t.amount.label("amount"),
                   t.created_at.label("at"), t.actor_id.label("actor_id"), t.reference_kind.label("reference_kind"),
                   t.reference_id.label("reference_id"))
            .join(Pack, or_(Pack.ledger_account_id == t.debit_account_id, Pack.ledger_account_id == t.credit_account_id))
            .where(t.workspace_id == actor.workspace_id, Pack.workspace_id == actor.workspace_id,
                   Pack.credit_type_id == ct.id, t.phase.in_((POSTED, POST_PENDING)), t.created_at >= since,
                   or_(*conds))).subquery()
    g = legs.c
    grouped = (select(g.movement_key, g.code, g.direction, g.holder_kind, g.holder_id,
                      func.max(g.ledger_id).label("last_id"), func.max(g.pack_id).label("last_pack"),
                      func.min(g.pack_id).label("first_pack"), func.sum(g.amount).label("quantity"),
                      func.max(g.at).label("at"), func.max(g.actor_id).label("actor_id"),
                      func.max(g.reference_kind).label("reference_kind"), func.max(g.reference_id).label("reference_id"))
               .group_by(g.movement_key, g.code, g.direction, g.holder_kind, g.holder_id)).subquery()
    # (last ledger row, last pack) is unique per line: the two sides of a transfer share the ledger rows but
    # never a pack; the receiving side's packs are the newer, so it comes first, as it always did.
    page = paginate(session, select(grouped), id_column=grouped.c.last_pack, sort_column=grouped.c.last_id,
                    limit=limit, cursor=cursor, descending=True, row_key=lambda row: (row.last_id, row.last_pack))
    return Page(items=_log_entries(session, page.items), next_cursor=page.next_cursor)


MOVEMENT_WORDS = {"transfer": "Transfer", "consume": "Consumption", "capture": "Consumption", "expire": "Expiry",
                  "void": "Pack voided", "reversal": "Returned"}


def _log_entries(session: Session, rows: list) -> list[schemas.SmsLogEntry]:
    from creditdesk.credits.models import CreditTransfer

    def ids_of(kind: str) -> set[str]:
        return {r.reference_id for r in rows if r.reference_kind == kind and r.reference_id}

    xfers = {x.id: x for x in session.scalars(select(CreditTransfer).where(
        CreditTransfer.id.in_(ids_of("credit_transfer"))))} if ids_of("credit_transfer") else {}
    grant_packs = {r.first_pack for r in rows if r.code == "grant"}
    granted = {p.id: p for p in session.scalars(select(Pack).where(Pack.id.in_(grant_packs)))} if grant_packs else {}
    purchase_ids = {p.external_ref for p in granted.values() if p.external_ref}
    purchases = {p.id: p for p in session.scalars(select(SmsPurchase).where(
        SmsPurchase.id.in_(purchase_ids)))} if purchase_ids else {}
    message_ids = ids_of("sms_message")
    recipients = dict(session.execute(select(SmsMessage.id, SmsMessage.recipient).where(
        SmsMessage.id.in_(message_ids))).all()) if message_ids else {}
    actor_ids = {r.actor_id for r in rows if r.actor_id}
    names = dict(session.execute(select(User.id, User.name).where(User.id.in_(actor_ids))).all()) if actor_ids else {}
    label_cache: dict[tuple[str, str], str] = {}

    def party(kind: str, holder_id: str) -> schemas.Party:
        key = (kind, holder_id)
        if key not in label_cache:
            label_cache[key] = holder_name(session, kind, holder_id)
        return schemas.Party(kind=kind, id=holder_id, name=label_cache[key])

    out = []
    for r in rows:
        counterparty = memo = None
        reference_kind, reference_id = r.reference_kind, r.reference_id
        reference = MOVEMENT_WORDS.get(r.code, r.code.replace("_", " ").capitalize())
        if r.code == "grant":
            pack = granted.get(r.first_pack)
            # A purchase only if the pack is its purchase's own (granted by the paid purchase, under the
            # purchase's internal key): a pack claiming source purchase otherwise is a grant.
            bought = pack is not None and pack.source == "purchase" and pack.external_ref is not None and \
                pack.internal_key == f"sms_purchase:{pack.external_ref}"
            movement = "purchase" if bought else "grant"
            if bought:
                reference_kind, reference_id = "sms_purchase", pack.external_ref
                purchase = purchases.get(pack.external_ref)
                number = receipt_number(purchase) if purchase is not None else None
                reference = f"Receipt {number}" if number else "Purchase"
            else:
                reference = f"Pack “{pack.name}”" if pack is not None else "Pack"
        elif r.code == "capture":
            movement = "sent" if r.reference_kind == "sms_message" else "consumed"
            if r.reference_kind == "sms_message":
                reference = f"SMS to {recipients[r.reference_id]}" if r.reference_id in recipients else "SMS"
        else:
            movement = MOVEMENTS.get((r.code, r.direction), r.code)
        if r.code == "transfer":
            xfer = xfers.get(r.reference_id)
            if xfer is not None:
                counterparty = (party(xfer.to_holder_kind, xfer.to_holder_id) if r.direction == "out"
                                else party(xfer.from_holder_kind, xfer.from_holder_id))
                memo = xfer.memo or None
                if memo and memo.startswith("Change of holder"):
                    reference = "Change of holder"
        out.append(schemas.SmsLogEntry(
            id=r.movement_key, at=r.at, account=party(r.holder_kind, r.holder_id), direction=r.direction,
            movement=movement, quantity=int(r.quantity), counterparty=counterparty, reference_kind=reference_kind,
            reference_id=reference_id, reference=reference, memo=memo, actor_id=r.actor_id,
            actor_name=names.get(r.actor_id), pack_id=r.first_pack))
    return out


def log_csv_row(entry: schemas.SmsLogEntry) -> list[str]:
    cp = entry.counterparty
    return [entry.at.strftime("%Y-%m-%dT%H:%M:%SZ"), entry.account.kind, entry.account.id, entry.account.name,
            entry.direction, entry.movement, str(entry.quantity), cp.kind if cp else "", cp.id if cp else "",
            cp.name if cp else "", entry.reference, entry.memo or "", entry.reference_kind or "",
            entry.reference_id or "", entry.actor_id or "", entry.actor_name or "", entry.id]


def iter_logs(session: Session, *, actor: Actor, account: str | None = None, batch: int = 500):
    """All log entries of the window, page by page (for the CSV export, which streams)."""
    cursor = None
    while True:
        page = list_logs(session, actor=actor, account=account, limit=batch, cursor=cursor)
        yield from page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor


__all__ = ["LOG_CSV_COLUMNS", "TRANSFER_CONDITIONS", "complete_due_calls", "complete_message", "complete_purchase",
           "create_purchase", "list_accounts", "list_logs", "may_send_sms", "send_message", "settle_purchase",
           "transfer", "update_settings"]
