"""An invoice closed by a write-off: a credit note can give back only what was paid on it (the written-off part
is debt already closed); never paid, nothing can be credited (422 credit_note_exceeds_due, saying it was
written off), with nothing written.
The money adds up after each step."""

from __future__ import annotations

import pytest

from creditdesk.billing import credit_notes, lifecycle, payments
from creditdesk.billing.verify import verify_invoices
from creditdesk.errors import InvalidInput
from creditdesk.ledger import service as ledger
from tests.billing.factories import Shop


def sound(db, shop):
    with db.read() as s:
        assert verify_invoices(s, workspace_id=shop.ws.id)[1] == []
        assert ledger.verify(s, workspace_id=shop.ws.id).ok


def write_off(db, shop, account):
    return db.write(lambda s: lifecycle.write_off(s, account.id, "Customer gone", actor=shop.actor))


def test_a_written_off_invoice_never_paid_cannot_be_credited(db):
    shop = Shop(db)
    account = shop.account()
    inv = shop.posted(account, [("hours", "4"), ("widget", "3")])  # 660.00 + 30.00
    write_off(db, shop, account)
    got = shop.get(inv)
    assert (got.status, got.amount_due, got.amount_paid, got.amount_written_off) == ("settled", 0, 0, 69_000)
    assert credit_notes.creditable(got) == 0
    for body in ({"full": True}, {"amount": 100}):
        with pytest.raises(InvalidInput) as exc:
            shop.credit(inv, **body)
        assert exc.value.code == "credit_note_exceeds_due" and "written off" in exc.value.message
    got = shop.get(inv)
    assert (got.amount_credited, got.amount_written_off) == (0, 69_000)
    sound(db, shop)


def test_a_partly_paid_written_off_invoice_credits_at_most_what_was_paid(db):
    shop = Shop(db)
    account = shop.account()
    inv = shop.posted(account, [("hours", "2")])   # 330.00
    shop.pay(account, 10_000)                       # 100.00 paid, 230.00 written off
    write_off(db, shop, account)
    assert credit_notes.creditable(shop.get(inv)) == 10_000
    with pytest.raises(InvalidInput) as exc:
        shop.credit(inv, amount=10_001)
    assert exc.value.code == "credit_note_exceeds_due" and exc.value.details["creditable"] == 10_000
    note = shop.credit(inv, full=True, reason="Refund what they paid")
    assert note.amount == 10_000
    got = shop.get(inv)
    assert (got.amount_paid, got.amount_credited, got.amount_written_off, got.amount_due) == (0, 10_000, 23_000, 0)
    with db.read() as s:  # what was paid is now the account's credit, to apply or refund
        assert payments.account_credit(s, account.id) == 10_000
    assert credit_notes.creditable(got) == 0
    sound(db, shop)
