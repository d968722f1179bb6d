"""The tax invoice / receipt of a paid SMS credit purchase, as a PDF (fpdf2).

Everything printed comes from the purchase row (prices, tax and seller details are frozen there at
purchase time), so a receipt downloaded a year later shows what was charged then.

Fonts: DejaVu Sans when the system has it (any script prints), else the PDF core font Helvetica, which
covers Latin-1 only; other characters are then shown as "?" rather than failing the download.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from creditdesk.sms import payments
from creditdesk.sms.models import SmsPurchase

_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
              Path("/usr/local/share/fonts"), Path("/Library/Fonts"))
# Currencies whose minor unit is not 1/100 (ISO 4217).
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XAF": 0, "XOF": 0,
              "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3}


def format_money(amount: int, currency: str) -> str:
    """Minor units as a decimal amount with its currency: 123456 AUD -> "AUD 1,234.56" (no floats)."""
    exponent = _EXPONENTS.get(currency, 2)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10 ** exponent)
    text = f"{whole:,}" + (f".{frac:0{exponent}d}" if exponent else "")
    return f"{currency} {sign}{text}"


def format_rate(rate_bp: int) -> str:
    whole, frac = divmod(rate_bp, 100)
    return f"{whole}%" if not frac else f"{whole}.{frac:02d}".rstrip("0") + "%"


def _find_font(name: str) -> Path | None:
    for folder in _FONT_DIRS:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


class _Receipt(FPDF):
    def __init__(self):
        super().__init__(format="A4")
        regular, bold = _find_font("DejaVuSans.ttf"), _find_font("DejaVuSans-Bold.ttf")
        if regular and bold:
            self.add_font("DejaVu", "", str(regular))
            self.add_font("DejaVu", "B", str(bold))
            self.family_name, self.unicode = "DejaVu", True
        else:
            self.family_name, self.unicode = "Helvetica", False
        self.set_auto_page_break(auto=True, margin=20)
        self.set_margins(20, 20, 20)

    def clean(self, text: str | None) -> str:
        text = text or ""
        if self.unicode:
            return text
        return text.encode("latin-1", "replace").decode("latin-1")

    def fit(self, text: str, width: float) -> str:
        """The text, shortened with an ellipsis to fit a table cell (cells do not wrap)."""
        text = self.clean(text)
        ellipsis = "..." if not self.unicode else "\u2026"
        if self.get_string_width(text) <= width - 2:
            return text
        while text and self.get_string_width(text + ellipsis) > width - 2:
            text = text[:-1]
        return text + ellipsis

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.family_name, "B" if bold else "", size)

    def line_of(self, text: str, *, size: float = 10, bold: bool = False, h: float = 5.5, align: str = "L") -> None:
        self.font(size, bold)
        self.multi_cell(0, h, self.clean(text), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


# The same page set-up (fonts, margins, helpers) for every document creditdesk prints (billing.pdf too).
Document = _Receipt


def shown_payment_reference(purchase: SmsPurchase) -> str | None:
    """The payment's reference as a person reads it: a gateway's or a bank's own reference, never one made of
    our purchase id (the built-in methods' "invoice:smsp_..."): the receipt number says which purchase it is."""
    reference = purchase.payment_reference
    return None if not reference or purchase.id in reference else reference


def render_receipt(purchase: SmsPurchase, *, account_name: str, number: str, buyer_name: str | None = None) -> bytes:
    """The receipt PDF of a paid purchase."""
    pdf = _Receipt()
    pdf.set_title(f"Tax invoice / receipt {number}")
    pdf.set_author(pdf.clean(purchase.seller.get("name") or ""))
    pdf.set_creation_date(purchase.paid_at or purchase.created_at)
    pdf.add_page()
    seller, billing = purchase.seller or {}, purchase.billing or {}
    cur = purchase.currency

    pdf.line_of("TAX INVOICE / RECEIPT", size=18, bold=True, h=9)
    pdf.ln(2)
    paid_on = (purchase.paid_at or purchase.created_at).strftime("%Y-%m-%d")
    pdf.line_of(f"Receipt number: {number}", bold=True)
    pdf.line_of(f"Date: {paid_on}")
    method = payments.get_payment_method(purchase.payment_method)
    method_label = method.label if method is not None else purchase.payment_method.replace("_", " ")
    reference = shown_payment_reference(purchase)
    pdf.line_of(f"Status: PAID ({method_label}" + (f", reference {reference})" if reference else ")"))
    pdf.ln(4)

    top = pdf.get_y()
    half = (pdf.w - pdf.l_margin - pdf.r_margin) / 2
    for column, (title, details) in enumerate((("From (seller)", seller), ("Bill to (buyer)", billing))):
        pdf.set_xy(pdf.l_margin + column * half, top)
        lines = [details.get("name") or "", *(details.get("address") or "").splitlines()]
        if details.get("tax_id"):
            lines.append(f"Tax ID: {details['tax_id']}")
        if details.get("email"):
            lines.append(details["email"])
        pdf.font(10, bold=True)
        pdf.cell(half - 4, 6, pdf.clean(title), new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.font(10)
        for text in lines:
            pdf.set_x(pdf.l_margin + column * half)
            pdf.multi_cell(half - 4, 5, pdf.clean(text), new_x=XPos.LEFT, new_y=YPos.NEXT)
        if column == 0:
            left_bottom = pdf.get_y()
    pdf.set_xy(pdf.l_margin, max(left_bottom, pdf.get_y()) + 8)

    widths = (96, 20, 26, 28)
    pdf.font(10, bold=True)
    for text, width, align in zip(("Description", "Quantity", "Unit price", "Amount"), widths, "LRRR"):
        pdf.cell(width, 8, text, border="B", align=align)
    pdf.ln(8)
    pdf.font(10)
    row = (f"SMS credits for {account_name}", f"{purchase.quantity:,}", format_money(purchase.unit_price, cur),
           format_money(purchase.subtotal, cur))
    # The description wraps (holder names can be long); the figures sit on its first line.
    top = pdf.get_y()
    pdf.set_x(pdf.l_margin + widths[0])
    for text, width, align in zip(row[1:], widths[1:], "RRR"):
        pdf.cell(width, 8, pdf.fit(text, width), align=align)
    pdf.set_xy(pdf.l_margin, top + 1.5)
    pdf.multi_cell(widths[0], 5, pdf.clean(row[0]), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), top + 8) + 2)
    for label, amount, bold in (("Subtotal", purchase.subtotal, False),
                                (f"{purchase.tax_label} ({format_rate(purchase.tax_rate_bp)})", purchase.tax, False),
                                ("Total", purchase.total, True)):
        pdf.font(10, bold=bold)
        pdf.cell(widths[0] + widths[1] + widths[2], 7, pdf.clean(label), align="R")
        pdf.cell(widths[3], 7, format_money(amount, cur), align="R", border="T" if bold else 0)
        pdf.ln(7)
    pdf.ln(6)
    pdf.line_of(f"Amount paid: {format_money(purchase.total, cur)} "
                f"(includes {purchase.tax_label} {format_money(purchase.tax, cur)})", size=9)
    if buyer_name:
        pdf.line_of(f"Purchased by: {buyer_name}", size=9)
    return bytes(pdf.output())
