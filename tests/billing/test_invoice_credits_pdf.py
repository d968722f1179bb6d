"""The line-level credits hook (a consumption referencing the invoice line, reversed with the draft) and the
invoice PDF (its text read back with pypdf)."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from creditdesk.billing import credit_notes, invoices, pdf
from creditdesk.billing import invoice_schemas as ins
from creditdesk.credits import schemas as cs
from creditdesk.credits import credit_types, packs
from creditdesk.credits.models import Consumption
from creditdesk.errors import Conflict, CreditdeskError, InvalidInput
from tests.billing.factories import Shop, make_account
from tests.parties.factories import make_customer


@pytest.fixture
def shop(db):
    shop = Shop(db)
    actor = shop.actor

    def fn(s):
        credit_types.create_credit_type(s, cs.CreditTypeCreate(code="hrs", name="Hours", scale=2), actor=actor)
        holder = {"kind": "customer", "id": shop.customer_id}
        shop.pack_id = packs.grant_pack(s, cs.PackCreate.model_validate({
            "holder": holder, "credit_type": "hrs", "quantity": 300, "name": "3 hours", "product_codes": ["hours"]}),
            actor=actor).id
    db.write(fn)
    return shop


def line_of(db, invoice) -> str:
    with db.read() as s:
        return invoices.lines_of(s, invoice.id)[0].id


def apply(db, shop, invoice, quantity, context=None, credit_type="hrs"):
    body = ins.LineCredits.model_validate({"context": context or {"kind": "customer", "id": shop.customer_id},
                                           "credit_type": credit_type, "quantity": quantity})
    return db.write(lambda s: invoices.apply_line_credits(s, invoice.id, line_of(db, invoice), body,
                                                          actor=shop.actor))


def _available(s, shop):
    from creditdesk.credits.models import Pack
    from creditdesk.ledger import service as ledger

    pack = s.get(Pack, shop.pack_id)
    totals = ledger.account_totals(s, [pack.ledger_account_id], lock=False)[pack.ledger_account_id]
    return totals.credits_posted - totals.debits_posted - totals.debits_pending


def test_credits_pay_units_of_a_line_and_come_back_when_the_draft_is_voided(db, shop):
    account = shop.account()
    inv = shop.invoice(account, [("hours", "2.5")])  # 375.00 + GST
    inv = apply(db, shop, inv, "1.5")
    assert (inv.subtotal, inv.tax_total, inv.total, inv.credits_value) == (15000, 1500, 16500, 24750)
    assert _in(db, shop) == 150
    with db.read() as s:
        line = invoices.lines_of(s, inv.id)[0]
        consumption = s.get(Consumption, line.consumption_id)
        assert (consumption.reference_kind, consumption.reference_id, consumption.amount) == (
            "invoice_line", line.id, 150)
        consumption_id = consumption.id
    voided = db.write(lambda s: invoices.void_invoice(s, inv.id, actor=shop.actor))
    assert voided.status == "void"
    assert _in(db, shop) == 300
    with db.read() as s:
        assert s.get(Consumption, consumption_id).status == "reversed"


def _in(db, shop) -> int:
    with db.read() as s:
        return _available(s, shop)


def test_credits_never_exceed_what_is_available(db, shop):
    account = shop.account()
    inv = shop.invoice(account, [("hours", "5")])
    with pytest.raises(CreditdeskError) as exc:
        apply(db, shop, inv, "4")  # 400 > 300
    assert exc.value.code == "insufficient_credits"
    assert _in(db, shop) == 300 and shop.get(inv).credits_value == 0
    with pytest.raises(InvalidInput) as exc:
        apply(db, shop, inv, "6")
    assert exc.value.code == "credits_exceed_quantity"
    with pytest.raises(InvalidInput) as exc:
        apply(db, shop, inv, "0.005")  # 0.5 of a credit at scale 2
    assert exc.value.code in ("invalid_credit_quantity", "invalid_quantity")


def test_credits_cover_only_their_products_and_their_customer(db, shop):
    account = shop.account()
    widget = shop.invoice(account, [("widget", "1")])
    with pytest.raises(CreditdeskError) as exc:
        apply(db, shop, widget, "1")
    assert exc.value.code == "product_not_covered"  # the pack does not cover widgets (issue 13)
    stranger = make_customer(db, actor=shop.actor, name="Stranger")
    inv = shop.invoice(account, [("hours", "1")])
    with pytest.raises(InvalidInput) as exc:
        apply(db, shop, inv, "1", context={"kind": "customer", "id": stranger})
    assert exc.value.code == "credits_not_of_customer"


def test_fully_credited_line_posts_and_settles_at_zero(db, shop):
    account = shop.account()
    inv = shop.invoice(account, [("hours", "2")])
    apply(db, shop, inv, "2")
    with pytest.raises(InvalidInput) as exc:  # the quantity cannot drop below the credited units
        db.write(lambda s: invoices.update_line(s, inv.id, line_of(db, inv), ins.LineUpdate(quantity="1"),
                                               actor=shop.actor))
    assert exc.value.code == "credits_exceed_quantity"
    posted = shop.post(inv)
    assert (posted.number, posted.total, posted.status) == ("INV-000001", 0, "settled")
    assert _in(db, shop) == 100


def test_taking_credits_off_and_deleting_the_line_give_them_back(db, shop):
    account = shop.account()
    inv = shop.invoice(account, [("hours", "2")])
    apply(db, shop, inv, "1")
    inv = db.write(lambda s: invoices.remove_line_credits(s, inv.id, line_of(db, inv), actor=shop.actor))
    assert _in(db, shop) == 300 and inv.total == 33000
    apply(db, shop, inv, "2")
    assert _in(db, shop) == 100
    inv = db.write(lambda s: invoices.delete_line(s, inv.id, line_of(db, inv), actor=shop.actor))
    assert _in(db, shop) == 300 and inv.total == 0


def test_pdf_shows_number_dates_lines_taxes_totals_and_credits(db, shop):
    account = make_account(db, actor=shop.actor, customer_id=shop.customer_id, name="Pdf account",
                           billing_address_id=shop.address_id)
    inv = shop.invoice(account, [("hours", "2.5"), ("widget", "3")], notes="Thank you")
    apply(db, shop, inv, "0.5")
    inv = shop.post(inv)
    shop.credit(inv, amount=1000, reason="late delivery")
    with db.read() as s:
        body = pdf.render_invoice(s, invoices.get_invoice(s, shop.ws.id, inv.id))
    assert body.startswith(b"%PDF")
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(body)).pages)
    for expected in ("INV-000001", "TAX INVOICE", "Billing", "Pdf account", "1 George St", "Consulting hours",
                     "2.5", "10%", "paid with credits", "82.50", "CN-000001", "late delivery", "Thank you", inv.issue_date.isoformat(),
                     inv.due_date.isoformat()):
        assert expected in text, expected
    # 2 of the 2.5 hours billed (300.00 + 30.00 GST) + 3 widgets (30.00, untaxed) = 360.00; less a 10.00 credit note
    assert "AUD 330.00" in text and "AUD 30.00" in text and "AUD 360.00" in text
    assert "Amount due" in text and "AUD 350.00" in text


def test_draft_pdf_has_no_number(db, shop):
    inv = shop.invoice(shop.account(), [("widget", "1")])
    with db.read() as s:
        body = pdf.render_invoice(s, invoices.get_invoice(s, shop.ws.id, inv.id))
        notes = credit_notes.notes_of(s, inv.id)
    text = PdfReader(io.BytesIO(body)).pages[0].extract_text()
    assert "DRAFT INVOICE" in text and "none until posted" in text and notes == []


def test_pdf_names_the_seller_with_address_and_tax_number(db, shop):
    """A tax invoice names who sells: the workspace's seller details (the same as on SMS receipts)."""
    from creditdesk.sms import schemas as ss
    from creditdesk.sms import service as sms

    db.write(lambda s: sms.update_settings(s, ss.SmsSettingsUpdate(seller=ss.SellerDetails(
        name="Seller Pty Ltd", address="9 Pitt St\nSydney NSW 2000", tax_id="ABN 51 824 753 556",
        email="accounts@seller.example.com")), actor=shop.actor))
    inv = shop.post(shop.invoice(shop.account(), [("widget", "1")]))
    with db.read() as s:
        body = pdf.render_invoice(s, invoices.get_invoice(s, shop.ws.id, inv.id))
    text = " ".join(PdfReader(io.BytesIO(body)).pages[0].extract_text().split())
    for expected in ("Seller Pty Ltd", "9 Pitt St", "Sydney NSW 2000", "ABN 51 824 753 556",
                     "accounts@seller.example.com"):
        assert expected in text, expected
