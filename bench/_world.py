"""Throwaway databases and bench worlds shared by workloads 5 and 6 (not imported by creditdesk itself)."""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from creditdesk import migrate
from creditdesk.audit import Actor
from creditdesk.credits import schemas as cs
from creditdesk.credits.credit_types import create_credit_type
from creditdesk.db import Database
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties


@dataclass
class World:
    db: Database
    ws: str
    actor: Actor
    offices: list[str]
    users: list[str]


def sqlite_db(path: str) -> Database:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    return db


def make_world(db: Database, *, offices: int = 200, users: int = 200, credit_types=("credits",)) -> World:
    """A workspace with a customer, `offices` offices and `users` users (holders), made through the services."""
    def setup(session):
        ws, master, _key, _secret = parties.create_workspace(
            session, name="Bench", master_name="Master", master_email=f"bench-{os.urandom(4).hex()}@example.com",
            master_password="correct horse battery")
        return ws.id, master.id

    ws, master_id = db.write(setup)
    with db.read() as session:
        from creditdesk.parties.models import User

        actor = parties.actor_for_user(session, session.get(User, master_id))
    for code in credit_types:
        db.write(lambda s, code=code: create_credit_type(s, cs.CreditTypeCreate(code=code, name=code),
                                                         actor=actor))

    def holders(session):
        customer = parties.create_customer(session, ps.CustomerCreate(name="Acme"), actor=actor)
        office_ids = [parties.create_office(session, ps.OfficeCreate(name=f"Office {i}", customer_id=customer.id),
                                            actor=actor).id for i in range(offices)]
        user_ids = [parties.create_user(session, ps.UserCreate(
            name=f"User {i}", email=f"user{i}-{os.urandom(3).hex()}@example.com", is_staff=False,
            primary_office_id=office_ids[i % len(office_ids)]), actor=actor).id for i in range(users)]
        return office_ids, user_ids

    office_ids, user_ids = db.write(holders)
    return World(db, ws, actor, office_ids, user_ids)


def write_packs_csv(path: str, world: World, rows: int, *, seed: int = 1, credit_type: str = "credits",
                    expired_share: float = 0.0, now: datetime | None = None) -> None:
    """A CSV of `rows` valid packs spread over the world's holders, most with an expiry, some with products."""
    rnd = random.Random(seed)
    now = now or datetime.now(UTC)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        # Integers of the smallest unit (quantity_minor, price_paid_minor), as scripts write them.
        out.writerow(["holder_kind", "holder_id", "credit_type", "quantity_minor", "name", "price_paid_minor", "currency",
                      "purchased_at", "expires_at", "priority", "product_codes", "status_label", "external_ref"])
        for i in range(rows):
            if rnd.random() < 0.5:
                kind, holder = "office", world.offices[rnd.randrange(len(world.offices))]
            else:
                kind, holder = "user", world.users[rnd.randrange(len(world.users))]
            paid = rnd.random() < 0.5
            if rnd.random() < expired_share:
                purchased = now - timedelta(days=400 + rnd.randrange(300))
                expires = purchased + timedelta(days=365)
            else:
                purchased = now - timedelta(days=rnd.randrange(300))
                expires = purchased + timedelta(days=365 + rnd.randrange(700))
            out.writerow([kind, holder, credit_type, rnd.randrange(1, 500), f"Pack {i}",
                          rnd.randrange(100, 100000) if paid else 0, "GBP" if paid else "",
                          purchased.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          expires.strftime("%Y-%m-%dT%H:%M:%SZ") if rnd.random() < 0.9 else "",
                          rnd.choice((100, 100, 100, 50, 200)),
                          rnd.choice(("", "", "", "audit", "audit;tax")),
                          rnd.choice(("", "", "drive-2026", "renewal")), f"ext-{i}"])


def subscriptions_world(db: Database, subscriptions: int, accounts: int, *, started=None) -> str:
    """A workspace billing in AUD with a taxed subscription service (49.00 a month in the default plan),
    `accounts` customers with an account each, and N active monthly subscriptions (billing day 1, started
    `started`, default 2027-01-01) spread over them, written set-wise; returns the workspace id. Shared by
    workload 7 and the billing run's kill -9 test."""
    from datetime import date

    from sqlalchemy import insert

    from creditdesk.billing import accounts as account_service
    from creditdesk.billing import schemas as bs
    from creditdesk.billing import settings as billing_settings
    from creditdesk.billing.subscription_models import Subscription, SubscriptionService
    from creditdesk.catalog import schemas as cat
    from creditdesk.catalog import service as catalog
    from creditdesk.ids import new_id

    world = make_world(db, offices=1, users=1)
    actor = world.actor
    started = started or date(2027, 1, 1)

    def catalogue(session):
        billing_settings.update_settings(session, bs.BillingSettingsUpdate(default_currency="AUD"), actor=actor)
        catalog.create_tax_class(session, cat.TaxClassCreate(code="gst", name="GST"), actor=actor)
        catalog.create_tax_rate(session, cat.TaxRateCreate(tax_class="gst", rate_bp=1000,
                                                           valid_from=date(2020, 1, 1)), actor=actor)
        product = catalog.create_product(session, cat.ProductCreate(code="line", name="Fibre line",
                                                                    kind="subscription_service", unit="month",
                                                                    tax_class="gst"), actor=actor)
        plan = catalog.create_price_plan(session, cat.PricePlanCreate(code="aud", name="AUD", currency="AUD",
                                                                      is_default=True), actor=actor)
        catalog.set_price(session, plan.id, cat.PriceSet(product="line", unit_price=4900), actor=actor)
        return product.id
    product_id = db.write(catalogue)

    def make_accounts(session, n0, n1):
        out = []
        for i in range(n0, n1):
            customer = parties.create_customer(session, ps.CustomerCreate(name=f"Customer {i}"), actor=actor)
            account = account_service.create_account(session, bs.AccountCreate(customer_id=customer.id, name="Main"),
                                                     actor=actor)
            out.append((account.id, customer.id))
        return out
    made: list[tuple[str, str]] = []
    for start in range(0, accounts, 500):
        made += db.write(lambda s, a=start: make_accounts(s, a, min(a + 500, accounts)))
    now = datetime.now(UTC)
    for start in range(0, subscriptions, 5000):
        subs, services = [], []
        for i in range(start, min(start + 5000, subscriptions)):
            account_id, customer_id = made[i % len(made)]
            sub_id = new_id("sub")
            subs.append({"id": sub_id, "workspace_id": world.ws, "account_id": account_id, "customer_id": customer_id,
                         "number": f"SUB-{i + 1:06d}", "name": "", "status": "active", "frequency": "monthly",
                         "billing_day": 1, "started_on": started, "billed_through": started, "created_at": now,
                         "updated_at": now})
            services.append({"id": new_id("subsvc"), "workspace_id": world.ws, "subscription_id": sub_id,
                             "product_id": product_id, "quantity": 1, "unit_price": None, "start_on": started,
                             "billed_through": None, "created_at": now, "updated_at": now})

        def write(session, subs=subs, services=services):
            session.execute(insert(Subscription), subs)
            session.execute(insert(SubscriptionService), services)
        db.write(write)

    def numbers(session):
        from creditdesk.billing.models import BillingSettings

        session.get(BillingSettings, world.ws).next_subscription_number = subscriptions + 1
    db.write(numbers)
    return world.ws
