"""Buying a credit package on an invoice (TestClient): the posted invoice says its pack is granted when it is
paid; the payment that settles it says so in the flash, naming and linking the pack made, and the invoice page
links it too (also after Apply the credit); a double submit grants one pack and replays the same message."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from creditdesk.billing import invoice_schemas as ins
from creditdesk.billing import invoices, payments
from creditdesk.billing.verify import verify_invoices
from creditdesk.credits.models import Pack
from creditdesk.ledger import service as ledger
from tests.parties.factories import master_actor
from tests.web.conftest import csrf_of, logged_in
from tests.web.test_package_pages import setup


def submit(client, url: str, action: str, data: dict, key: str | None = None):
    html = client.get(url).text
    key = key or re.search(rf'action="{re.escape(action)}".*?name="idempotency_key" value="([^"]+)"',
                           html, re.S).group(1)
    return client.post(action, data={**data, "csrf_token": csrf_of(html), "idempotency_key": key},
                       follow_redirects=False)


def package_invoice(db, world, account_id):
    actor = master_actor(db, world.workspace_id)

    def fn(s):
        inv = invoices.create_invoice(s, ins.InvoiceCreate.model_validate({
            "account_id": account_id, "lines": [{"product": "massage-10", "quantity": 2}]}), actor=actor)
        return invoices.post_invoice(s, inv.id, actor=actor).id
    return db.write(fn)


def packs_for(db, invoice_id):
    with db.read() as s:
        inv = invoices.get_invoice(s, s.get(invoices.Invoice, invoice_id).workspace_id, invoice_id)
        return [(p["pack"].id, p["pack"].name) for p in invoices.package_purchases(s, inv) if p["pack"]]


def test_the_pack_is_announced_then_named_and_linked(web, db, world):
    paid_before, _draft, _lines = setup(db, world)
    with db.read() as s:
        account_id = s.get(invoices.Invoice, paid_before).account_id
    inv = package_invoice(db, world, account_id)
    client = logged_in(web, world.master_email)
    url = f"/invoices/{inv}"
    page = client.get(url).text
    assert 'id="invoice-packages"' in page
    assert "the pack is granted when the invoice is paid ($1,600.00 still due)." in page
    html = client.get(url).text
    key = re.search(r'action="[^"]*/pay".*?name="idempotency_key" value="([^"]+)"', html, re.S).group(1)
    form = {"amount": "1600", "method": "card", "reference": "", "received_on": ""}
    first = submit(client, url, f"{url}/pay", form, key=key)
    assert first.status_code == 303
    [(pack_id, name)] = packs_for(db, inv)
    assert name == "10 massages x2"
    page = client.get(first.headers["location"]).text
    flash = re.search(r'<div class="flash success" role="status">(.*?)</div>', page, re.S).group(1)
    assert "Invoice INV-" in flash and "is paid: pack granted:" in flash
    assert f'<a href="/packs/{pack_id}">10 massages x2</a>' in flash
    assert f'href="/packs/{pack_id}" class="granted-pack">10 massages x2</a>' in page
    assert "granted when the invoice is paid" not in page
    assert client.get(f"/packs/{pack_id}").status_code == 200
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Pack).where(Pack.id == pack_id)) == 1
        assert s.scalar(select(func.count()).select_from(Pack).where(Pack.external_ref.in_(
            [line.id for line in invoices.lines_of(s, inv)]))) == 1  # one pack for the line
    # The same form again (a double click): nothing more, and the replayed answer names the same pack.
    again = submit(client, url, f"{url}/pay", form, key=key)
    assert again.status_code == 303 and packs_for(db, inv) == [(pack_id, name)]
    replay = client.get(again.headers["location"]).text
    assert "Already done" in replay and f'<a href="/packs/{pack_id}">' in replay
    with db.read() as s:
        assert verify_invoices(s, workspace_id=world.workspace_id)[1] == []
        assert ledger.verify(s, workspace_id=world.workspace_id).ok


def test_applying_the_credit_that_settles_it_names_the_pack(web, db, world):
    paid_before, _draft, _lines = setup(db, world)
    actor = master_actor(db, world.workspace_id)
    with db.read() as s:
        account_id = s.get(invoices.Invoice, paid_before).account_id
    db.write(lambda s: payments.record_payment(s, ins.PaymentCreate(account_id=account_id, amount=200_000,
                                                                    allocations=[]), actor=actor))
    inv = package_invoice(db, world, account_id)
    client = logged_in(web, world.master_email)
    url = f"/invoices/{inv}"
    assert "This account has $2,000.00 of credit: apply it" in client.get(url).text
    r = submit(client, url, f"{url}/apply-credit", {})
    assert r.status_code == 303
    [(pack_id, _)] = packs_for(db, inv)
    page = client.get(r.headers["location"]).text
    assert "$1,600.00 of the account&#39;s credit applied to this invoice." in page
    assert f'<a href="/packs/{pack_id}">10 massages x2</a>' in page
