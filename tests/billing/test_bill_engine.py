"""The billing run's set-wise path bills exactly what one-by-one billing bills (billing.bill_engine against
subscriptions.bill_locked): the same lines, proration, taxes, totals, periods, due dates, account entries and
balances, and the ledger verifies; accounts with a credit limit, a group or a pricing agreement go one by one."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from creditdesk.billing import accounts, billing_runs, subscriptions
from creditdesk.billing import schemas as bs
from creditdesk.billing import subscription_schemas as ss
from creditdesk.billing.invoice_models import Invoice, InvoiceLine
from creditdesk.billing.models import AccountEntry, BillingAccount
from creditdesk.billing.subscription_models import Subscription
from creditdesk.catalog import schemas as cs
from creditdesk.catalog import service as catalog
from creditdesk.ledger import service as ledger
from tests.billing.factories import configure
from tests.parties.factories import make_customer, master_actor

AS_OF = date(2027, 3, 1)
SPECS = [  # start, services (product, quantity, agreed price)
    ("2027-01-15", [("line", 1, None)]),
    ("2027-01-01", [("line", 2, None), ("tv", 1, 1234)]),
    ("2027-02-10", [("tv", 3, None)]),
]


def _world(db, workspace):
    actor = master_actor(db, workspace.id)
    configure(db, actor=actor)

    def catalogue(session):
        catalog.create_tax_class(session, cs.TaxClassCreate(code="gst", name="GST"), actor=actor)
        catalog.create_tax_rate(session, cs.TaxRateCreate(tax_class="gst", rate_bp=1000, valid_from=date(2020, 1, 1)),
                                actor=actor)
        plan = catalog.create_price_plan(session, cs.PricePlanCreate(code="aud", name="AUD", currency="AUD",
                                                                     is_default=True), actor=actor)
        for code, price in (("line", 4900), ("tv", 1999)):
            catalog.create_product(session, cs.ProductCreate(code=code, name=code.upper(), kind="subscription_service",
                                                             unit="month", tax_class="gst"), actor=actor)
            catalog.set_price(session, plan.id, cs.PriceSet(product=code, unit_price=price), actor=actor)
    db.write(catalogue)
    return actor


def _subscribe(db, actor, label: str) -> list[str]:
    out = []
    for n, (start, services) in enumerate(SPECS):
        customer_id = make_customer(db, actor=actor, name=f"{label} {n}")
        account = db.write(lambda s, c=customer_id: accounts.create_account(
            s, bs.AccountCreate(customer_id=c, name="Main"), actor=actor))
        sub = db.write(lambda s, a=account, start=start, services=services: subscriptions.create_subscription(
            s, ss.SubscriptionCreate(account_id=a.id, activate_on=date.fromisoformat(start), services=[
                ss.ServiceIn(product=p, quantity=q, unit_price=price) for p, q, price in services]), actor=actor))
        out.append(sub.id)
    return out


def _bills(db, sub_ids):
    with db.read() as session:
        rows = []
        for sub_id in sub_ids:
            inv = session.scalar(select(Invoice).where(Invoice.subscription_id == sub_id))
            lines = [(line.description, line.quantity_milli, line.unit_price, line.net, line.tax, line.gross,
                      line.tax_rate_bp) for line in session.scalars(select(InvoiceLine).where(
                          InvoiceLine.invoice_id == inv.id).order_by(InvoiceLine.position))]
            entries = sorted((e.direction, e.kind, e.amount) for e in session.scalars(select(AccountEntry).where(
                AccountEntry.account_id == inv.account_id)))
            account = session.get(BillingAccount, inv.account_id)
            rows.append({"status": inv.status, "totals": (inv.subtotal, inv.tax_total, inv.total, inv.amount_due),
                         "period": (inv.period_start, inv.period_end), "due": inv.due_date - inv.issue_date,
                         "lines": lines, "entries": entries, "balance": accounts.account_balance(session, account).balance,
                         "next": session.get(Subscription, sub_id).billed_through})
        return rows


def test_the_set_wise_path_bills_what_one_by_one_bills(db, workspace):
    actor = _world(db, workspace)
    one_by_one = _subscribe(db, actor, "Single")
    for sub_id in one_by_one:
        db.write(lambda s, i=sub_id: subscriptions.bill(s, i, ss.BillAsOf(as_of=AS_OF), actor=actor))
    in_a_run = _subscribe(db, actor, "Run")
    run = billing_runs.run(db, AS_OF, workspace_id=workspace.id, actor_for=lambda ws: actor)
    assert (run.subscriptions_billed, run.bills, run.refused) == (len(SPECS), len(SPECS), 0)
    assert _bills(db, in_a_run) == _bills(db, one_by_one)
    with db.read() as session:
        numbers = sorted(session.scalars(select(Invoice.number).where(Invoice.workspace_id == workspace.id)))
        assert numbers == [f"INV-{n:06d}" for n in range(1, 2 * len(SPECS) + 1)]
        assert ledger.verify(session, workspace_id=workspace.id).ok


def test_an_account_with_a_credit_limit_is_billed_one_by_one_and_can_be_refused(db, workspace):
    actor = _world(db, workspace)
    [sub_id, *_] = _subscribe(db, actor, "Limited")
    with db.read() as session:
        account_id = session.get(Subscription, sub_id).account_id
    from creditdesk.billing import credit_control
    from creditdesk.billing import credit_schemas as ccs

    db.write(lambda s: credit_control.change_credit_terms(s, account_id, ccs.CreditTermsChange(credit_limit=100),
                                                          actor=actor))
    run = billing_runs.run(db, AS_OF, workspace_id=workspace.id, actor_for=lambda ws: actor)
    assert run.refused == 1 and run.bills == len(SPECS) - 1
    with db.read() as session:
        assert session.scalar(select(Invoice.id).where(Invoice.subscription_id == sub_id)) is None
        assert session.get(Subscription, sub_id).billed_through <= AS_OF  # still due
