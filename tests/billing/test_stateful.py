"""Invoices, credit notes and payments against a model: a hypothesis state machine raises and posts invoices
(back-dated or not), issues credit notes, records payments (oldest due first, or chosen, sometimes more
than is due), allocates what is left on the account, and moves the clock. After every step: each invoice's
amount due and status are the model's, the account's balance is the ledger's and the model's, the
outstanding amount is the model's (posted, not settled, past due), and `verify_invoices` and `ledger verify`
are clean. Refused steps must change nothing.

The model is written from the rules (README "Invoices and payments"), not from the code.
CREDITDESK_STATEFUL_EXAMPLES=200 runs a longer search.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, \
    run_state_machine_as_test

from creditdesk.billing import accounts, invoices, payments
from creditdesk.billing import invoice_schemas as ins
from creditdesk.billing.verify import verify_invoices
from creditdesk.errors import CreditdeskError
from creditdesk.ledger import service as ledger
from tests.billing.factories import Shop

EXAMPLES = int(os.environ.get("CREDITDESK_STATEFUL_EXAMPLES", "12"))
STEPS = int(os.environ.get("CREDITDESK_STATEFUL_STEPS", "20"))
PRICES = {"widget": 1000, "hours": 16500}  # gross per unit: hours are 150.00 + 10 % GST


@dataclass
class MInvoice:
    id: str
    number: str
    issue: date
    due: date
    total: int
    left: int  # amount due
    credited: int = 0
    allocs: list = field(default_factory=list)  # [payment id, amount] in allocation order

    @property
    def status(self) -> str:
        return "settled" if self.left == 0 else "posted"


class BillingMachine(RuleBasedStateMachine):
    db = None
    clock = None

    @initialize()
    def setup(self):
        self.shop = Shop(self.db)
        self.account = self.shop.account()
        self.invoices: dict[str, MInvoice] = {}
        self.credit = 0      # unallocated payments: the account's credit
        self.balance = 0
        self.numbers = 0
        self.unallocated: dict[str, int] = {}

    def today(self) -> date:
        return self.clock.now().date()

    def open(self) -> list[MInvoice]:
        return sorted((i for i in self.invoices.values() if i.left > 0), key=lambda i: (i.due, i.issue, i.number))

    # --- rules ---

    @rule(widgets=st.integers(0, 5), hours=st.integers(0, 3), days_ago=st.integers(0, 90))
    def raise_and_post(self, widgets, hours, days_ago):
        lines = [(p, q) for p, q in (("widget", widgets), ("hours", hours)) if q]
        issue = self.today() - timedelta(days=days_ago)
        draft = self.shop.invoice(self.account, lines, issue_date=issue)
        if not lines:
            with pytest.raises(CreditdeskError) as exc:
                self.shop.post(draft)
            assert exc.value.code == "invoice_empty"
            return
        inv = self.shop.post(draft)
        self.numbers += 1
        total = sum(PRICES[p] * q for p, q in lines)
        assert (inv.number, inv.total) == (f"INV-{self.numbers:06d}", total)
        self.invoices[inv.id] = MInvoice(inv.id, inv.number, issue, issue + timedelta(days=30), total, total)
        self.balance += total

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), fraction=st.integers(1, 120))
    def credit_note(self, data, fraction):
        inv = data.draw(st.sampled_from(sorted(self.invoices.values(), key=lambda i: i.id)))
        amount = max(1, inv.total * fraction // 100)
        if amount > inv.total - inv.credited:
            with pytest.raises(CreditdeskError) as exc:
                self.shop.credit(self.model_invoice(inv), amount=amount)
            assert exc.value.code == "credit_note_exceeds_due"
            return
        self.shop.credit(self.model_invoice(inv), amount=amount)
        # Beyond what is due, the credit releases payments (newest allocation first) to the account's credit.
        release = max(0, amount - inv.left)
        inv.left -= amount - release
        inv.credited += amount
        while release:
            pay_id, allocated = inv.allocs[-1]
            take = min(release, allocated)
            self.unallocated[pay_id] += take
            release -= take
            if take == allocated:
                inv.allocs.pop()
            else:
                inv.allocs[-1][1] -= take
        self.balance -= amount

    @rule(amount=st.integers(1, 60000))
    def pay_oldest_first(self, amount):
        pay = self.shop.pay(self.account, amount)
        left = amount
        for inv in self.open():
            take = min(left, inv.left)
            inv.left -= take
            left -= take
            if take:
                inv.allocs.append([pay.id, take])
        assert pay.unallocated == left
        self.unallocated[pay.id] = left
        self.balance -= amount

    @precondition(lambda self: self.invoices)
    @rule(data=st.data(), extra=st.integers(-5000, 2000), leftover=st.integers(0, 3000))
    def pay_chosen(self, data, extra, leftover):
        inv = data.draw(st.sampled_from(sorted(self.invoices.values(), key=lambda i: i.id)))
        amount = inv.left + extra
        if amount <= 0:
            return
        if inv.left == 0:
            with pytest.raises(CreditdeskError) as exc:
                self.shop.pay(self.account, amount + leftover, allocations=[(inv.id, amount)])
            assert exc.value.code == "invoice_not_open"
            return
        if amount > inv.left:
            with pytest.raises(CreditdeskError) as exc:
                self.shop.pay(self.account, amount + leftover, allocations=[(inv.id, amount)])
            assert exc.value.code == "overpayment"
            return
        pay = self.shop.pay(self.account, amount + leftover, allocations=[(inv.id, amount)])
        inv.left -= amount
        inv.allocs.append([pay.id, amount])
        self.unallocated[pay.id] = leftover
        self.balance -= amount + leftover

    @precondition(lambda self: any(self.unallocated.values()))
    @rule(data=st.data())
    def allocate_credit(self, data):
        pay_id = data.draw(st.sampled_from(sorted(p for p, left in self.unallocated.items() if left)))
        db, actor = self.db, self.shop.actor
        pay = db.write(lambda s: payments.allocate_payment(s, pay_id, ins.PaymentAllocate(), actor=actor))
        left = self.unallocated[pay_id]
        for inv in self.open():
            take = min(left, inv.left)
            inv.left -= take
            left -= take
            if take:
                inv.allocs.append([pay_id, take])
        assert pay.unallocated == left
        self.unallocated[pay_id] = left

    @rule(days=st.integers(1, 40))
    def time_passes(self, days):
        self.clock.advance(days=days)

    def model_invoice(self, inv: MInvoice):
        return self.shop.get(type("Ref", (), {"id": inv.id})())

    # --- invariants ---

    @invariant()
    def documents_and_ledger_agree_with_the_model(self):
        if not hasattr(self, "shop"):
            return
        with self.db.read() as s:
            for inv in self.invoices.values():
                row = invoices.get_invoice(s, self.shop.ws.id, inv.id)
                assert (row.amount_due, row.status) == (inv.left, inv.status), inv
            balance = accounts.account_balance(s, self.account).balance
            dp, cp, _, _ = ledger.recomputed_totals(s, account_ids=[self.account.ledger_account_id]).get(
                self.account.ledger_account_id, (0, 0, 0, 0))
            assert balance == dp - cp == self.balance
            today = self.today()
            expected = sum(i.left for i in self.invoices.values() if i.due < today)
            assert accounts.account_outstanding(s, self.account) == expected
            assert verify_invoices(s, workspace_id=self.shop.ws.id)[1] == []
            for pay_id, left in self.unallocated.items():  # released payments are the account's credit again
                assert payments.get_payment(s, self.shop.ws.id, pay_id).unallocated == left, pay_id
            assert ledger.verify(s, workspace_id=self.shop.ws.id).ok


@pytest.mark.timeout(1800)
def test_invoices_credit_notes_and_payments_behave_like_their_model(db, frozen_clock):
    BillingMachine.db, BillingMachine.clock = db, frozen_clock
    run_state_machine_as_test(BillingMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True, print_blob=True,
        suppress_health_check=list(HealthCheck)))
