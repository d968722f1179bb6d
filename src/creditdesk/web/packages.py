"""Credit packages in the back office (seed 001): Pay with credits on a draft invoice's line (a drop-down of
the customer's packages covering its product, with their balance), the customer's Packages section, and a
package's Edit (expiry, label, notes, correction of remaining with a reason). Every form calls the services
the API calls (billing.packages); each write carries a one-time key (web/once.py)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from creditdesk import clock
from creditdesk.billing import invoices, packages
from creditdesk.credits import governance
from creditdesk.credits.models import CreditType
from creditdesk.errors import CreditdeskError, InvalidInput, NotPermitted
from creditdesk.parties.models import Customer
from creditdesk.web import core, forms, once
from creditdesk.web.core import WebRoute, WebUser, csrf_form, current_user, db_of, reading, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def line_choices(session, invoice) -> dict[str, list[dict]]:
    """For each draft line not yet paid with credits: the customer's packages that cover its product."""
    if invoice.status != "draft":
        return {}
    out = {}
    for line in invoices.lines_of(session, invoice.id):
        if line.consumption_id:
            continue
        found = packages.packs_covering(session, workspace_id=invoice.workspace_id, customer_id=invoice.customer_id,
                                        product_code=line.product_code)
        if found:
            out[line.id] = found
    return out


@router.post("/invoices/{invoice_id}/lines/{line_id}/pay-with-credits", response_class=HTMLResponse)
def pay_with_credits(invoice_id: str, line_id: str, request: Request, user: WebUser = Depends(current_user),
                     form: FormData = Depends(csrf_form)):
    from creditdesk.web.invoices import _act, _back

    pack_id = forms.text(form, "pack_id", limit=40)
    quantity = forms.text(form, "credit_quantity", limit=20) or "0"

    def action(session) -> once.Done:
        if not pack_id:
            raise InvalidInput("Choose a package.", field="credits")
        packages.pay_line_from_pack(session, invoice_id, line_id, pack_id, quantity, actor=user.actor)
        return _back(invoice_id, f"{quantity} paid with credits.")
    return _act(request, user, form, invoice_id, action, field="credits",
                rename={"credit_quantity": "credits", "pack_id": "credits", "quantity": "credits"},
                values={"credits_line": line_id, "credit_quantity": quantity})


def customer_section(session, user: WebUser, customer_id: str) -> dict:
    rows = packages.customer_packages(session, actor=user.actor, customer_id=customer_id)
    scales = {ct.id: ct.scale for ct in session.query(CreditType).filter(CreditType.workspace_id == user.workspace_id)}
    return {"package_rows": rows, "package_scales": scales,
            "may_edit_packages": governance.can_manage_packs(user.actor)}


def _edit_page(request: Request, user: WebUser, pack_id: str, *, errors: dict | None = None,
               values: dict | None = None, status_code: int = 200) -> HTMLResponse:
    with reading(db_of(request)) as session:
        pack = packages.packs.get_pack(session, user.workspace_id, pack_id, actor=user.actor)
        rows = [r for r in packages.customer_packages(session, actor=user.actor, customer_id=pack.customer_id or "")
                if r.pack.id == pack.id] if pack.customer_id else []
        scale = session.get(CreditType, pack.credit_type_id).scale
        customer = session.get(Customer, pack.customer_id) if pack.customer_id else None
    # The day where the business is: an expiry is the end of a day in the workspace's zone (UTC's date of that
    # moment is the next day west of UTC).
    expires = clock.aware(pack.expires_at).astimezone(user.zone).date().isoformat() if pack.expires_at else ""
    return render(request, "package_edit.html", nav="clients", pack=pack, row=rows[0] if rows else None,
                  customer=customer,
                  scale=scale, expires=expires, errors=errors or {}, values=values or {}, status_code=status_code)


@router.get("/packs/{pack_id}/package-edit", response_class=HTMLResponse)
def edit_form(pack_id: str, request: Request, user: WebUser = Depends(current_user)):
    governance.require_manage_packs(user.actor, "edit packages")
    return _edit_page(request, user, pack_id)


@router.post("/packs/{pack_id}/package-edit", response_class=HTMLResponse)
def edit(pack_id: str, request: Request, user: WebUser = Depends(current_user), form: FormData = Depends(csrf_form)):
    governance.require_manage_packs(user.actor, "edit packages")
    values = {k: forms.text(form, k, limit=2000) for k in ("expires_on", "status_label", "notes", "remaining",
                                                           "reason")}
    values["clear_expiry"] = form.get("clear_expiry") == "1"

    def action(session) -> once.Done:
        expires_on = None
        if values["expires_on"]:
            try:
                expires_on = date.fromisoformat(values["expires_on"])
            except ValueError:
                raise InvalidInput("Expiry is a date (YYYY-MM-DD).", field="expires_on") from None
        remaining = None
        if values["remaining"]:
            scale = session.get(CreditType, packages.packs.get_pack(session, user.workspace_id, pack_id).credit_type_id
                                ).scale
            remaining = core.parse_amount(values["remaining"], scale, label="Remaining", allow_zero=True)
        pack = packages.edit_package(session, pack_id, actor=user.actor, expires_on=expires_on,
                                     clear_expiry=values["clear_expiry"], status_label=values["status_label"],
                                     notes=values["notes"], remaining=remaining, reason=values["reason"])
        target = f"/customers/{pack.customer_id}#packages" if pack.customer_id else f"/packs/{pack.id}"
        return once.Done(target, flash="Package saved.")
    try:
        return once.run(request, user, form, action)
    except NotPermitted:
        raise
    except CreditdeskError as exc:
        field = str(exc.details.get("field") or "")
        return _edit_page(request, user, pack_id, errors={field: exc.message}, values=values,
                          status_code=exc.http_status if exc.http_status in (404, 409, 422) else 422)
