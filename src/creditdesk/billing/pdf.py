"""The invoice as a PDF (fpdf2, the page set-up of sms.receipts): the business (workspace), the number and
dates, the account and its billing address, the lines, the taxes by rate, the totals, the credits that paid
units of lines, and what was paid and credited since. A draft prints "DRAFT" and no number.

Everything comes from the stored invoice: its lines keep the price, tax rate and money they were posted
with, so a PDF downloaded a year later shows what was billed then."""

from __future__ import annotations

from fpdf.enums import XPos, YPos
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditdesk.billing import credit_notes, invoices
from creditdesk.billing.invoice_models import Invoice, PaymentAllocation
from creditdesk.billing.models import BillingAccount, CustomerAddress
from creditdesk.parties.models import Customer, Workspace
from creditdesk.sms.receipts import Document, format_rate


def _money(amount: int, currency: str) -> str:
    return f"{currency} {invoices.money(amount, currency)}"


def _address(session: Session, address_id: str | None) -> list[str]:
    address = session.get(CustomerAddress, address_id) if address_id else None
    if address is None:
        return []
    city = " ".join(p for p in (address.city, address.region, address.postcode) if p)
    return [p for p in (address.line1, address.line2, city, address.country) if p]


def render_invoice(session: Session, invoice: Invoice) -> bytes:
    workspace = session.get(Workspace, invoice.workspace_id)
    account = session.get(BillingAccount, invoice.account_id)
    customer = session.get(Customer, invoice.customer_id)
    lines = invoices.lines_of(session, invoice.id)
    cur = invoice.currency
    title = {"draft": "DRAFT INVOICE", "void": "VOID (CANCELLED DRAFT)"}.get(invoice.status, "TAX INVOICE")

    pdf = Document()
    pdf.set_title(f"Invoice {invoice.number or invoice.id}")
    pdf.set_author(pdf.clean(workspace.name))
    pdf.set_creation_date(invoice.posted_at or invoice.created_at)
    pdf.add_page()
    pdf.line_of(title, size=18, bold=True, h=9)
    pdf.ln(2)
    pdf.line_of(f"Invoice number: {invoice.number or '(none until posted)'}", bold=True)
    pdf.line_of(f"Issue date: {invoice.issue_date.isoformat()}    Due date: {invoice.due_date.isoformat()}")
    pdf.line_of(f"Status: {invoice.status}")
    pdf.ln(4)

    top = pdf.get_y()
    half = (pdf.w - pdf.l_margin - pdf.r_margin) / 2
    bill_to = [customer.name if customer else "", f"Account {account.number} - {account.name}",
               *_address(session, account.billing_address_id)]
    left_bottom = top
    # The seller's details (name, address, tax number: a tax invoice names them) are the workspace's, the same
    # as on SMS receipts (PATCH /v1/sms/settings {"seller": ...}).
    seller = ((workspace.settings or {}).get("sms") or {}).get("seller") or {}
    from_lines = [seller.get("name") or workspace.name, *(seller.get("address") or "").splitlines(),
                  *([seller["tax_id"]] if seller.get("tax_id") else []), *([seller["email"]] if seller.get("email") else [])]
    for column, (heading, details) in enumerate((("From", from_lines), ("Bill to", bill_to))):
        pdf.set_xy(pdf.l_margin + column * half, top)
        pdf.font(10, bold=True)
        pdf.cell(half - 4, 6, heading, new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.font(10)
        for text in details:
            pdf.set_x(pdf.l_margin + column * half)
            pdf.multi_cell(half - 4, 5, pdf.clean(text), new_x=XPos.LEFT, new_y=YPos.NEXT)
        if column == 0:
            left_bottom = pdf.get_y()
    pdf.set_xy(pdf.l_margin, max(left_bottom, pdf.get_y()) + 8)

    widths = (62, 18, 24, 16, 22, 28)
    pdf.font(9, bold=True)
    for text, width, align in zip(("Description", "Quantity", "Unit price", "Tax", "Tax amount", "Amount"), widths,
                                  "LRRRRR"):
        pdf.cell(width, 8, text, border="B", align=align)
    pdf.ln(8)
    pdf.font(9)
    for line in lines:
        quantity = invoices.quantity_text(line.quantity_milli)
        figures = (quantity, invoices.money(line.unit_price, cur), format_rate(line.tax_rate_bp)
                   + (" incl." if line.tax_inclusive and line.tax_rate_bp else ""),
                   invoices.money(line.tax, cur), invoices.money(line.gross, cur))
        row_top = pdf.get_y()
        pdf.set_x(pdf.l_margin + widths[0])
        for text, width in zip(figures, widths[1:]):
            pdf.cell(width, 6, pdf.fit(text, width), align="R")
        pdf.set_xy(pdf.l_margin, row_top + 0.5)
        description = f"{line.description} ({line.product_code})"
        if line.discount_amount:
            description += f"; discount {invoices.money(line.discount_amount, cur)}"
        if line.credit_quantity_milli:
            description += (f"; {invoices.quantity_text(line.credit_quantity_milli)} paid with credits "
                            f"(worth {invoices.money(line.credits_value, cur)})")
        pdf.multi_cell(widths[0], 5, pdf.clean(description), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_y(max(pdf.get_y(), row_top + 6) + 1)

    taxes: dict[tuple[int, bool], list[int]] = {}
    for line in lines:
        if line.tax_rate_bp:
            taxed = taxes.setdefault((line.tax_rate_bp, line.tax_inclusive), [0, 0])
            taxed[0] += line.net
            taxed[1] += line.tax
    label_width = sum(widths[:-1])
    rows = [("Subtotal (net)", invoice.subtotal, False)]
    rows += [(f"Tax {format_rate(bp)}{' (included)' if inclusive else ''} on {invoices.money(net, cur)}", tax, False)
             for (bp, inclusive), (net, tax) in sorted(taxes.items())]
    rows += [("Total tax", invoice.tax_total, False), ("Total", invoice.total, True)]
    if invoice.credits_value:
        rows.append(("Credits used (not billed)", invoice.credits_value, False))
    if invoice.amount_credited:
        rows.append(("Credited (credit notes)", -invoice.amount_credited, False))
    if invoice.amount_paid:
        rows.append(("Paid", -invoice.amount_paid, False))
    if invoice.amount_written_off:
        rows.append(("Written off", -invoice.amount_written_off, False))
    if invoice.status in ("posted", "settled"):
        rows.append(("Amount due", invoice.amount_due, True))
    pdf.ln(2)
    for label, amount, bold in rows:
        pdf.font(10, bold=bold)
        pdf.cell(label_width, 7, pdf.clean(label), align="R")
        pdf.cell(widths[-1], 7, _money(amount, cur), align="R", border="T" if bold else 0)
        pdf.ln(7)

    notes = credit_notes.notes_of(session, invoice.id)
    paid = session.scalar(select(func.count()).select_from(PaymentAllocation)
                          .where(PaymentAllocation.invoice_id == invoice.id)) or 0
    pdf.ln(4)
    for note in notes:
        pdf.line_of(f"Credit note {note.number} of {note.issue_date.isoformat()}: {_money(note.amount, cur)}"
                    + (f" ({note.reason})" if note.reason else ""), size=9)
    if paid:
        pdf.line_of(f"{paid} payment allocation(s) received: {_money(invoice.amount_paid, cur)}.", size=9)
    if invoice.notes:
        pdf.ln(2)
        pdf.line_of(invoice.notes, size=9)
    return bytes(pdf.output())
