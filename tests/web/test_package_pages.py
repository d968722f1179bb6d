"""Credit packages in the back office (TestClient): the Pay with credits drop-down only on lines a package
covers, with its balance; more than is left refused with the balance; the customer's Packages section; Edit."""

from __future__ import annotations

import re

from creditdesk.billing import invoices, payments
from creditdesk.catalog import schemas as cs
from creditdesk.catalog import service as catalog
from creditdesk.credits import credit_types
from creditdesk.credits import schemas as crs
from tests.billing.factories import configure, make_account
from tests.parties.factories import master_actor
from tests.web.conftest import logged_in, post_form


def setup(db, world):
    from creditdesk.billing import invoice_schemas as ins

    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)

    def fn(s):
        credit_types.create_credit_type(s, crs.CreditTypeCreate(code="massage", name="Massages"), actor=actor)
        plan = catalog.create_price_plan(s, cs.PricePlanCreate(code="aud", name="AUD", currency="AUD",
                                                               is_default=True), actor=actor)
        for code, name, price in (("massage", "Massage", 9000), ("facial", "Facial", 7000)):
            catalog.create_product(s, cs.ProductCreate(code=code, name=name, kind="service", unit="each"), actor=actor)
            catalog.set_price(s, plan.id, cs.PriceSet(product=code, unit_price=price), actor=actor)
        catalog.create_product(s, cs.ProductCreate.model_validate({
            "code": "massage-10", "name": "10 massages", "kind": "credit_package", "unit": "pack",
            "credit_package": {"credit_type": "massage", "credit_quantity": 10, "applicable_product_codes": ["massage"],
                               "expiry": {"kind": "months_after_purchase", "months": 3}}}), actor=actor)
        catalog.set_price(s, plan.id, cs.PriceSet(product="massage-10", unit_price=80000), actor=actor)
    db.write(fn)
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Spa")

    def buy(s):
        inv = invoices.create_invoice(s, ins.InvoiceCreate.model_validate({
            "account_id": account.id, "lines": [{"product": "massage-10", "quantity": 1}]}), actor=actor)
        invoices.post_invoice(s, inv.id, actor=actor)
        payments.mark_paid(s, inv.id, actor=actor)
        draft = invoices.create_invoice(s, ins.InvoiceCreate.model_validate({
            "account_id": account.id, "lines": [{"product": "massage", "quantity": 2},
                                                {"product": "facial", "quantity": 1}]}), actor=actor)
        return inv.id, draft.id, [line.id for line in invoices.lines_of(s, draft.id)]
    return db.write(buy)


def test_drop_down_only_on_covered_lines_with_balance_and_refusals(web, db, world):
    bought, draft, (massage_line, facial_line) = setup(db, world)
    client = logged_in(web, world.master_email)
    url = f"/invoices/{draft}"
    page = client.get(url).text
    assert f'id="pay-credits-{massage_line}"' in page and f'id="pay-credits-{facial_line}"' not in page
    assert "10 massages · 10 massage available" in page
    too_many = post_form(client, f"{url}/lines/{massage_line}/pay-with-credits",
                         {"pack_id": re.search(r'<option value="(pack_[^"]+)"', page).group(1),
                          "credit_quantity": "3"}, page=url)
    assert too_many.status_code == 422 and "credits_exceed_quantity" not in too_many.text
    assert "no more can be paid with credits" in too_many.text
    pack_id = re.search(r'<option value="(pack_[^"]+)"', page).group(1)
    r = post_form(client, f"{url}/lines/{massage_line}/pay-with-credits",
                  {"pack_id": pack_id, "credit_quantity": "2"}, page=url)
    assert r.status_code == 303, r.text
    page = client.get(url).text
    assert "(2 paid with credits)" in page and f'id="pay-credits-{massage_line}"' not in page
    customer = client.get(f"/customers/{world.customer_id}").text
    assert 'id="customer-packages"' in customer and "10 massages" in customer
    row = customer[customer.index(f'data-pack="{pack_id}"'):]
    row = row[:row.index("</tr>")]
    assert ">8<" in row and f"/invoices/{bought}" in row and f"/invoices/{draft}" in row
    # The pack's history names the invoices by number (bought on, spent on), never an invoice line's id.
    history = client.get(f"/packs/{pack_id}").text
    bought_number = re.search(r"INV-\d+", client.get(f"/invoices/{bought}").text).group(0)
    assert f"Bought on invoice {bought_number}, line 1" in history and f'href="/invoices/{bought}"' in history
    assert "Invoice (draft), line 1" in history and f'href="/invoices/{draft}"' in history
    assert "inl_" not in history.split('id="history"', 1)[-1]
    edit = client.get(f"/packs/{pack_id}/package-edit")
    assert edit.status_code == 200
    no_reason = post_form(client, f"/packs/{pack_id}/package-edit", {"remaining": "1", "reason": "",
                                                                     "status_label": "", "notes": ""},
                          page=f"/packs/{pack_id}/package-edit")
    assert no_reason.status_code == 422 and "Say why" in no_reason.text
    r = post_form(client, f"/packs/{pack_id}/package-edit", {"remaining": "1", "reason": "counted again",
                                                             "status_label": "VIP", "notes": "n"},
                  page=f"/packs/{pack_id}/package-edit")
    assert r.status_code == 303, r.text
    # One credit left: using 2 on a new line is refused with the balance in the message.
    def more(s):
        from creditdesk.billing import invoice_schemas as ins
        inv = invoices.get_invoice(s, world.workspace_id, draft)
        invoices.add_line(s, draft, ins.LineCreate(product="massage", quantity=2),
                          actor=master_actor(db, world.workspace_id))
        return invoices.lines_of(s, inv.id)[-1].id
    new_line = db.write(more)
    refused = post_form(client, f"{url}/lines/{new_line}/pay-with-credits",
                        {"pack_id": pack_id, "credit_quantity": "2"}, page=url)
    assert refused.status_code == 409 and "1 available, 2 requested" in refused.text


def test_edit_shows_the_expiry_day_of_the_workspace_and_names_the_customer(web, db, world):
    """West of UTC the end of a local day is the next day in UTC: the form showed that next day, and saving it
    unchanged moved the expiry a day later."""
    from datetime import date

    from sqlalchemy import select

    from creditdesk.billing import packages
    from creditdesk.credits.models import Pack
    from creditdesk.parties import schemas as ps
    from creditdesk.parties import service as parties

    setup(db, world)
    actor = master_actor(db, world.workspace_id)
    db.write(lambda s: parties.update_workspace(s, ps.WorkspaceUpdate(time_zone="America/New_York"), actor=actor))
    with db.read() as s:
        pack_id = s.scalar(select(Pack.id).where(Pack.workspace_id == world.workspace_id,
                                                 Pack.customer_id == world.customer_id,
                                                 Pack.name.like("%massage%")).limit(1))
    db.write(lambda s: packages.edit_package(s, pack_id, actor=actor, expires_on=date(2027, 6, 30)))
    page = logged_in(web, world.master_email).get(f"/packs/{pack_id}/package-edit").text
    assert 'value="2027-06-30"' in page, re.findall(r'name="expires_on"[^>]*', page)
    crumbs = page.split('class="crumbs"', 1)[1].split("</p>", 1)[0]
    assert "Acme" in crumbs and ">Customer<" not in crumbs
