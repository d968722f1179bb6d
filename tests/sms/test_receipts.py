"""The tax invoice / receipt of a purchase, read back from the PDF (text extraction, not only its size)."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from creditdesk.errors import NotFound
from creditdesk.sms import schemas as s
from creditdesk.sms import service as sms
from creditdesk.sms.receipts import format_money, format_rate


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def receipt(world, purchase, who="master") -> tuple[str, bytes]:
    with world.db.read() as session:
        return sms.purchase_receipt(session, purchase.id, actor=world.actor(who))


def test_receipt_pdf_has_number_date_seller_buyer_quantity_unit_price_tax_and_total(world, frozen_clock):
    world.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate.model_validate({
        "unit_price": 8, "currency": "AUD", "tax_rate_bp": 1000, "tax_label": "GST",
        "seller": {"name": "Harbour Realty Pty Ltd", "address": "2 George St\nSydney NSW 2000",
                   "tax_id": "ABN 98 765 432 109", "email": "accounts@harbour.example"}}),
        actor=world.actor("master")))
    world.buy("master", "workspace", None, 10)  # receipt 1
    purchase = world.buy("Ann", "user", "Ben", 1250)  # receipt 2
    filename, data = receipt(world, purchase, "Ann")
    assert filename == "receipt-SMS-000002.pdf"
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    for expected in (
        "TAX INVOICE / RECEIPT", "Receipt number: SMS-000002", "Date: 2026-01-15",
        "Harbour Realty Pty Ltd", "2 George St", "Tax ID: ABN 98 765 432 109", "accounts@harbour.example",
        "Ann Example", "1 Harbour St", "Sydney NSW 2000", "Tax ID: ABN 12 345 678 901", "ann@example.com",
        "SMS credits for Ben", "1,250", "AUD 0.08",  # quantity and unit price
        "Subtotal", "AUD 100.00", "GST (10%)", "AUD 10.00", "Total", "AUD 110.00",
        "Purchased by: Ann", "PAID (Invoice (paid on account))",  # the method in words, not its code
    ):
        assert expected in text, f"{expected!r} not in the receipt:\n{text}"
    # The receipt number says which purchase it is: no internal id, not even inside a payment reference.
    assert purchase.id not in text and "smsp_" not in text and "invoice:" not in text


def test_receipt_for_the_pool(world):
    purchase = world.buy("master", "workspace", None, 3)
    text = pdf_text(receipt(world, purchase)[1])
    assert "SMS credits for System credits (unallocated)" in text and "Receipt number: SMS-000001" in text


def test_receipt_is_not_given_to_users_who_cannot_see_the_purchase(world):
    purchase = world.buy("Ann", "user", "Ben", 5)
    for who in ("Ann", "Ben", "Mia", "master"):
        assert receipt(world, purchase, who)[1].startswith(b"%PDF")
    with pytest.raises(NotFound):
        receipt(world, purchase, "Cat")


def test_receipt_prints_names_in_any_script_or_falls_back(world):
    world.write(lambda session: sms.update_settings(session, s.SmsSettingsUpdate.model_validate({
        "seller": {"name": "Société Générale Ünited"}}), actor=world.actor("master")))
    purchase = world.buy("Ann", "user", "Ann", 1)
    text = pdf_text(receipt(world, purchase)[1])
    assert "Société Générale Ünited" in text  # Latin-1 prints with the core font as well as with DejaVu


@pytest.mark.parametrize(("amount", "currency", "text"), [
    (0, "AUD", "AUD 0.00"), (8, "AUD", "AUD 0.08"), (123456, "EUR", "EUR 1,234.56"), (1500, "JPY", "JPY 1,500"),
    (1234, "KWD", "KWD 1.234"), (-250, "USD", "USD -2.50")])
def test_format_money(amount, currency, text):
    assert format_money(amount, currency) == text


@pytest.mark.parametrize(("bp", "text"), [(0, "0%"), (1000, "10%"), (1250, "12.5%"), (775, "7.75%"), (10000, "100%")])
def test_format_rate(bp, text):
    assert format_rate(bp) == text
