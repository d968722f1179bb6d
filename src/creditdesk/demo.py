"""Demo data for `creditdesk serve --demo`, created through the same services as everything else."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from creditdesk.audit import Actor
from creditdesk.config import secret_key_problem
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from creditdesk.parties.models import User, Workspace

DEMO_WORKSPACE = "Demo Services Ltd"
DEMO_EMAIL = "master@demo.example.com"
DEMO_PASSWORD = "demo-password"


@dataclass
class DemoInfo:
    workspace_id: str
    email: str
    password: str
    api_key: str


def ensure_demo(session: Session) -> DemoInfo:
    ws = session.scalar(select(Workspace).where(Workspace.name == DEMO_WORKSPACE).order_by(Workspace.id))
    if ws is None:
        return create_demo(session)
    master = session.scalar(select(User).where(User.workspace_id == ws.id, User.email == DEMO_EMAIL))
    _catalogue_demo(session, parties.actor_for_user(session, master))  # demos made before the catalogue
    _invoice_demo(session, parties.actor_for_user(session, master))  # demos made before invoices
    _credit_control_demo(session, parties.actor_for_user(session, master))  # and before credit control
    _groups_demo(session, parties.actor_for_user(session, master))  # and before group accounts
    _package_demo(session, parties.actor_for_user(session, master))  # and before credit packages (issue 13)
    _wallet_demo(session, parties.actor_for_user(session, master))  # and before wallets
    _subscriptions_demo(session, parties.actor_for_user(session, master))  # and before subscriptions
    _activities_demo(session, parties.actor_for_user(session, master))  # and before activities (seed 002)
    _communication_demo(session, parties.actor_for_user(session, master))  # and before bill communications
    _, secret = parties.create_api_key(session, ps.ApiKeyCreate(name="Demo key", user_id=master.id),
                                       actor=Actor.system(ws.id))
    return DemoInfo(ws.id, DEMO_EMAIL, DEMO_PASSWORD, secret)


def create_demo(session: Session) -> DemoInfo:
    ws, master, _key, secret = parties.create_workspace(
        session, name=DEMO_WORKSPACE, master_name="Morgan Master", master_email=DEMO_EMAIL,
        master_password=DEMO_PASSWORD, time_zone="Australia/Sydney")
    actor = parties.actor_for_user(session, master)

    head_office = parties.create_office(session, ps.OfficeCreate(name="Head Office"), actor=actor)
    branch = parties.create_office(session, ps.OfficeCreate(name="North Branch"), actor=actor)

    def staff(name, email, role, permissions, office, extra=()):
        return parties.create_user(session, ps.UserCreate(
            name=name, email=email, is_staff=True, role=role, permissions=permissions,
            primary_office_id=office.id, additional_office_ids=[o.id for o in extra], password=DEMO_PASSWORD),
            actor=actor)

    manager = staff("Maya Manager", "manager@demo.example.com", "manager",
                    ["send_sms", "manage_office_credits", "manage_packs", "consume_credits", "manage_users"],
                    head_office, extra=[branch])
    alice = staff("Alice Account", "alice@demo.example.com", "member", ["send_sms", "consume_credits"], head_office)
    bob = staff("Bob Builder", "bob@demo.example.com", "member", ["send_sms", "consume_credits"], head_office)
    carol = staff("Carol Clerk", "carol@demo.example.com", "member", ["consume_credits"], branch)
    parties.create_team(session, ps.TeamCreate(name="Project delivery", office_id=head_office.id,
                                               member_ids=[alice.id, bob.id]), actor=actor)
    parties.create_team(session, ps.TeamCreate(name="North desk", office_id=branch.id,
                                               member_ids=[carol.id]), actor=actor)

    customers = {}
    for cname, offices, contacts in [
        ("Acme Widgets", ["Acme London", "Acme Leeds"], [("Wendy Widget", "wendy@acme.example.com"),
                                                         ("Liam Leeds", "liam@acme.example.com")]),
        ("Globex Corporation", ["Globex HQ"], [("Hank Scorpio", "hank@globex.example.com")]),
        ("Initech", ["Initech Austin"], [("Peter Gibbons", "peter@initech.example.com")]),
    ]:
        # A billing address for each customer, so that the expiry emails and bills of the demo reach someone
        # (the .example.com domain receives nothing in the real world).
        billing_email = "accounts@" + cname.split()[0].lower() + ".example.com"
        customer = parties.create_customer(session, ps.CustomerCreate(name=cname, email=billing_email), actor=actor)
        office_objs = [parties.create_office(session, ps.OfficeCreate(name=o, customer_id=customer.id), actor=actor)
                       for o in offices]
        users = []
        for i, (uname, email) in enumerate(contacts):
            users.append(parties.create_user(session, ps.UserCreate(
                name=uname, email=email, is_staff=False,
                primary_office_id=office_objs[min(i, len(office_objs) - 1)].id), actor=actor))
        customers[cname] = (customer, office_objs, users)

    try:
        from creditdesk.credits.demo import create_credit_demo
    except ImportError:
        create_credit_demo = None
    if create_credit_demo is not None:
        create_credit_demo(session, actor=actor, customers=customers,
                           staff={"manager": manager, "alice": alice, "bob": bob, "carol": carol})

        _sms_demo(session, actor=actor, office=head_office,
                  staff={"manager": manager, "alice": alice, "bob": bob, "carol": carol})

    _catalogue_demo(session, actor)
    _billing_demo(session, actor=actor, customers=customers)
    _invoice_demo(session, actor)
    _credit_control_demo(session, actor)
    _groups_demo(session, actor)
    _package_demo(session, actor)
    _wallet_demo(session, actor)
    _subscriptions_demo(session, actor)
    _activities_demo(session, actor)
    _communication_demo(session, actor)

    _, demo_secret = parties.create_api_key(session, ps.ApiKeyCreate(name="Demo key", user_id=master.id),
                                            actor=actor)
    return DemoInfo(ws.id, DEMO_EMAIL, DEMO_PASSWORD, demo_secret or secret)


def _catalogue_demo(session: Session, actor: Actor) -> None:
    """The catalogue (products, taxes, price plans), once per demo workspace."""
    from creditdesk.catalog.demo import create_catalogue_demo, has_catalogue

    if not has_catalogue(session, actor.workspace_id):
        create_catalogue_demo(session, actor=actor)


def _sms_demo(session: Session, *, actor, office, staff: dict) -> None:
    """SMS credits (seed 003) through the SMS services: seller details for receipts, a paid purchase with
    its receipt, and a user whose send_sms was removed (frozen credits)."""
    from creditdesk.credits import schemas as cs
    from creditdesk.credits import packs
    from creditdesk.sms import schemas as ss
    from creditdesk.sms import service as sms

    sms.update_settings(session, ss.SmsSettingsUpdate(seller=ss.SellerDetails(
        name=DEMO_WORKSPACE, address="1 Demo Street\nSydney NSW 2000", tax_id="ABN 11 222 333 444",
        email="accounts@demo.example.com")), actor=actor)
    sms.create_purchase(session, ss.PurchaseCreate.model_validate({
        "for": {"kind": "user", "id": staff["alice"].id}, "quantity": 300,
        "billing": {"name": "Demo Services Ltd", "address": "1 Demo Street\nSydney NSW 2000",
                    "email": "accounts@demo.example.com"}}), actor=actor)
    dan = parties.create_user(session, ps.UserCreate(
        name="Dan Dispatch", email="dan@demo.example.com", is_staff=True, role="member",
        permissions=["send_sms"], primary_office_id=office.id, password=DEMO_PASSWORD), actor=actor)
    packs.grant_pack(session, cs.PackCreate(
        holder=cs.Holder(kind="user", id=dan.id), credit_type="sms", quantity=50, name="SMS for Dan Dispatch"),
        actor=actor)
    # Dan no longer sends SMS: his 50 credits are frozen until someone transfers them away.
    parties.update_user(session, dan.id, ps.UserUpdate(permissions=[]), actor=actor)


def _billing_demo(session: Session, *, actor, customers: dict) -> None:
    """Customer accounts (seed 004) through the billing services: AUD by default with EUR enabled, a rate
    each way, and two accounts with billing addresses, one in each currency, each with an opening amount.
    Made with the rest of the demo workspace, so once, like everything else here."""
    from datetime import date

    from creditdesk.billing import accounts, addresses, postings, settings
    from creditdesk.billing import schemas as bs

    settings.update_settings(session, bs.BillingSettingsUpdate.model_validate({
        "default_currency": "AUD", "multi_currency": True, "enabled_currencies": ["EUR"],
        "credit_terms": {"credit_period_days": 30, "min_days": 14, "max_days": 60}}), actor=actor)
    for source, target, rate in (("EUR", "AUD", "1.6420"), ("AUD", "EUR", "0.6090")):
        settings.create_rate(session, bs.ConversionRateCreate(from_currency=source, to_currency=target, rate=rate,
                                                              valid_from=date(2026, 1, 1)), actor=actor)
    for cname, currency, place, opening in (
            ("Acme Widgets", "AUD", {"line1": "12 Market Street", "city": "Sydney", "region": "NSW",
                                     "postcode": "2000", "country": "AU"}, 125_000),
            ("Globex Corporation", "EUR", {"line1": "Hauptstrasse 5", "city": "Berlin", "postcode": "10115",
                                           "country": "DE"}, 48_000)):
        customer = customers[cname][0]
        address = addresses.create_address(session, customer.id, bs.AddressCreate.model_validate(
            {"type": "billing", "is_primary": True, **place}), actor=actor)
        account = accounts.create_account(session, bs.AccountCreate(
            customer_id=customer.id, name=f"{cname} ({currency})", currency=currency, classification="Corporate",
            billing_address_id=address.id), actor=actor)
        postings.post_account_entry(session, account, opening, "debit", "opening_balance", actor_id=actor.user_id)


def _invoice_demo(session: Session, actor: Actor) -> None:
    """Invoices and payments, once per demo workspace (none yet), for each demo account: one overdue (with a
    credit note on the first account), one settled by a payment, one posted and not yet due, a draft and a
    voided draft. Through the invoice services, so the ledger, balances and outstanding agree."""
    from datetime import timedelta

    from creditdesk import clock
    from creditdesk.billing import credit_notes, invoices, payments
    from creditdesk.billing import invoice_schemas as ins
    from creditdesk.billing.invoice_models import Invoice
    from creditdesk.billing.models import BillingAccount

    ws = actor.workspace_id
    if session.scalar(select(Invoice.id).where(Invoice.workspace_id == ws).limit(1)) is not None:
        return
    today = clock.now().date()

    def raise_invoice(account, days_ago, lines, *, post=True, notes=""):
        inv = invoices.create_invoice(session, ins.InvoiceCreate.model_validate({
            "account_id": account.id, "issue_date": today - timedelta(days=days_ago), "notes": notes,
            "lines": [{"product": p, "quantity": q} for p, q in lines]}), actor=actor)
        return invoices.post_invoice(session, inv.id, actor=actor) if post else inv

    demo_accounts = session.scalars(select(BillingAccount).where(BillingAccount.workspace_id == ws)
                                    .order_by(BillingAccount.number)).all()
    for n, account in enumerate(demo_accounts):
        overdue = raise_invoice(account, 60, [("consulting-hour", "3"), ("translation", "1.5")],
                                notes="Overdue: please pay on receipt of this reminder.")
        if n == 0:
            credit_notes.create_credit_note(session, overdue.id, ins.CreditNoteCreate(
                amount=overdue.total // 10, reason="Goodwill: 10 % off a late delivery"), actor=actor)
        settled = raise_invoice(account, 20, [("onboarding", "1")])
        payments.record_payment(session, ins.PaymentCreate(
            account_id=account.id, amount=settled.amount_due, method="bank_transfer",
            reference=f"EFT for {settled.number}", allocations=[ins.AllocationIn(invoice_id=settled.id,
                                                                                 amount=settled.amount_due)]),
            actor=actor)
        raise_invoice(account, 5, [("copywriting", "2.5"), ("sms-modem", "2")])
        raise_invoice(account, 0, [("support-monthly", "1")], post=False, notes="Next month's support")
        cancelled = raise_invoice(account, 2, [("sms-modem", "1")], post=False)
        invoices.void_invoice(session, cancelled.id, actor=actor)
def _credit_control_demo(session: Session, actor: Actor) -> None:
    """Credit ratings A, B, C with AUD and EUR limits; Acme's AUD account rated C, over its limit, with an
    override rule that lets its (corporate) invoices through; Globex's EUR account rated A. Once per workspace
    (nothing is made when rating A exists)."""
    from creditdesk.billing import credit_control
    from creditdesk.billing import credit_schemas as cs
    from creditdesk.billing.credit_models import CreditRating
    from creditdesk.billing.models import BillingAccount

    ws = actor.workspace_id
    if session.scalar(select(CreditRating.id).where(CreditRating.workspace_id == ws, CreditRating.code == "A")):
        return
    ratings = {code: credit_control.create_rating(session, cs.CreditRatingCreate(
        code=code, name=name, limits={"AUD": aud, "EUR": eur}), actor=actor)
        for code, name, aud, eur in (("A", "Excellent", 2_000_000, 1_200_000), ("B", "Good", 500_000, 300_000),
                                     ("C", "Watch", 100_000, 60_000))}
    numbers = {a.number: a for a in session.scalars(select(BillingAccount).where(BillingAccount.workspace_id == ws))}
    for number, code in (("ACC-000001", "C"), ("ACC-000002", "A")):
        if number in numbers and numbers[number].status != "terminated":
            credit_control.change_credit_terms(session, numbers[number].id, cs.CreditTermsChange(
                credit_rating_id=ratings[code].id), actor=actor)
    credit_control.create_rule(session, cs.OverrideRuleCreate(
        name="Corporate invoices may exceed a Watch limit", events=["invoice_post"], classifications=["Corporate"],
        credit_rating_ids=[ratings["C"].id]), actor=actor)


def _groups_demo(session: Session, actor: Actor) -> None:
    """A group account (seed 004): Initech's AUD account is the parent, with a pricing agreement (consulting at
    150.00 an hour instead of 180.00) and one partly funded member, Globex's AUD drivers account (the parent
    funds the `consulting` product type). One posted invoice of the member shows the split: its consulting line
    is billed to the parent, its modem to the member. Once per workspace (nothing is made when a group exists)."""
    from creditdesk.billing import accounts, groups, invoices
    from creditdesk.billing import group_schemas as gs
    from creditdesk.billing import invoice_schemas as ins
    from creditdesk.billing import schemas as bs
    from creditdesk.billing.group_models import GroupMember
    from creditdesk.billing.settings import get_settings
    from creditdesk.catalog import schemas as cats
    from creditdesk.catalog import service as catalog
    from creditdesk.catalog.models import Product
    from creditdesk.parties.models import Customer

    ws = actor.workspace_id
    if session.scalar(select(GroupMember.id).where(GroupMember.workspace_id == ws).limit(1)) is not None:
        return
    names = {c.name: c for c in session.scalars(select(Customer).where(Customer.workspace_id == ws))}
    if get_settings(session, ws) is None or not {"Initech", "Globex Corporation"} <= set(names) or \
            session.scalar(select(Product.id).where(Product.workspace_id == ws, Product.code == "consulting-hour")) \
            is None:
        return  # a demo without billing or the catalogue: nothing to group
    parent = accounts.create_account(session, bs.AccountCreate(
        customer_id=names["Initech"].id, name="Initech fleet", currency="AUD", classification="Corporate"),
        actor=actor)
    member = accounts.create_account(session, bs.AccountCreate(
        customer_id=names["Globex Corporation"].id, name="Globex Sydney drivers", currency="AUD"), actor=actor)
    plan = catalog.create_price_plan(session, cats.PricePlanCreate(code="initech-deal", name="Initech agreement",
                                                                   currency="AUD"), actor=actor)
    catalog.set_price(session, plan.id, cats.PriceSet(product="consulting-hour", unit_price=15000), actor=actor)
    groups.set_pricing_agreement(session, parent.id, gs.PricingAgreementIn(price_plan_id=plan.id), actor=actor)
    groups.add_member(session, parent.id, gs.MemberAdd.model_validate({
        "member_id": member.id, "funding": {"scope": "partial", "product_types": ["consulting"]}}), actor=actor)
    invoice = invoices.create_invoice(session, ins.InvoiceCreate.model_validate({
        "account_id": member.id, "notes": "Consulting funded by Initech; the modem is the member's own.",
        "lines": [{"product": "consulting-hour", "quantity": "2"}, {"product": "sms-modem", "quantity": "1"}]}),
        actor=actor)
    invoices.post_invoice(session, invoice.id, actor=actor)
def _initech_fleet(session: Session, actor: Actor):
    from creditdesk.billing.models import BillingAccount

    return session.scalar(select(BillingAccount).where(BillingAccount.workspace_id == actor.workspace_id,
                                                       BillingAccount.name == "Initech fleet"))


def _wallet_demo(session: Session, actor: Actor) -> None:
    """A wallet (seed 004) on Initech's AUD account with 500.00 in it, opted in for purchases: an invoice that
    would take the account over its credit limit is paid from the wallet first. Acme's AUD account pays by bank
    transfer. Once per workspace (nothing is made when a wallet exists)."""
    from creditdesk.billing import payment_preferences, wallets
    from creditdesk.billing import wallet_schemas as ws_
    from creditdesk.billing.models import BillingAccount
    from creditdesk.billing.wallet_models import Wallet

    if session.scalar(select(Wallet.id).where(Wallet.workspace_id == actor.workspace_id).limit(1)) is not None:
        return
    fleet = _initech_fleet(session, actor)
    if fleet is None:
        return
    wallets.open_wallet(session, fleet.id, actor=actor)
    wallets.top_up(session, fleet.id, ws_.WalletTopUp(amount=50_000, method="bank_transfer",
                                                      reference="Initech prepayment"), actor=actor)
    payment_preferences.create_preference(session, ws_.PreferenceCreate(
        account_id=fleet.id, kind="wallet", opt_in_purchases=True, opt_in_subscriptions=True), actor=actor)
    acme = session.scalar(select(BillingAccount).where(BillingAccount.workspace_id == actor.workspace_id,
                                                       BillingAccount.number == "ACC-000001"))
    if acme is not None:
        payment_preferences.create_preference(session, ws_.PreferenceCreate(account_id=acme.id, kind="bank_transfer"),
                                              actor=actor)


def _subscriptions_demo(session: Session, actor: Actor) -> None:
    """Subscriptions (seed 002): a Cloud backup service next to Monthly support, and Initech's fleet subscribed
    to both since the first of last month, billed monthly on the 1st (the jobs of `serve` bill what is due as of
    today). Once per workspace (nothing is made when a subscription exists)."""
    from datetime import date

    from creditdesk import clock
    from creditdesk.billing import subscriptions
    from creditdesk.billing import subscription_schemas as ss
    from creditdesk.billing.subscription_models import Subscription
    from creditdesk.catalog import schemas as cats
    from creditdesk.catalog import service as catalog
    from creditdesk.catalog.models import PricePlan, Product

    ws = actor.workspace_id
    if session.scalar(select(Subscription.id).where(Subscription.workspace_id == ws).limit(1)) is not None:
        return
    fleet = _initech_fleet(session, actor)
    if fleet is None or session.scalar(select(Product.id).where(Product.workspace_id == ws,
                                                                Product.code == "support-monthly")) is None:
        return
    catalog.create_product(session, cats.ProductCreate(code="cloud-backup", name="Cloud backup",
                                                       kind="subscription_service", unit="month",
                                                       type="support-plans", tax_class="gst"), actor=actor)
    plan = session.scalar(select(PricePlan).where(PricePlan.workspace_id == ws, PricePlan.code == "aud-standard"))
    if plan is not None:
        catalog.set_price(session, plan.id, cats.PriceSet(product="cloud-backup", unit_price=4_900), actor=actor)
    today = clock.now().date()
    last_month = date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)
    subscriptions.create_subscription(session, ss.SubscriptionCreate(
        account_id=fleet.id, name="Initech IT support", billing_day=1, activate_on=last_month,
        services=[ss.ServiceIn(product="support-monthly"), ss.ServiceIn(product="cloud-backup", quantity=3)]),
        actor=actor)


def _package_demo(session: Session, actor: Actor) -> None:
    """Credit packages (seed 001): Massage and Facial services, a "10 massages" package whose credits pay
    only for Massage (12 months after purchase), and on the first AUD account a draft invoice with a Massage
    line and a Facial line. Once per workspace (nothing is made when the package exists)."""
    from creditdesk.billing import invoices
    from creditdesk.billing import invoice_schemas as ins
    from creditdesk.billing.models import BillingAccount
    from creditdesk.catalog import schemas as cs
    from creditdesk.catalog import service as catalog
    from creditdesk.catalog.models import PricePlan, Product
    from creditdesk.credits import credit_types
    from creditdesk.credits import schemas as crs
    from creditdesk.credits.models import CreditType

    ws = actor.workspace_id
    if session.scalar(select(Product.id).where(Product.workspace_id == ws, Product.code == "massage-10")):
        return
    if not session.scalar(select(CreditType.id).where(CreditType.workspace_id == ws, CreditType.code == "massage")):
        credit_types.create_credit_type(session, crs.CreditTypeCreate(code="massage", name="Massages"), actor=actor)
    plans = {p.currency: p for p in session.scalars(select(PricePlan).where(
        PricePlan.workspace_id == ws, PricePlan.code.in_(["aud-standard", "eur-standard"])))}
    for code, name in (("massage", "Massage"), ("facial", "Facial")):
        if not session.scalar(select(Product.id).where(Product.workspace_id == ws, Product.code == code)):
            catalog.create_product(session, cs.ProductCreate(code=code, name=name, kind="service", unit="each"),
                                   actor=actor)
    catalog.create_product(session, cs.ProductCreate.model_validate({
        "code": "massage-10", "name": "10 massages", "kind": "credit_package", "unit": "pack",
        "credit_package": {"credit_type": "massage", "credit_quantity": 10, "applicable_product_codes": ["massage"],
                           "expiry": {"kind": "months_after_purchase", "months": 12}}}), actor=actor)
    for code, aud, eur in (("massage", 9000, 6000), ("facial", 7000, 4500), ("massage-10", 80000, 52000)):
        for currency, price in (("AUD", aud), ("EUR", eur)):
            if currency in plans:
                catalog.set_price(session, plans[currency].id, cs.PriceSet(product=code, unit_price=price),
                                  actor=actor)
    account = session.scalar(select(BillingAccount).where(BillingAccount.workspace_id == ws,
                                                          BillingAccount.currency == "AUD",
                                                          BillingAccount.status != "terminated")
                             .order_by(BillingAccount.number))
    if account is not None and "AUD" in plans:
        invoices.create_invoice(session, ins.InvoiceCreate.model_validate({
            "account_id": account.id, "notes": "Spa visit: the massage can be paid with a massage package",
            "lines": [{"product": "massage", "quantity": 1}, {"product": "facial", "quantity": 1}]}), actor=actor)


def _activities_demo(session: Session, actor: Actor) -> None:
    """Activities (seed 002): types installation (adding a one-time "Installation" service, made here with its
    prices when the catalogue has none), repair and visit, and one open installation for the first customer
    with an account, assigned to Bob Builder of the Project delivery team. Once per workspace."""
    from datetime import timedelta

    from creditdesk import clock
    from creditdesk.activities import schemas as acs
    from creditdesk.activities import service as activities
    from creditdesk.activities.models import ActivityType
    from creditdesk.billing.models import BillingAccount
    from creditdesk.catalog import schemas as cs
    from creditdesk.catalog import service as catalog
    from creditdesk.catalog.models import PricePlan, Product
    from creditdesk.parties.models import Team

    ws = actor.workspace_id
    if session.scalar(select(ActivityType.id).where(ActivityType.workspace_id == ws)):
        return
    service = session.scalar(select(Product).where(Product.workspace_id == ws, Product.code == "installation"))
    if service is None:
        service = catalog.create_product(session, cs.ProductCreate(
            code="installation", name="Installation", kind="one_time_service", unit="each"), actor=actor)
        for plan in session.scalars(select(PricePlan).where(PricePlan.workspace_id == ws,
                                                            PricePlan.code.in_(["aud-standard", "eur-standard"]))):
            catalog.set_price(session, plan.id, cs.PriceSet(product="installation",
                                                            unit_price=12000 if plan.currency == "AUD" else 7500),
                              actor=actor)
    services = [service.code] if service.kind in activities.SERVICE_KINDS else []
    for code, name, with_services in (("installation", "Installation", services), ("repair", "Repair", []),
                                      ("visit", "Visit", [])):
        activities.create_type(session, acs.ActivityTypeCreate(code=code, name=name, services=with_services),
                               actor=actor)
    account = session.scalar(select(BillingAccount).where(BillingAccount.workspace_id == ws,
                                                          BillingAccount.status == "active")
                             .order_by(BillingAccount.number))
    worker = session.scalar(select(User).where(User.workspace_id == ws, User.email == "bob@demo.example.com"))
    team = session.scalar(select(Team).where(Team.workspace_id == ws, Team.name == "Project delivery"))
    if account is None:
        return
    start = clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    activities.schedule(session, acs.ActivityCreate.model_validate({
        "customer_id": account.customer_id, "type": "installation", "account_id": account.id,
        "details": "Install the SMS modem and train the front desk.", "starts_at": start,
        "estimated_completion_at": start + timedelta(hours=3), "expected_completion_at": start + timedelta(days=1),
        "unit": {"kind": "team", "id": team.id} if team else None,
        "assignee_user_id": worker.id if worker else None}), actor=actor)


SECRET_FILE = ".creditdesk-secret"


def _communication_demo(session: Session, actor: Actor) -> None:
    """The default bill template ("Your invoice {{ invoice.number }}"), once per workspace."""
    from creditdesk.notify import communications

    communications.ensure_default_template(session, actor=actor)


def secret_key_file(database_url: str) -> Path:
    """Where the demo keeps its generated session key: beside a SQLite database file, otherwise in the
    working directory."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return Path(url.database).resolve().parent / SECRET_FILE
    return Path.cwd() / SECRET_FILE


def demo_secret_key(database_url: str) -> str:
    """A random session key for `serve --demo`, made once and kept (owner-only file) so that demo logins
    survive restarts. Only for the demo: a real installation sets CREDITDESK_SECRET_KEY."""
    path = secret_key_file(database_url)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        kept = path.read_text().strip()
        if secret_key_problem(kept) is None:
            return kept
        raise ValueError(f"{path} does not hold a usable key ({secret_key_problem(kept)}); delete it to get "
                         "a new one.") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
