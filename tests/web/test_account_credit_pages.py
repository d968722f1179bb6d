"""The account's credit in the back office (TestClient): an overpayment and a credit note on a paid invoice
show as credit on the account page; "Apply the credit" (oldest due first, or the amounts typed next to the
invoices) and the invoice page's "This account has $X of credit: apply it"; Refund credit with amount, method
and reason, never more than the credit (the message next to the amount, nothing written); each form once
(a double submit applies or refunds once); members see no forms and are refused; verify passes."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from creditdesk.billing import payments
from creditdesk.billing.invoice_models import Refund
from creditdesk.billing.verify import verify_invoices
from creditdesk.ledger import service as ledger
from tests.web.conftest import csrf_of, logged_in
from tests.web.test_invoice_pages import setup_books


def key_of(html: str, form_id: str) -> str:
    return re.search(rf'id="{form_id}".*?name="idempotency_key" value="([^"]+)"', html, re.S).group(1)


def submit(client, page: str, action: str, form_id: str, data: dict, *, key: str | None = None):
    html = client.get(page).text
    return client.post(action, data={**data, "csrf_token": csrf_of(html), "idempotency_key": key or key_of(
        html, form_id)}, follow_redirects=False)


def invoice(client, account_id: str, quantity: str) -> str:
    """A posted invoice of `quantity` hours of design (120.00 each, no tax) through the forms."""
    page = f"/invoices/new?account_id={account_id}"
    r = submit(client, page, "/invoices/new", "invoice-new", {"account_id": account_id, "issue_date": "", "notes": ""})
    url = r.headers["location"]
    r = submit(client, url, f"{url}/lines", "add-line", {"product": "design", "quantity": quantity})
    assert r.status_code == 303, r.text
    r = submit(client, url, f"{url}/post", "", {}, key=re.search(
        r'action="[^"]*/post".*?name="idempotency_key" value="([^"]+)"', client.get(url).text, re.S).group(1))
    assert r.status_code == 303
    return url


def sound(db, workspace_id):
    with db.read() as s:
        assert verify_invoices(s, workspace_id=workspace_id)[1] == []
        assert ledger.verify(s, workspace_id=workspace_id).ok


def credit_of(db, account_id):
    with db.read() as s:
        return payments.account_credit(s, account_id)


def test_overpayment_applied_from_the_invoice_page_and_the_account_page(web, db, world):
    account = setup_books(db, world)
    client = logged_in(web, world.master_email)
    first = invoice(client, account.id, "1")  # 120.00
    r = submit(client, first, f"{first}/pay", "record-payment",
               {"amount": "158.81", "method": "bank_transfer", "reference": "EFT", "received_on": ""})
    assert r.status_code == 303
    assert credit_of(db, account.id) == 3_881
    acc = f"/accounts/{account.id}"
    page = client.get(acc).text
    assert 'id="account-credit-available">$38.81' in page and 'id="credit-apply"' in page
    assert 'id="no-open-invoices"' in page  # nothing due yet: nothing to apply it to
    second = invoice(client, account.id, "0.25")  # 30.00
    third = invoice(client, account.id, "0.5")    # 60.00
    # A later invoice does not use the credit by itself; its page offers it.
    page = client.get(second).text
    assert 'id="invoice-due"><strong>$30.00' in page
    assert "This account has $38.81 of credit: apply it" in page and "Apply $30.00 to this invoice" in page
    key = key_of(page, "apply-credit")
    r = submit(client, second, f"{second}/apply-credit", "apply-credit", {}, key=key)
    again = submit(client, second, f"{second}/apply-credit", "apply-credit", {}, key=key)
    assert r.status_code == again.status_code == 303
    assert credit_of(db, account.id) == 881  # applied once
    page = client.get(second).text
    assert 'id="invoice-status">settled' in page and "account-credit-notice" not in page
    # The account page: amounts typed next to the invoices, more than the credit refused next to the field.
    third_id = third.rsplit("/", 1)[1]
    r = submit(client, acc, f"{acc}/credit/apply", "credit-apply", {f"amount_{third_id}": "60.01"})
    assert r.status_code == 422 and f'id="err-amount_{third_id}"' in r.text  # more than the invoice has due
    r = submit(client, acc, f"{acc}/credit/apply", "credit-apply", {f"amount_{third_id}": "9.00"})
    assert r.status_code == 409
    assert "That is $9.00: more than the account&#39;s credit ($8.81)." in r.text  # above the form
    assert re.search(rf'name="amount_{third_id}"[^>]*value="9.00"', r.text)  # the amount typed is kept
    assert credit_of(db, account.id) == 881
    r = submit(client, acc, f"{acc}/credit/apply", "credit-apply", {f"amount_{third_id}": "5.00"})
    assert r.status_code == 303
    follow = client.get(r.headers["location"]).text
    assert "Credit applied: $5.00 to INV-000003." in follow
    # Empty amounts: oldest due first, as far as it goes.
    r = submit(client, acc, f"{acc}/credit/apply", "credit-apply", {f"amount_{third_id}": ""})
    assert r.status_code == 303 and credit_of(db, account.id) == 0
    assert 'id="invoice-due"><strong>$51.19' in client.get(third).text
    sound(db, world.workspace_id)


def test_refund_of_a_credit_note_on_a_paid_invoice(web, db, world):
    account = setup_books(db, world)
    client = logged_in(web, world.master_email)
    url = invoice(client, account.id, "1")
    r = submit(client, url, f"{url}/mark-paid", "mark-paid", {"method": "cash"})
    assert r.status_code == 303
    r = submit(client, url, f"{url}/credit-note", "credit-note", {"credit_amount": "20", "reason": "Discount"})
    assert r.status_code == 303 and credit_of(db, account.id) == 2_000
    acc = f"/accounts/{account.id}"
    page = client.get(acc).text
    assert "$20.00" in page and 'id="credit-refund"' in page
    # More than the credit: the message next to the amount, the values kept, nothing written.
    r = submit(client, acc, f"{acc}/credit/refund", "credit-refund",
               {"amount": "20.01", "method": "bank_transfer", "reason": "Overpaid", "reference": ""})
    assert r.status_code == 409 and 'id="err-amount"' in r.text and "At most $20.00 can be refunded" in r.text
    assert 'value="Overpaid"' in r.text
    r = submit(client, acc, f"{acc}/credit/refund", "credit-refund",
               {"amount": "5", "method": "cash", "reason": "", "reference": ""})
    assert r.status_code == 422 and 'id="err-reason"' in r.text
    key = key_of(client.get(acc).text, "credit-refund")
    form = {"amount": "20", "method": "bank_transfer", "reason": "Discount paid back", "reference": "EFT 9"}
    first = submit(client, acc, f"{acc}/credit/refund", "credit-refund", form, key=key)
    again = submit(client, acc, f"{acc}/credit/refund", "credit-refund", form, key=key)
    assert first.status_code == again.status_code == 303
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Refund).where(Refund.account_id == account.id)) == 1
    page = client.get(first.headers["location"]).text
    assert "Refunded $20.00 of the account&#39;s credit (bank transfer)." in page
    assert 'id="account-refunds"' in page and "Discount paid back" in page
    assert 'id="account-credit-available">$0.00' in page and 'id="credit-refund"' not in page
    assert 'id="account-balance">$0.00' in page  # the refund is posted: the account owes nothing, holds nothing
    sound(db, world.workspace_id)


def test_members_see_no_credit_forms_and_are_refused(web, db, world):
    account = setup_books(db, world)
    master = logged_in(web, world.master_email)
    url = invoice(master, account.id, "1")
    submit(master, url, f"{url}/pay", "record-payment",
           {"amount": "130", "method": "cash", "reference": "", "received_on": ""})
    from fastapi.testclient import TestClient

    with TestClient(web.app, base_url="http://testserver") as other:
        member = logged_in(other, world.member_email)
        acc = f"/accounts/{account.id}"
        page = member.get(acc).text
        assert 'id="account-credit-available">$10.00' in page and 'id="credit-refund"' not in page
        r = member.post(f"{acc}/credit/refund", data={"csrf_token": csrf_of(page), "idempotency_key": "k1",
                                                      "amount": "10", "method": "cash", "reason": "x"},
                        follow_redirects=False)
        assert r.status_code == 403
    assert credit_of(db, account.id) == 1_000
