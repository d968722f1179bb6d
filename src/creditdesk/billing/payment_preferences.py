"""Payment preferences of accounts, their cards, and "charge first" (seed 004).

A preference says how an account pays: `manual`, `bank_transfer`, `card` (through a gateway,
billing.gateways) or `wallet` (billing.wallets). Card and wallet preferences may be opted in for
subscriptions and/or purchases; only those are ever used automatically.

**Cards.** `register_card` hands the gateway's token of a card (made by the gateway's own form, in the
customer's browser) to the gateway, which attaches it to its customer; we keep the gateway's ids, the brand,
the last four digits and the expiry, never a card number. It calls the gateway inside the request: no money
moves, and registering the same token again attaches the same card.

**Charge first.** When a fund-using event (posting an invoice: a purchase; a subscription's: subscriptions)
would take the account over its credit limit, no override rule lets it through, and the account has an
active preference opted in for that kind of event, the preference pays first (`plan_for`):
- a wallet pays, in the same transaction, what it takes to stay within the limit (the whole amount when the
  wallet has it): a wallet payment on the account, then the event posts within the limit and the payment is
  allocated to it (billing.invoices.post_invoice);
- a card is charged the whole amount. The charge is an external call: the posting records a pending
  `gateway_charge` and stops (the invoice stays a draft; the API answers 202); after the commit the gateway is
  charged with the charge's idempotency key, and the outcome recorded in a transaction of its own: on
  success a card payment on the account, then the invoice is posted and the payment allocated to it; on
  failure the invoice stays a draft and the charge says why. `complete_due_charges` (the jobs) makes a
  charge whose request died, with the same key, so the card is charged once.
The spend decision (billing.credit_control.decide_spend) reports the plan as the reason `charge_first`, so the
preview and the action agree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, currencies, external_calls
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import accounts, gateways, invoices, payments, wallets
from creditdesk.billing import invoice_schemas as ins
from creditdesk.billing import wallet_schemas as ws
from creditdesk.billing.models import BillingAccount
from creditdesk.billing.wallet_models import GatewayCharge, PaymentCard, PaymentPreference, Wallet
from creditdesk.db import Database
from creditdesk.errors import Conflict, CreditdeskError, InvalidInput, NotFound
from creditdesk.ids import new_id
from creditdesk.parties.models import Customer
from creditdesk.repository import get_in_workspace

log = logging.getLogger(__name__)

# Which opt-in covers which fund-using event (billing.credit_models.SPEND_EVENTS).
OPT_IN_OF_EVENT = {"invoice_post": "purchases", "purchase": "purchases",
                   "subscription_activate": "subscriptions", "service_add": "subscriptions",
                   "subscription_invoice": "subscriptions"}


# --- preferences and cards -----------------------------------------------------------------------------

# What the wallet's history says a payment made before a posting was for (the event's code stays in the audit row).
PAID_FIRST_WORDS = {"invoice_post": "Paid from the wallet when the invoice was posted",
                    "purchase": "Paid from the wallet for a purchase",
                    "subscription_activate": "Paid from the wallet when the subscription started",
                    "service_add": "Paid from the wallet when a service was added"}


def get_preference(session: Session, workspace_id: str, preference_id: str) -> PaymentPreference:
    return get_in_workspace(session, PaymentPreference, workspace_id, preference_id, label="payment preference")


def preferences_of(session: Session, account_id: str, *, active_only: bool = False) -> list[PaymentPreference]:
    stmt = select(PaymentPreference).where(PaymentPreference.account_id == account_id)
    if active_only:
        stmt = stmt.where(PaymentPreference.active.is_(True))
    return list(session.scalars(stmt.order_by(PaymentPreference.created_at, PaymentPreference.id)))


def cards_of(session: Session, preference_id: str) -> list[PaymentCard]:
    return list(session.scalars(select(PaymentCard).where(PaymentCard.preference_id == preference_id,
                                                          PaymentCard.removed.is_(False))
                                .order_by(PaymentCard.created_at, PaymentCard.id)))


def _check_opt_in(kind: str, subscriptions: bool, purchases: bool) -> None:
    if (subscriptions or purchases) and kind not in ("card", "wallet"):
        raise InvalidInput("Only card (payment gateway) and wallet preferences can be opted in for subscriptions "
                           "or purchases: a manual or bank-transfer payment is never taken automatically.",
                           code="opt_in_card_or_wallet", field="opt_in_purchases" if purchases else
                           "opt_in_subscriptions")


def create_preference(session: Session, data: ws.PreferenceCreate, *, actor: Actor) -> PaymentPreference:
    invoices.require_billing_writer(actor, "set payment preferences")
    account = accounts.get_account(session, actor.workspace_id, data.account_id, for_update=True)
    if account.status == "terminated":
        raise Conflict(f"Account {account.number} is terminated.", code="account_terminated")
    _check_opt_in(data.kind, data.opt_in_subscriptions, data.opt_in_purchases)
    if data.kind == "card" and data.gateway is None:
        raise InvalidInput("A card preference names its gateway (stripe).", code="gateway_required", field="gateway")
    if data.kind != "card" and data.gateway is not None:
        raise InvalidInput("Only a card preference has a gateway.", code="gateway_not_for_kind", field="gateway")
    if data.kind == "wallet" and wallets.wallet_of(session, account.id) is None:
        raise Conflict(f"Account {account.number} has no wallet; open one first.", code="no_wallet")
    if data.kind in ("card", "wallet") and any(
            p.kind == data.kind and p.gateway == data.gateway for p in preferences_of(session, account.id,
                                                                                      active_only=True)):
        raise Conflict(f"Account {account.number} already has an active {data.kind} preference"
                       + (f" for {data.gateway}" if data.gateway else "") + ": change that one.",
                       code="preference_exists")
    now = clock.now()
    pref = PaymentPreference(id=new_id("ppref"), workspace_id=account.workspace_id, account_id=account.id,
                             kind=data.kind, gateway=data.gateway, opt_in_subscriptions=data.opt_in_subscriptions,
                             opt_in_purchases=data.opt_in_purchases, use_billing_address=data.use_billing_address,
                             default_card_id=None, gateway_customer_ref=None, active=True, created_at=now,
                             updated_at=now)
    session.add(pref)
    session.flush([pref])
    audit.record(session, actor=actor, action="payment_preference.create", object_type="payment_preference",
                 object_id=pref.id, after=snapshot(pref))
    return pref


def update_preference(session: Session, preference_id: str, data: ws.PreferenceUpdate, *,
                      actor: Actor) -> PaymentPreference:
    invoices.require_billing_writer(actor, "change payment preferences")
    pref = get_preference(session, actor.workspace_id, preference_id)
    accounts.get_account(session, actor.workspace_id, pref.account_id, for_update=True)
    before = snapshot(pref)
    fields = data.model_fields_set
    subs = data.opt_in_subscriptions if "opt_in_subscriptions" in fields and data.opt_in_subscriptions is not None \
        else pref.opt_in_subscriptions
    purch = data.opt_in_purchases if "opt_in_purchases" in fields and data.opt_in_purchases is not None \
        else pref.opt_in_purchases
    _check_opt_in(pref.kind, subs, purch)
    pref.opt_in_subscriptions, pref.opt_in_purchases = subs, purch
    if data.use_billing_address is not None:
        pref.use_billing_address = data.use_billing_address
    if "default_card_id" in fields and data.default_card_id is not None:
        if data.default_card_id not in {c.id for c in cards_of(session, pref.id)}:
            raise InvalidInput("default_card_id is not one of this preference's cards.", code="card_not_of_preference",
                               field="default_card_id")
        pref.default_card_id = data.default_card_id
    if data.active is not None:
        pref.active = data.active
    pref.updated_at = clock.now()
    audit.record(session, actor=actor, action="payment_preference.update", object_type="payment_preference",
                 object_id=pref.id, before=before, after=snapshot(pref))
    return pref


def register_card(session: Session, preference_id: str, data: ws.CardRegister, *, actor: Actor) -> PaymentCard:
    invoices.require_billing_writer(actor, "register cards")
    pref = get_preference(session, actor.workspace_id, preference_id)
    if pref.kind != "card":
        raise Conflict("Cards belong to card preferences.", code="preference_takes_no_cards")
    account = accounts.get_account(session, actor.workspace_id, pref.account_id, for_update=True)
    gateway = gateways.get_gateway(pref.gateway or "")
    if gateway is None:
        raise Conflict(f"The {pref.gateway} gateway is not configured on this server (CREDITDESK_STRIPE_API_KEY).",
                       code="gateway_not_configured")
    customer = session.get(Customer, account.customer_id)
    try:
        card = gateway.register_card(card_token=data.card_token, customer_ref=pref.gateway_customer_ref,
                                     email=getattr(customer, "email", None), name=customer.name)
    except gateways.GatewayError as exc:
        raise InvalidInput(f"The gateway refused the card: {exc}", code=exc.code, field="card_token") from None
    before = snapshot(pref)
    row = next((c for c in cards_of(session, pref.id) if c.card_ref == card.card_ref), None)
    if row is None:
        row = PaymentCard(id=new_id("card"), workspace_id=pref.workspace_id, preference_id=pref.id,
                          gateway=gateway.code, card_ref=card.card_ref, brand=card.brand, last4=card.last4,
                          exp_month=card.exp_month, exp_year=card.exp_year, removed=False, created_at=clock.now())
        session.add(row)
        session.flush([row])
    pref.gateway_customer_ref = card.customer_ref
    if data.make_default or pref.default_card_id is None:
        pref.default_card_id = row.id
    pref.updated_at = clock.now()
    audit.record(session, actor=actor, action="payment_preference.card_register", object_type="payment_preference",
                 object_id=pref.id, before=before, after=snapshot(pref, card_id=row.id, brand=row.brand,
                                                                   last4=row.last4))
    return row


def remove_card(session: Session, preference_id: str, card_id: str, *, actor: Actor) -> PaymentPreference:
    invoices.require_billing_writer(actor, "remove cards")
    pref = get_preference(session, actor.workspace_id, preference_id)
    card = next((c for c in cards_of(session, pref.id) if c.id == card_id), None)
    if card is None:
        raise NotFound(f"No card {card_id!r} on this preference.", object_id=card_id)
    before = snapshot(pref)
    card.removed = True
    if pref.default_card_id == card.id:
        rest = [c for c in cards_of(session, pref.id) if c.id != card.id]
        pref.default_card_id = rest[-1].id if rest else None
    pref.updated_at = clock.now()
    audit.record(session, actor=actor, action="payment_preference.card_remove", object_type="payment_preference",
                 object_id=pref.id, before=before, after=snapshot(pref, removed_card_id=card.id))
    return pref


def preference_out(session: Session, pref: PaymentPreference) -> ws.PreferenceOut:
    return ws.PreferenceOut(
        id=pref.id, account_id=pref.account_id, kind=pref.kind, gateway=pref.gateway,
        opt_in_subscriptions=pref.opt_in_subscriptions, opt_in_purchases=pref.opt_in_purchases,
        use_billing_address=pref.use_billing_address, default_card_id=pref.default_card_id, active=pref.active,
        cards=[ws.CardOut(id=c.id, gateway=c.gateway, brand=c.brand, last4=c.last4, exp_month=c.exp_month,
                          exp_year=c.exp_year, is_default=c.id == pref.default_card_id,
                          created_at=clock.aware(c.created_at)) for c in cards_of(session, pref.id)],
        created_at=clock.aware(pref.created_at), updated_at=clock.aware(pref.updated_at))


def describe(session: Session, pref: PaymentPreference) -> str:
    """For people: "Wallet", "Visa ending 4242 (Stripe)", "Bank transfer"."""
    if pref.kind == "card":
        card = session.get(PaymentCard, pref.default_card_id) if pref.default_card_id else None
        what = f"{card.brand.title()} ending {card.last4}" if card else "Card (none registered)"
        return f"{what} ({(pref.gateway or '').title()})"
    return {"manual": "Manual", "bank_transfer": "Bank transfer", "wallet": "Wallet"}[pref.kind]


# --- charge first ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChargePlan:
    preference: PaymentPreference
    amount: int            # what is paid first (minor units of the account's currency)
    message: str
    wallet: Wallet | None = None
    card: PaymentCard | None = None


def plan_for(session: Session, account: BillingAccount, event: str, amount: int, *, balance: int,
             credit_limit: int) -> ChargePlan | None:
    """How an opted-in preference would keep `event` of `amount` within the credit limit (None: none can).
    The wallet comes first (no external call), then a card with a default card."""
    opt_in = OPT_IN_OF_EVENT.get(event)
    if opt_in is None or amount <= 0:
        return None
    needed = balance + amount - credit_limit  # paying at least this keeps the balance within the limit
    money = currencies.format_money
    for pref in sorted(preferences_of(session, account.id, active_only=True), key=lambda p: p.kind != "wallet"):
        if not getattr(pref, f"opt_in_{opt_in}"):
            continue
        if pref.kind == "wallet":
            wallet = wallets.wallet_of(session, account.id)
            have = wallets.balance(session, wallet) if wallet is not None else 0
            if wallet is None or have < needed:
                continue
            pay = min(amount, have)
            return ChargePlan(pref, pay, f"{money(pay, account.currency)} is paid from the wallet first (it has "
                                         f"{money(have, account.currency)}), which keeps the balance within the "
                                         "credit limit.", wallet=wallet)
        if pref.kind == "card" and pref.default_card_id:
            card = session.get(PaymentCard, pref.default_card_id)
            if card is None or card.removed:
                continue
            return ChargePlan(pref, amount, f"{money(amount, account.currency)} is charged first to "
                                            f"{card.brand.title()} ending {card.last4}; the invoice posts once the "
                                            "charge succeeds.", card=card)
    return None


@dataclass
class PaidFirst:
    """What charge_first did: a wallet payment to allocate after posting, or a card charge under way."""
    payment: object | None = None
    charge: GatewayCharge | None = None


def pending_charge(session: Session, invoice_id: str) -> GatewayCharge | None:
    return session.scalar(select(GatewayCharge).where(GatewayCharge.invoice_id == invoice_id,
                                                      GatewayCharge.status == "pending")
                          .order_by(GatewayCharge.created_at.desc()).limit(1))


def charge_first(session: Session, account: BillingAccount, event: str, amount: int, *, invoice,
                 actor: Actor) -> PaidFirst | None:
    """The posting's hook (account locked): when the spend decision blocks `event` on the credit limit only and
    a plan exists, carry it out (see the module). None when nothing needed paying first."""
    from creditdesk.billing import credit_control

    decision = credit_control.decide_spend(session, account, event, amount)
    plan = decision.charge_plan
    if plan is None:
        return None
    if plan.wallet is not None:
        payment = wallets.pay_from_wallet(session, account, plan.wallet, plan.amount, invoice=None, actor=actor,
                                          reference=PAID_FIRST_WORDS.get(event, "Paid from the wallet first"))
        return PaidFirst(payment=payment)
    existing = pending_charge(session, invoice.id) if invoice is not None else None
    if existing is not None:
        return PaidFirst(charge=existing)
    now = clock.now()
    charge = GatewayCharge(id=new_id("gch"), workspace_id=account.workspace_id, account_id=account.id,
                           preference_id=plan.preference.id, card_id=plan.card.id,
                           invoice_id=invoice.id if invoice is not None else None, amount=plan.amount,
                           currency=account.currency, status="pending", outcome="", actor_id=actor.user_id,
                           charge_due_at=now + external_calls.call_lease(1), charge_attempts=1,
                           created_at=now, updated_at=now)
    session.add(charge)
    session.flush([charge])
    audit.record(session, actor=actor, action="gateway_charge.create", object_type="gateway_charge",
                 object_id=charge.id, after=snapshot(charge))
    external_calls.run_after_commit(session, charge, lambda db, charge_id: complete_charge(db, charge_id))
    return PaidFirst(charge=charge)


def allocate_paid_first(session: Session, paid: PaidFirst | None, invoice, *, actor: Actor) -> None:
    """After the invoice posted: the payment made first pays it (as far as both go)."""
    payment = paid.payment if paid is not None else None
    if payment is None or invoice.status != invoices.OPEN:
        return
    amount = min(payment.unallocated, invoice.amount_due)
    if amount > 0:
        payments.allocate_now(session, payment, [ins.AllocationIn(invoice_id=invoice.id, amount=amount)], actor=actor)


def complete_charge(db: Database, charge_id: str) -> GatewayCharge | None:
    """Charge a card whose charge is due, outside any transaction, then record the outcome in a transaction
    of its own (the first outcome recorded wins). A gateway that cannot be reached leaves it due."""
    charge = external_calls.detached(db, GatewayCharge, charge_id)
    if charge is None or charge.charge_due_at is None:
        return charge
    with db.read() as session:
        card = session.get(PaymentCard, charge.card_id)
        pref = session.get(PaymentPreference, charge.preference_id)
        card_ref, gateway_code, customer_ref = card.card_ref, card.gateway, pref.gateway_customer_ref
    gateway = gateways.get_gateway(gateway_code)
    if gateway is None:
        result = gateways.ChargeResult("failed", error_code="gateway_not_configured",
                                       error=f"The {gateway_code} gateway is not configured on this server.")
    else:
        try:
            result = gateway.charge(amount=charge.amount, currency=charge.currency, customer_ref=customer_ref or "",
                                    card_ref=card_ref, idempotency_key=external_calls.idempotency_key(charge.id),
                                    description=f"creditdesk charge {charge.id}")
        except gateways.GatewayError as exc:
            log.warning("gateway %s unavailable for charge %s: %s; left due", gateway_code, charge.id, exc)
            return charge
    if result.status == "pending":
        return charge  # the gateway answers later: still due, the job asks again with the same key
    return db.write(lambda session: _record_outcome(session, charge_id, result))


def _record_outcome(session: Session, charge_id: str, result: gateways.ChargeResult) -> GatewayCharge:
    charge = session.execute(select(GatewayCharge).where(GatewayCharge.id == charge_id).with_for_update()
                             ).scalar_one()
    if charge.charge_due_at is None:
        return charge
    actor = Actor(workspace_id=charge.workspace_id, user_id=charge.actor_id, role="master", kind="system")
    before = snapshot(charge)
    charge.charge_due_at, charge.updated_at = None, clock.now()
    charge.gateway_ref = result.reference
    if result.status != "succeeded":
        charge.status, charge.error_code, charge.error = "failed", result.error_code, result.error
        charge.outcome = "The charge failed; the invoice stays a draft."
        audit.record(session, actor=actor, action="gateway_charge.failed", object_type="gateway_charge",
                     object_id=charge.id, before=before, after=snapshot(charge))
        return charge
    charge.status = "succeeded"
    account = accounts.get_account(session, charge.workspace_id, charge.account_id, for_update=True)
    payment = payments.record_received(session, account, charge.amount, method="card",
                                       reference=f"Card charge {result.reference or charge.id}", allocations=[],
                                       actor=actor)
    charge.payment_id = payment.id
    charge.outcome = "Paid; the money is on the account as a credit."
    if charge.invoice_id is not None:
        invoice = invoices.get_invoice(session, charge.workspace_id, charge.invoice_id)
        if invoice.status == "draft":
            try:
                with session.begin_nested():
                    invoice = invoices.post_invoice(session, invoice.id, actor=actor, charge_first=False)
            except CreditdeskError as exc:
                charge.outcome = f"Paid; the invoice stays a draft ({exc}); the money is on the account as a credit."
            else:
                allocate_paid_first(session, PaidFirst(payment=payment), invoice, actor=actor)
                charge.outcome = f"Paid; invoice {invoice.number} posted and paid."
    audit.record(session, actor=actor, action="gateway_charge.succeeded", object_type="gateway_charge",
                 object_id=charge.id, before=before, after=snapshot(charge))
    return charge


def complete_due_charges(db: Database, *, workspace_id: str | None = None, batch_size: int = 100) -> int:
    """The recovery job: charges whose outcome was never recorded and whose lease has ended."""
    done = 0
    while True:
        claimed = db.write(lambda session: external_calls.claim_due(
            session, GatewayCharge, GatewayCharge.charge_due_at, GatewayCharge.charge_attempts,
            workspace_id=workspace_id, limit=batch_size))
        for charge_id in claimed:
            try:
                complete_charge(db, charge_id)
                done += 1
            except Exception:  # the lease ends and a later run tries again
                log.exception("completing gateway charge %s failed", charge_id)
        if len(claimed) < batch_size:
            return done


def charge_out(charge: GatewayCharge) -> ws.ChargeOut:
    return ws.ChargeOut(id=charge.id, account_id=charge.account_id, preference_id=charge.preference_id,
                        card_id=charge.card_id, invoice_id=charge.invoice_id, amount=charge.amount,
                        currency=charge.currency, status=charge.status, gateway_ref=charge.gateway_ref,
                        error_code=charge.error_code, error=charge.error, payment_id=charge.payment_id,
                        outcome=charge.outcome, created_at=clock.aware(charge.created_at))


def list_charges(session: Session, *, actor: Actor, account_id: str | None = None, invoice_id: str | None = None,
                 limit: int | None = None, cursor: str | None = None):
    from creditdesk.pagination import paginate

    stmt = select(GatewayCharge).where(GatewayCharge.workspace_id == actor.workspace_id)
    if account_id:
        stmt = stmt.where(GatewayCharge.account_id == account_id)
    if invoice_id:
        stmt = stmt.where(GatewayCharge.invoice_id == invoice_id)
    return paginate(session, stmt, id_column=GatewayCharge.id, limit=limit, cursor=cursor, descending=True)
