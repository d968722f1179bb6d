"""The billing run's set-wise path: many subscriptions billed with a few statements per table.

Billing one subscription through `subscriptions.bill_locked` costs about 30 ms: a draft invoice is created,
its lines priced (tax and price looked up per line), posted (credit decision, charge-first plan, numbering,
two ledger postings each through its own batch, audit snapshots read back), and the services updated, each a
separate round of ORM statements. A billing run bills thousands of subscriptions of the same few products.

For a batch of subscriptions this module reads what they need at once (their services, products, prices and
tax rates, accounts, group memberships and pricing agreements, the revenue and tax ledger accounts), plans
every bill in memory with the same functions as `bill_locked` (`subscriptions.pieces`, `bill_line`,
`catalog.lines.compute_line`, `accounts.due_date`), takes the invoice numbers in one step under the billing
settings row's lock, and writes invoices, lines, ledger transfers (one ledger Batch), account entries, audit
rows and the services' `billed_through` with one executemany per table.

It takes only the subscriptions whose bill needs none of the per-account rules that read or write more:
an active account without a credit limit (no rating, no own limit: nothing to decide, nothing to charge
first), outside any group and without a pricing agreement (prices from the currency's default plan or the
service's agreed price), with a bill whose total is not zero (a zero bill settles at posting). Every other
subscription is billed by `bill_locked`, one by one, so both paths apply the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, rawsql, webhooks
from creditdesk.audit import Actor
from creditdesk.billing import accounts, postings
from creditdesk.billing.group_models import GroupMember, PricingAgreement
from creditdesk.billing.invoice_models import Invoice, InvoiceLine
from creditdesk.billing.invoices import NUMBER_PREFIX, QUANTITY_SCALE
from creditdesk.billing.models import AccountEntry, BillingAccount
from creditdesk.billing.settings import require_settings
from creditdesk.billing.subscription_models import Subscription, SubscriptionService
from creditdesk.billing.subscriptions import BillLine, bill_line, pieces
from creditdesk.catalog import service as catalog
from creditdesk.catalog.lines import compute_line
from creditdesk.catalog.models import Product
from creditdesk.ids import new_ids
from creditdesk.ledger import service as ledger
from creditdesk.ledger.batch import Batch, Operation, Reference, TransferSpec
from creditdesk.ledger.models import NO_CACHE


@dataclass
class _Bill:
    sub: object  # a row of SUB_COLUMNS
    account: object  # a row of ACCOUNT_COLUMNS
    lines: list[BillLine]
    billed_through: dict[str, date]


def plain_accounts(session: Session, rows: list[BillingAccount]) -> set[str]:
    """The accounts whose bills need no per-account rule beyond the plan (see the module)."""
    ids = [a.id for a in rows if a.status == "active" and a.credit_limit is None and a.credit_rating_id is None]
    if not ids:
        return set()
    grouped = set(session.scalars(select(GroupMember.member_id).where(GroupMember.member_id.in_(ids))))
    grouped |= set(session.scalars(select(GroupMember.parent_id).where(GroupMember.parent_id.in_(ids))))
    agreed = set(session.scalars(select(PricingAgreement.account_id).where(PricingAgreement.account_id.in_(ids))))
    return set(ids) - grouped - agreed


def _system_account(session: Session, workspace_id: str, counterpart: str, currency: str, actor: Actor) -> str:
    key = postings.system_key(counterpart, currency)
    found = ledger.system_account(session, workspace_id=workspace_id, system_key=key)
    if found is not None:
        return found.id
    op = Operation(workspace_id, actor_id=actor.user_id)
    account_id = op.open_account(unit=currency, code=f"billing_{counterpart}", flags=NO_CACHE, system_key=key)
    ledger.one_shot(session, op)
    return account_id


# What the set-wise path reads, as plain rows (attribute access like the models, none of the ORM's cost per
# object): the planning functions (subscriptions.pieces, accounts.due_date) read these attributes only.
SUB_COLUMNS = (Subscription.id, Subscription.workspace_id, Subscription.account_id, Subscription.number,
               Subscription.status, Subscription.frequency, Subscription.billing_day, Subscription.started_on,
               Subscription.billed_through)
ACCOUNT_COLUMNS = (BillingAccount.id, BillingAccount.workspace_id, BillingAccount.customer_id,
                   BillingAccount.currency, BillingAccount.status, BillingAccount.credit_limit,
                   BillingAccount.credit_rating_id, BillingAccount.credit_period_days, BillingAccount.ledger_account_id)
SERVICE_COLUMNS = (SubscriptionService.id, SubscriptionService.subscription_id, SubscriptionService.product_id,
                   SubscriptionService.quantity, SubscriptionService.unit_price, SubscriptionService.start_on,
                   SubscriptionService.end_on, SubscriptionService.billed_through, SubscriptionService.pay_with_credits)


def bill_set(session: Session, subs: list, as_of: date, *, actor_for, accounts_by_id: dict
             ) -> tuple[list[tuple], list]:
    """Bill these subscriptions (rows of SUB_COLUMNS, locked by the caller with their accounts, all due, all of
    plain accounts, `accounts_by_id` rows of ACCOUNT_COLUMNS). Returns ([(subscription id, invoice id or None,
    total)], [subscription ids left for bill_locked])."""
    if not subs:
        return [], []
    now = clock.now()
    issue = now.date()
    account_of = accounts_by_id
    services: dict[str, list] = {}
    for svc in session.execute(select(*SERVICE_COLUMNS).where(
            SubscriptionService.subscription_id.in_([s.id for s in subs]))
            .order_by(SubscriptionService.created_at, SubscriptionService.id)):
        services.setdefault(svc.subscription_id, []).append(svc)
    products = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(
        {svc.product_id for rows in services.values() for svc in rows})))}
    prices: dict[tuple[str, str], int] = {}
    taxes: dict[str, tuple[str | None, int, bool]] = {}

    def price(product: Product, currency: str) -> int:
        if (product.id, currency) not in prices:
            prices[(product.id, currency)] = catalog.price_of(session, product.workspace_id, product.id,
                                                              currency).unit_price
        return prices[(product.id, currency)]

    def tax(product: Product) -> tuple[str | None, int, bool]:
        if product.id not in taxes:
            rate = catalog.tax_of(session, product, issue)
            taxes[product.id] = (rate.id, rate.rate_bp, bool(rate.inclusive)) if rate else (None, 0, False)
        return taxes[product.id]

    bills: list[_Bill] = []
    slow: list[Subscription] = []
    done: list[tuple] = []
    for sub in subs:
        account = account_of[sub.account_id]
        bill = _Bill(sub, account, [], {})
        for svc in services.get(sub.id, []):
            found = pieces(sub, svc, as_of)
            if not found:
                continue
            product = products[svc.product_id]
            unit = svc.unit_price if svc.unit_price is not None else price(product, account.currency)
            bill.lines += [bill_line(svc, product, piece, unit) for piece in found]
            bill.billed_through[svc.id] = found[-1].end
        if bill.lines and (all(line.unit_price == 0 for line in bill.lines)
                           or any(line.service.pay_with_credits for line in bill.lines)):
            # A bill of nothing settles when posted, and usage paid with credits burns packs: one by one.
            slow.append(sub.id)
            continue
        bills.append(bill)
    billed = [b for b in bills if b.lines]
    numbers = iter(())
    if billed:
        settings = require_settings(session, subs[0].workspace_id, for_update=True)
        first = settings.next_invoice_number
        settings.next_invoice_number += len(billed)
        numbers = iter(range(first, first + len(billed)))
    invoice_rows, line_rows, entry_rows, events = [], [], [], []
    # Ids made at once (ids.new_ids: one clock read, no per-id randomness), and each distinct line priced once.
    line_count = sum(len(b.lines) for b in billed)
    fresh = {prefix: iter(new_ids(prefix, count)) for prefix, count in (
        ("inv", len(billed)), ("inl", line_count), ("evt", 2 * len(billed)), ("ent", 2 * len(billed)))}
    totals_of: dict[tuple, object] = {}
    batch = Batch(session)
    operations = []
    systems: dict[tuple[str, str, str], str] = {}
    for bill in bills:
        if not bill.lines:
            continue
        actor = actor_for(bill.sub.workspace_id)
        account = bill.account
        invoice_id = next(fresh["inv"])
        subtotal = tax_total = total = 0
        for position, line in enumerate(bill.lines, start=1):
            product, unit = line.product, line.unit_price
            rate_id, rate_bp, inclusive = tax(product)
            key = (unit, line.quantity, rate_bp, inclusive)
            totals = totals_of.get(key)
            if totals is None:
                totals = totals_of[key] = compute_line(unit, Decimal(line.quantity), rate_bp=rate_bp,
                                                       inclusive=inclusive)
            line_rows.append({
                "id": next(fresh["inl"]), "workspace_id": account.workspace_id, "invoice_id": invoice_id,
                "position": position, "product_id": product.id, "product_code": product.code,
                "description": line.description, "quantity_milli": line.quantity * QUANTITY_SCALE,
                "unit_price": unit, "discount_kind": None, "discount_value": None, "tax_rate_id": rate_id,
                "tax_rate_bp": rate_bp, "tax_inclusive": inclusive, "net": totals.net, "tax": totals.tax,
                "gross": totals.gross, "discount_amount": totals.discount, "credit_quantity_milli": 0,
                "credits_value": 0, "consumption_id": None, "package_holder_kind": None, "package_holder_id": None,
                "created_at": now, "updated_at": now})
            subtotal, tax_total, total = subtotal + totals.net, tax_total + totals.tax, total + totals.gross
        number = f"{NUMBER_PREFIX}{next(numbers):06d}"
        start, end = min(line.piece.start for line in bill.lines), max(line.piece.end for line in bill.lines)
        invoice_rows.append({
            "id": invoice_id, "workspace_id": account.workspace_id, "account_id": account.id,
            "customer_id": account.customer_id, "number": number, "status": "posted", "currency": account.currency,
            "price_plan_id": None, "issue_date": issue, "due_date": accounts.due_date(account, issue),
            "notes": f"Subscription {bill.sub.number}", "subtotal": subtotal, "tax_total": tax_total, "total": total,
            "credits_value": 0, "amount_paid": 0, "amount_credited": 0, "amount_written_off": 0, "amount_due": total, "posted_at": now,
            "settled_at": None, "voided_at": None, "created_by": actor.user_id, "created_at": now, "updated_at": now,
            "subscription_id": bill.sub.id, "period_start": start, "period_end": end})
        ref = Reference(kind="invoice", id=invoice_id)
        op = Operation(account.workspace_id, actor_id=actor.user_id)
        legs = []
        for amount, counterpart, kind in ((subtotal, "revenue", "invoice"), (tax_total, "tax", "invoice_tax")):
            if amount > 0:
                key = (account.workspace_id, counterpart, account.currency)
                if key not in systems:
                    systems[key] = _system_account(session, *key, actor)
                system = systems[key]
                op.post(TransferSpec(account.ledger_account_id, system, amount, kind, ref))
                legs.append((amount, kind))
        operations.append((op, legs, account, invoice_id))
        after = {"id": invoice_id, "number": number, "status": "posted", "total": total, "subscription_id":
                 bill.sub.id, "period_start": start, "period_end": end, "lines": len(bill.lines), "billing_run": True}
        events.append(audit.event_row(actor=actor, action="invoice.post", object_type="invoice", object_id=invoice_id,
                                      after=after, event_id=next(fresh["evt"])))
        events.append(audit.event_row(actor=actor, action="subscription.bill", object_type="subscription",
                                      object_id=bill.sub.id, after={"as_of": as_of, "invoice_id": invoice_id,
                                                                    "billed_through": bill.billed_through},
                                      event_id=next(fresh["evt"])))
        done.append((bill.sub.id, invoice_id, total))
    if operations:
        batch.load(op for op, *_ in operations)
        for op, legs, account, invoice_id in operations:
            transfers = batch.apply(op)
            for transfer, (amount, kind) in zip(transfers, legs):
                entry_rows.append({"id": next(fresh["ent"]), "workspace_id": account.workspace_id, "account_id": account.id,
                                   "transfer_id": transfer.id, "direction": "debit", "kind": kind, "amount": amount,
                                   "source_amount": None, "source_currency": None, "rate_id": None,
                                   "rate_scaled": None, "rate_valid_from": None, "created_at": transfer.created_at})
        rawsql.insert_many(session, Invoice.__table__, invoice_rows)
        rawsql.insert_many(session, InvoiceLine.__table__, line_rows)
        batch.write()
        rawsql.insert_many(session, AccountEntry.__table__, entry_rows)
        rawsql.insert_many(session, audit.AuditEvent.__table__, events)
        for row in invoice_rows:
            webhooks.emit(session, row["workspace_id"], "invoice.posted", lambda row=row: webhooks.invoice_data(row))
    svc_table, sub_table = SubscriptionService.__table__, Subscription.__table__
    at = rawsql.bind(session, svc_table.c.updated_at, now)
    rawsql.execute_many(session, "UPDATE subscription_services SET billed_through = :through, updated_at = :at "
                                 "WHERE id = :id", [
        {"id": svc_id, "through": rawsql.bind(session, svc_table.c.billed_through, day), "at": at}
        for bill in bills for svc_id, day in bill.billed_through.items()])
    due_rows = []
    for bill in bills:
        due = _next_due(bill, services.get(bill.sub.id, []))
        due_rows.append({"id": bill.sub.id, "through": rawsql.bind(session, sub_table.c.billed_through, due),
                         "at": at})
        if not bill.lines:
            done.append((bill.sub.id, None, 0))
    rawsql.execute_many(session, "UPDATE subscriptions SET billed_through = :through, updated_at = :at "
                                 "WHERE id = :id", due_rows)
    return done, slow


def _next_due(bill: _Bill, rows: list[SubscriptionService]) -> date | None:
    """The subscription's billed_through: the earliest day a service still has to bill (subscriptions._refresh_due,
    on the services as billed here)."""
    dues = []
    for svc in rows:
        nxt = bill.billed_through.get(svc.id, svc.billed_through) or svc.start_on
        if svc.end_on is None or nxt < svc.end_on:
            dues.append(nxt)
    return min(dues) if dues else None
