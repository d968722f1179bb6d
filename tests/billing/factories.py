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


class Shop(Books):
    """Books with a catalogue: GST 10 % (exclusive, from 2020), products `hours` (GST) and `widget` (no tax),
    default plans AUD (hours 150.00, widget 10.00) and EUR (hours 130.00), and helpers for invoices,
    credit notes and payments through the real services."""

    def __init__(self, db: Database, **kw):
        super().__init__(db, **kw)
        from datetime import date

        from creditdesk.catalog import schemas as cs
        from creditdesk.catalog import service as catalog

        actor = self.actor

        def fn(s):
            catalog.create_tax_class(s, cs.TaxClassCreate(code="gst", name="GST"), actor=actor)
            catalog.create_tax_rate(s, cs.TaxRateCreate(tax_class="gst", rate_bp=1000, valid_from=date(2020, 1, 1)),
                                    actor=actor)
            catalog.create_product(s, cs.ProductCreate(code="hours", name="Consulting hours", kind="service",
                                                       unit="hour", tax_class="gst"), actor=actor)
            catalog.create_product(s, cs.ProductCreate(code="widget", name="Widget", kind="physical_good",
                                                       unit="each"), actor=actor)
            plans = {}
            for currency in ("AUD", "EUR"):
                plans[currency] = catalog.create_price_plan(s, cs.PricePlanCreate(
                    code=currency.lower(), name=currency, currency=currency, is_default=True), actor=actor).id
            for plan, product, price in (("AUD", "hours", 15000), ("AUD", "widget", 1000), ("EUR", "hours", 13000)):
                catalog.set_price(s, plans[plan], cs.PriceSet(product=product, unit_price=price), actor=actor)
            return plans
        self.plans = db.write(fn)

    def invoice(self, account, lines=(("hours", "2"),), actor=None, **extra):
        from creditdesk.billing import invoice_schemas as ins
        from creditdesk.billing import invoices

        data = ins.InvoiceCreate.model_validate({
            "account_id": account.id, "lines": [{"product": p, "quantity": q} for p, q in lines], **extra})
        return self.db.write(lambda s: invoices.create_invoice(s, data, actor=actor or self.actor))

    def post(self, invoice, actor=None):
        from creditdesk.billing import invoices

        return self.db.write(lambda s: invoices.post_invoice(s, invoice.id, actor=actor or self.actor))

    def posted(self, account, lines=(("hours", "2"),), **extra):
        return self.post(self.invoice(account, lines, **extra))

    def pay(self, account, amount, allocations=None, actor=None, **extra):
        from creditdesk.billing import invoice_schemas as ins
        from creditdesk.billing import payments

        body = {"account_id": account.id, "amount": amount, **extra}
        if allocations is not None:
            body["allocations"] = [{"invoice_id": i, "amount": a} for i, a in allocations]
        data = ins.PaymentCreate.model_validate(body)
        return self.db.write(lambda s: payments.record_payment(s, data, actor=actor or self.actor))

    def credit(self, invoice, actor=None, **body):
        from creditdesk.billing import credit_notes
        from creditdesk.billing import invoice_schemas as ins

        data = ins.CreditNoteCreate.model_validate(body)
        return self.db.write(lambda s: credit_notes.create_credit_note(s, invoice.id, data, actor=actor or self.actor))

    def get(self, invoice):
        from creditdesk.billing import invoices

        with self.db.read() as s:  # detached before the read's rollback would expire it
            found = invoices.get_invoice(s, self.ws.id, invoice.id)
            s.expunge(found)
            return found
