"""Billing factories: keyword-only, through the real services."""

from __future__ import annotations

from creditdesk.audit import Actor
from creditdesk.billing import accounts, addresses, settings
from creditdesk.billing import schemas as bs
from creditdesk.db import Database
from tests.conftest import make_workspace
from tests.parties.factories import make_customer, master_actor


def configure(db: Database, *, actor: Actor, default_currency: str = "AUD", multi_currency: bool = True,
              enabled: list[str] | None = None, period: int = 30, min_days: int = 14, max_days: int = 60,
              periods: dict | None = None) -> None:
    body = {"default_currency": default_currency, "multi_currency": multi_currency,
            "enabled_currencies": ["EUR"] if enabled is None else enabled,
            "credit_terms": {"credit_period_days": period, "min_days": min_days, "max_days": max_days}}
    if periods:
        body["accounting_periods"] = periods
    data = bs.BillingSettingsUpdate.model_validate(body)
    db.write(lambda s: settings.update_settings(s, data, actor=actor))


def make_address(db: Database, *, actor: Actor, customer_id: str, city: str = "Sydney", **extra) -> str:
    data = bs.AddressCreate.model_validate({"line1": "1 George St", "city": city, "country": "AU", **extra})
    return db.write(lambda s: addresses.create_address(s, customer_id, data, actor=actor).id)


def make_account(db: Database, *, actor: Actor, customer_id: str, name: str = "Main account", **extra):
    data = bs.AccountCreate.model_validate({"customer_id": customer_id, "name": name, **extra})
    return db.write(lambda s: accounts.create_account(s, data, actor=actor))


class Books:
    """A configured workspace with a customer, an address and its master."""

    def __init__(self, db: Database, *, name: str = "Billing", **settings_kw):
        self.db = db
        self.ws = make_workspace(db, name=name)
        self.actor = master_actor(db, self.ws.id)
        configure(db, actor=self.actor, **settings_kw)
        self.customer_id = make_customer(db, actor=self.actor, name="Acme")
        self.address_id = make_address(db, actor=self.actor, customer_id=self.customer_id)

    def account(self, **extra):
        return make_account(self.db, actor=self.actor, customer_id=self.customer_id, **extra)
