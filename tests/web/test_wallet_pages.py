"""Wallets and payment preferences in the back office (seed 004): open a wallet, top up (a double submit acts
once), refund beyond the balance refused with the reason, pay an invoice from the wallet, add a preference
(a bank transfer cannot opt in), and a member sees no forms and is refused."""

from __future__ import annotations

from creditdesk.billing import invoice_schemas as ins
from creditdesk.catalog import schemas as cs
from creditdesk.catalog import service as catalog
from creditdesk.billing import invoices, wallets
from creditdesk.billing.wallet_models import PaymentPreference, WalletTransaction
from sqlalchemy import func, select
from tests.billing.factories import configure, make_account
from tests.parties.factories import master_actor
from tests.web.conftest import csrf_of, logged_in, once_key_of, post_form


def test_wallet_section_top_up_refund_and_pay(web, db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Wallet shop")
    client = logged_in(web, world.master_email)
    url = f"/accounts/{account.id}"
    page = client.get(url).text
    assert 'id="account-wallet"' in page and "Open a wallet" in page
    assert post_form(client, f"{url}/wallet/open", {}, page=url).status_code == 303
    page = client.get(url).text
    data = {"amount": "120.00", "method": "bank_transfer", "reference": "EFT 9", "csrf_token": csrf_of(page),
            "idempotency_key": once_key_of(page)}
    first = client.post(f"{url}/wallet/top-up", data=data, follow_redirects=False)
    second = client.post(f"{url}/wallet/top-up", data=data, follow_redirects=False)  # the same form twice: once
    assert first.status_code == second.status_code == 303, first.text
    with db.read() as session:
        wallet = wallets.wallet_of(session, account.id)
        assert wallets.balance(session, wallet) == 12000
        assert session.scalar(select(func.count()).select_from(WalletTransaction)) >= 1
    page = client.get(url).text
    assert 'id="wallet-balance"' in page and "120.00" in page.split('id="wallet-balance"', 1)[1][:40]
    refused = post_form(client, f"{url}/wallet/refund", {"amount": "500", "reason": "too much"}, page=url)
    assert refused.status_code == 409 and "is more" in refused.text
    db.write(lambda s: catalog.create_product(s, cs.ProductCreate(code="setup", name="Setup", kind="service",
                                                                   unit="each"), actor=actor))
    invoice = db.write(lambda s: invoices.create_invoice(s, ins.InvoiceCreate(account_id=account.id, lines=[
        {"product": "setup", "quantity": "1", "unit_price": 5000}]), actor=actor))
    db.write(lambda s: invoices.post_invoice(s, invoice.id, actor=actor))
    inv_page = client.get(f"/invoices/{invoice.id}").text
    assert 'id="pay-from-wallet"' in inv_page
    paid = post_form(client, f"/invoices/{invoice.id}/pay-from-wallet", {}, page=f"/invoices/{invoice.id}")
    assert paid.status_code == 303, paid.text
    with db.read() as session:
        assert invoices.get_invoice(session, world.workspace_id, invoice.id).status == "settled"
        assert wallets.balance(session, wallets.wallet_of(session, account.id)) == 12000 - invoice.total
    refund = post_form(client, f"{url}/wallet/refund", {"amount": "1.00", "reason": "goodwill"}, page=url)
    assert refund.status_code == 303


def test_payment_preferences_section(web, db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Prefs shop")
    client = logged_in(web, world.master_email)
    url = f"/accounts/{account.id}"
    refused = post_form(client, f"{url}/payment-preferences", {"kind": "bank_transfer", "opt_in_purchases": "1"},
                        page=url)
    assert refused.status_code == 422 and "Only card" in refused.text
    added = post_form(client, f"{url}/payment-preferences", {"kind": "bank_transfer"}, page=url)
    assert added.status_code == 303
    page = client.get(url).text
    assert "Bank transfer" in page.split('id="account-payment-preferences"', 1)[1]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(PaymentPreference).where(
            PaymentPreference.account_id == account.id)) == 1


def test_a_member_sees_no_wallet_forms_and_is_refused(web, db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Member view")
    db.write(lambda s: wallets.open_wallet(s, account.id, actor=actor))
    client = logged_in(web, world.member_email)
    url = f"/accounts/{account.id}"
    page = client.get(url).text
    assert 'id="account-wallet"' in page and 'id="wallet-top-up"' not in page
    r = post_form(client, f"{url}/wallet/top-up", {"amount": "1"}, page=url)
    assert r.status_code == 403


def test_posting_paid_at_once_from_the_wallet_says_so(web, db, world):
    """Over the credit limit, an opted-in wallet pays first: the flash said only "Posted as INV-..."."""
    from creditdesk.billing import credit_control, payment_preferences
    from creditdesk.billing import credit_schemas as ccs
    from creditdesk.billing import wallet_schemas as ws

    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Prepaid shop")

    def setup(s):
        catalog.create_product(s, cs.ProductCreate(code="setup", name="Setup", kind="service", unit="each"),
                               actor=actor)
        credit_control.change_credit_terms(s, account.id, ccs.CreditTermsChange(credit_limit=1000), actor=actor)
        wallets.open_wallet(s, account.id, actor=actor)
        wallets.top_up(s, account.id, ws.WalletTopUp(amount=100_000), actor=actor)
        payment_preferences.create_preference(s, ws.PreferenceCreate(account_id=account.id, kind="wallet",
                                                                     opt_in_purchases=True), actor=actor)
        return invoices.create_invoice(s, ins.InvoiceCreate(account_id=account.id, lines=[
            {"product": "setup", "quantity": "1", "unit_price": 5000}]), actor=actor)
    invoice = db.write(setup)
    client = logged_in(web, world.master_email)
    posted = post_form(client, f"/invoices/{invoice.id}/post", {}, page=f"/invoices/{invoice.id}")
    assert posted.status_code == 303, posted.text
    flash = client.get(posted.headers["location"]).text.split('class="flash', 1)[1].split("</div>", 1)[0]
    assert "Posted as INV-" in flash and "at once (settled)" in flash, flash
