"""The account lifecycle: suspend, reactivate, terminate (pending sources, zero balance), write off; each
precondition with its code and nothing written; every change audited; who may."""

from __future__ import annotations

import pytest

from creditdesk.billing import accounts, credit_control, lifecycle, postings
from creditdesk.billing.models import AccountEntry, BillingAccount
from creditdesk.errors import Conflict, InvalidInput, NotPermitted
from creditdesk.ledger import service as ledger
from tests.api.helpers import audit_rows
from tests.billing.factories import Books
from tests.parties.factories import actor_of, make_user


def act(db, fn, *args, **kw):
    return db.write(lambda s: fn(s, *args, **kw))


def row(db, account_id) -> BillingAccount:
    with db.read() as s:
        account = s.get(BillingAccount, account_id)
        s.expunge(account)
        return account


def balance(db, account_id) -> int:
    with db.read() as s:
        return accounts.account_balance(s, s.get(BillingAccount, account_id)).balance


def refused(db, code, fn, *args, error=Conflict, **kw):
    with pytest.raises(error) as exc:
        act(db, fn, *args, **kw)
    assert exc.value.code == code


def test_suspend_and_reactivate(db):
    books = Books(db)
    account = books.account()
    manager = actor_of(db, make_user(db, actor=books.actor, name="Manager", role="manager"))
    member = actor_of(db, make_user(db, actor=books.actor, name="Member"))
    with pytest.raises(NotPermitted):
        act(db, lifecycle.suspend, account.id, "dispute", actor=member)
    refused(db, "invalid_suspension_reason", lifecycle.suspend, account.id, "holiday", actor=manager,
            error=InvalidInput)
    refused(db, "account_not_suspended", lifecycle.reactivate, account.id, actor=manager)
    suspended = act(db, lifecycle.suspend, account.id, "credit_check", actor=manager, note="Bureau check")
    assert (suspended.status, suspended.suspension_reason) == ("suspended", "credit_check")
    refused(db, "account_already_suspended", lifecycle.suspend, account.id, "dispute", actor=manager)
    # Suspended: transactions still post; new subscriptions and services are refused.
    db.write(lambda s: postings.post_account_entry(s, s.get(BillingAccount, account.id), 100, "debit", "invoice"))
    with db.read() as s:
        row_ = s.get(BillingAccount, account.id)
        assert not credit_control.decide_spend(s, row_, "subscription_activate", 0).allowed
        assert credit_control.decide_spend(s, row_, "invoice_post", 10).allowed
    active = act(db, lifecycle.reactivate, account.id, actor=manager)
    assert (active.status, active.suspension_reason) == ("active", None)
    [suspend] = audit_rows(db, books.ws.id, action="account.suspend")
    assert (suspend.before["status"], suspend.after["status"], suspend.after["suspension_reason"],
            suspend.after["note"]) == ("active", "suspended", "credit_check", "Bureau check")
    [again] = audit_rows(db, books.ws.id, action="account.reactivate")
    assert (again.before["status"], again.after["status"]) == ("suspended", "active")


def test_terminate_waits_for_pending_transactions_and_a_zero_balance(db):
    books = Books(db)
    account = books.account()
    manager = actor_of(db, make_user(db, actor=books.actor, name="Manager", role="manager"))
    with pytest.raises(NotPermitted):
        act(db, lifecycle.terminate, account.id, actor=manager)
    drafts = {account.id: 2}

    def draft_invoices(session, acc):  # a fake pending source: the invoices work registers the real one
        return drafts.get(acc.id, 0)

    lifecycle.register_pending_source(draft_invoices)
    try:
        with pytest.raises(Conflict) as exc:
            act(db, lifecycle.terminate, account.id, actor=books.actor)
        assert (exc.value.code, exc.value.details["pending"]) == ("account_has_pending_transactions", 2)
        drafts.clear()
        db.write(lambda s: postings.post_account_entry(s, s.get(BillingAccount, account.id), 300, "debit",
                                                       "invoice"))
        refused(db, "account_balance_not_zero", lifecycle.terminate, account.id, actor=books.actor)
        assert row(db, account.id).status == "active"
        act(db, lifecycle.suspend, account.id, "dispute", actor=manager)
        act(db, lifecycle.write_off, account.id, "Customer insolvent", actor=books.actor)
        done = act(db, lifecycle.terminate, account.id, actor=books.actor, note="Closed")
    finally:
        lifecycle.unregister_pending_source(draft_invoices)
    assert (done.status, done.suspension_reason) == ("terminated", None)
    for fn, args in ((lifecycle.terminate, ()), (lifecycle.reactivate, ()), (lifecycle.suspend, ("dispute",))):
        refused(db, "account_terminated", fn, account.id, *args, actor=books.actor)
    refused(db, "account_terminated", lifecycle.write_off, account.id, "again", actor=books.actor)
    with pytest.raises(Conflict) as exc:  # billing itself refuses postings
        db.write(lambda s: postings.post_account_entry(s, s.get(BillingAccount, account.id), 1, "debit", "x"))
    assert exc.value.code == "account_terminated"
    [event] = audit_rows(db, books.ws.id, action="account.terminate")
    assert (event.before["status"], event.after["status"]) == ("suspended", "terminated")


def test_write_off_closes_the_debt_through_the_ledger(db):
    books = Books(db)
    account = books.account()
    refused(db, "nothing_to_write_off", lifecycle.write_off, account.id, "Nothing owed", actor=books.actor)
    refused(db, "reason_required", lifecycle.write_off, account.id, "  ", actor=books.actor, error=InvalidInput)
    db.write(lambda s: postings.post_account_entry(s, s.get(BillingAccount, account.id), 12_345, "debit",
                                                   "invoice"))
    manager = actor_of(db, make_user(db, actor=books.actor, name="Manager", role="manager"))
    with pytest.raises(NotPermitted):
        act(db, lifecycle.write_off, account.id, "Manager", actor=manager)
    out = act(db, lifecycle.write_off, account.id, "Uncollectable", actor=books.actor)
    assert (out.amount, out.currency, out.account.id) == (12_345, "AUD", account.id)
    assert balance(db, account.id) == 0
    with db.read() as s:
        entry = s.get(AccountEntry, out.entry_id)
        assert (entry.kind, entry.direction, entry.amount) == ("write_off", "credit", 12_345)
        assert ledger.verify(s, workspace_id=books.ws.id).ok
    [event] = audit_rows(db, books.ws.id, action="account.write_off")
    assert (event.before["balance"], event.after["balance"], event.after["written_off"], event.after["reason"],
            event.after["transfer_id"]) == (12_345, 0, 12_345, "Uncollectable", out.transfer_id)
    refused(db, "nothing_to_write_off", lifecycle.write_off, account.id, "Twice", actor=books.actor)
    # An account in credit has no debt either.
    db.write(lambda s: postings.post_account_entry(s, s.get(BillingAccount, account.id), 5, "credit", "payment"))
    refused(db, "nothing_to_write_off", lifecycle.write_off, account.id, "In credit", actor=books.actor)


def test_write_off_closes_the_open_invoices_it_was_made_of(db):
    """The walker's finding: after a write-off the balance was 0 but the invoices stayed posted and overdue.
    The debt's invoices are closed, oldest due first, up to the amount written off; verify agrees."""
    from creditdesk.billing import verify
    from tests.billing.factories import Shop

    shop = Shop(db)
    account = shop.account()
    first = shop.posted(account, lines=(("hours", "2"),))    # 330.00 with GST
    second = shop.posted(account, lines=(("hours", "1"),))   # 165.00
    shop.pay(account, 10_000, allocations=[(first.id, 10_000)])  # 100.00 of the first paid
    assert balance(db, account.id) == 33_000 + 16_500 - 10_000
    out = act(db, lifecycle.write_off, account.id, "Customer gone", actor=shop.actor)
    assert out.amount == 39_500
    one, two = shop.get(first), shop.get(second)
    assert (one.status, one.amount_due, one.amount_written_off, one.amount_paid) == ("settled", 0, 23_000, 10_000)
    assert (two.status, two.amount_due, two.amount_written_off) == ("settled", 0, 16_500)
    [event] = audit_rows(db, shop.ws.id, action="account.write_off")
    assert event.after["invoices"] == [{"number": one.number, "amount": 23_000},
                                       {"number": two.number, "amount": 16_500}]
    assert len(audit_rows(db, shop.ws.id, action="invoice.write_off")) == 2
    with db.read() as s:
        checked, problems = verify.verify_invoices(s, workspace_id=shop.ws.id)
        assert checked == 2 and problems == []
        # verify reads the invoices' written-off part against the write-off entries.
        tampered = s.get(type(one), one.id)
        tampered.total += 1
        tampered.amount_written_off += 1
        s.flush()
        assert any("write-off entries" in p for p in verify.verify_invoices(s, workspace_id=shop.ws.id)[1])


def test_terminate_waits_for_the_wallet_to_be_refunded(db):
    """A terminated account takes no posting: money left in its wallet could never go back to the customer."""
    from creditdesk.billing import wallets
    from creditdesk.billing import wallet_schemas as ws

    books = Books(db)
    account = books.account()
    act(db, wallets.open_wallet, account.id, actor=books.actor)
    act(db, wallets.top_up, account.id, ws.WalletTopUp(amount=5100), actor=books.actor)
    assert balance(db, account.id) == 0  # the account owes nothing and is owed nothing: only the wallet holds money
    with pytest.raises(Conflict) as exc:
        act(db, lifecycle.terminate, account.id, actor=books.actor)
    assert (exc.value.code, exc.value.details["wallet_balance"]) == ("wallet_not_empty", 5100)
    assert row(db, account.id).status == "active"
    assert audit_rows(db, books.ws.id, action="account.terminate") == []
    act(db, wallets.refund, account.id, ws.WalletRefund(amount=5100, reason="Account closed"), actor=books.actor)
    assert act(db, lifecycle.terminate, account.id, actor=books.actor).status == "terminated"
