"""An invoice closed by a write-off on its page (TestClient): "Written off", not "paid"; never paid, no
credit note is offered (and one posted by hand is refused with the reason, nothing written); partly paid,
the credit note offers at most what was paid, and it works."""

from __future__ import annotations

from creditdesk.billing import invoice_schemas as ins
from creditdesk.billing import invoices, lifecycle, payments
from creditdesk.billing.verify import verify_invoices
from creditdesk.ledger import service as ledger
from tests.parties.factories import master_actor
from tests.web.conftest import logged_in, post_form
from tests.web.test_invoice_pages import setup_books


def posted(db, actor, account, quantity):
    def fn(s):
        inv = invoices.create_invoice(s, ins.InvoiceCreate.model_validate({
            "account_id": account.id, "lines": [{"product": "design", "quantity": quantity}]}), actor=actor)
        return invoices.post_invoice(s, inv.id, actor=actor).id
    return db.write(fn)


def test_written_off_invoices_offer_only_what_can_work(web, db, world):
    account = setup_books(db, world)
    actor = master_actor(db, world.workspace_id)
    never_paid = posted(db, actor, account, "5")     # 600.00
    partly = posted(db, actor, account, "2")         # 240.00
    db.write(lambda s: payments.record_payment(s, ins.PaymentCreate(
        account_id=account.id, amount=10_000, allocations=[ins.AllocationIn(invoice_id=partly, amount=10_000)]),
        actor=actor))
    db.write(lambda s: lifecycle.write_off(s, account.id, "Customer gone", actor=actor))
    client = logged_in(web, world.master_email)
    url = f"/invoices/{never_paid}"
    page = client.get(url).text
    assert 'id="invoice-status">Written off' in page and "This invoice is paid" not in page
    assert 'id="credit-note"' not in page and "The whole invoice" not in page
    assert 'id="written-off-note"' in page and 'id="invoice-written-off">$600.00' in page
    r = post_form(client, f"{url}/credit-note", {"full": "1", "reason": "Try"}, page=url)
    assert r.status_code == 422 and "written off" in r.text and "payments do not cover" not in r.text
    url = f"/invoices/{partly}"
    page = client.get(url).text
    assert 'id="invoice-status">Written off' in page and 'id="credit-note-written-off"' in page
    assert "Everything paid ($100.00)" in page and "The whole invoice" not in page
    over = post_form(client, f"{url}/credit-note", {"credit_amount": "100.01", "reason": "Too much"}, page=url)
    assert over.status_code == 422 and 'id="err-credit_amount"' in over.text
    r = post_form(client, f"{url}/credit-note", {"full": "1", "reason": "Give back what they paid"}, page=url)
    assert r.status_code == 303
    page = client.get(url).text
    assert "Credit note CN-000001 issued." in page and 'id="credit-note"' not in page
    # What was paid is now the account's credit, offered on the account page.
    assert 'id="account-credit-available">$100.00' in client.get(f"/accounts/{account.id}").text
    with db.read() as s:
        assert verify_invoices(s, workspace_id=world.workspace_id)[1] == []
        assert ledger.verify(s, workspace_id=world.workspace_id).ok
