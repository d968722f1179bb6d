"""Mark as paid on a draft over the credit limit (TestClient): a cash sale to a customer at their limit is
posted and paid at once (the debt never exists); Post invoice on its own is still refused by the limit."""

from __future__ import annotations

import re

from creditdesk.billing import credit_control
from creditdesk.billing import credit_schemas as crs
from creditdesk.billing.verify import verify_invoices
from creditdesk.ledger import service as ledger
from tests.parties.factories import master_actor
from tests.web.conftest import csrf_of, logged_in
from tests.web.test_invoice_pages import setup_books


def post(client, url: str, action: str, data: dict):
    html = client.get(url).text
    key = re.search(rf'action="{re.escape(action)}".*?name="idempotency_key" value="([^"]+)"', html, re.S).group(1)
    return client.post(action, data={**data, "csrf_token": csrf_of(html), "idempotency_key": key},
                       follow_redirects=False)


def test_a_cash_sale_at_the_limit(web, db, world):
    account = setup_books(db, world)
    actor = master_actor(db, world.workspace_id)
    db.write(lambda s: credit_control.change_credit_terms(
        s, account.id, crs.CreditTermsChange.model_validate({"credit_limit": 5_000}), actor=actor))
    client = logged_in(web, world.master_email)
    drafts = []
    for _ in range(2):
        r = post(client, f"/invoices/new?account_id={account.id}", "/invoices/new",
                 {"account_id": account.id, "issue_date": "", "notes": ""})
        url = r.headers["location"]
        assert post(client, url, f"{url}/lines", {"product": "design", "quantity": "1"}).status_code == 303
        drafts.append(url)  # 120.00 each, over the 50.00 limit
    first, second = drafts
    refused = post(client, first, f"{first}/post", {})
    assert refused.status_code == 409 and "credit limit" in refused.text
    assert 'id="invoice-status">draft' in client.get(first).text
    r = post(client, second, f"{second}/mark-paid", {"method": "other"})
    assert r.status_code == 303, r.text
    page = client.get(second).text
    assert "Marked as paid: $120.00 recorded." in page
    assert 'id="invoice-status">settled' in page and 'id="invoice-due"><strong>$0.00' in page
    assert 'id="account-balance">$0.00' in client.get(f"/accounts/{account.id}").text
    with db.read() as s:
        assert verify_invoices(s, workspace_id=world.workspace_id)[1] == []
        assert ledger.verify(s, workspace_id=world.workspace_id).ok
