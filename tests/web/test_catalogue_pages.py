"""Finance > Catalogue in the back office (TestClient): lists, forms, errors next to their fields, prices typed
as decimals, and who may change what."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from creditdesk.catalog.models import Price, Product, TaxRate
from tests.web.conftest import logged_in, post_form


@pytest.fixture
def master(web, world):
    return logged_in(web, world.master_email)


def product_id(db, workspace_id: str, code: str) -> str:
    with db.read() as session:
        return session.scalar(select(Product.id).where(Product.workspace_id == workspace_id, Product.code == code))


def test_the_catalogue_is_in_the_finance_menu_for_everyone(web, world):
    page = logged_in(web, world.member_email).get("/credits")
    assert re.search(r'<summary[^>]*>Finance', page.text) and 'href="/catalogue"' in page.text
    for path in ("/catalogue", "/catalogue/products", "/catalogue/price-plans", "/catalogue/taxes", "/catalogue/types"):
        r = web.get(path)
        assert r.status_code == 200, path
        assert "<form method=\"post\" action=\"/catalogue" not in r.text, f"{path} offers a form to a member"
    assert web.get("/catalogue/products/new").status_code == 403


def test_create_and_edit_a_product_with_field_errors(db, master, world):
    r = post_form(master, "/catalogue/product-types/new", {"code": "consulting", "name": "Consulting",
                                                           "kind": "service"}, page="/catalogue/types")
    assert r.status_code == 303
    bad = post_form(master, "/catalogue/products/new", {"code": "has space", "name": "", "kind": "service",
                                                        "unit": "hour"}, page="/catalogue/products/new")
    assert bad.status_code == 422
    assert re.search(r'<span class="field-error" id="err-code">[^<]*no spaces', bad.text)
    assert 'id="err-name"' in bad.text and 'aria-describedby="err-code"' in bad.text
    mismatch = post_form(master, "/catalogue/products/new", {"code": "c1", "name": "C", "kind": "physical_good",
                                                             "type": "consulting", "unit": "each"},
                         page="/catalogue/products/new")
    assert mismatch.status_code == 422 and 'id="err-type"' in mismatch.text and "is of kind service" in mismatch.text
    ok = post_form(master, "/catalogue/products/new", {"code": "c1", "name": "Consulting hour", "type": "consulting",
                                                       "unit": "hour", "active": "on"}, page="/catalogue/products/new")
    assert ok.status_code == 303 and ok.headers["location"] == "/catalogue/products"
    pid = product_id(db, world.workspace_id, "c1")
    assert "Consulting hour" in master.get("/catalogue/products").text
    edit = post_form(master, f"/catalogue/products/{pid}", {"name": "Consulting (hour)", "unit": "hour",
                                                            "type": "consulting"}, page=f"/catalogue/products/{pid}")
    assert edit.status_code == 303
    with db.read() as session:
        product = session.get(Product, pid)
        assert (product.name, product.kind, product.active) == ("Consulting (hour)", "service", False)


def test_credit_package_fields(db, master, world):
    post_form(master, "/catalogue/products/new", {"code": "translation", "name": "Translation", "kind": "service",
                                                  "unit": "hour", "active": "on"}, page="/catalogue/products/new")
    form = {"code": "pack-10h", "name": "10 hours", "kind": "credit_package", "unit": "pack", "active": "on",
            "credit_type": "hours", "credit_quantity": "10.5", "applicable_product_codes": "translation",
            "expiry_policy": "fixed_date", "expiry_day": "30", "expiry_month": "2"}
    bad = post_form(master, "/catalogue/products/new", form, page="/catalogue/products/new")
    assert bad.status_code == 422 and 'id="err-credit_package-expiry"' in bad.text
    ok = post_form(master, "/catalogue/products/new", {**form, "expiry_day": "31", "expiry_month": "12"},
                   page="/catalogue/products/new")
    assert ok.status_code == 303, ok.text
    with db.read() as session:
        package = session.get(Product, product_id(db, world.workspace_id, "pack-10h"))
        assert (package.credit_quantity, package.applicable_product_codes, package.expiry_policy,
                package.expiry_month, package.expiry_day) == (1050, ["translation"], "fixed_date", 12, 31)
        package_id = package.id
    page = master.get(f"/catalogue/products/{package_id}").text
    assert 'value="10.5"' in page or 'value="10.50"' in page
    listed = master.get("/catalogue/products").text
    assert "10.50 Work hours for translation" in listed and "smallest unit" not in listed  # never 1050


def test_price_plan_with_prices_typed_as_decimals(db, master, world):
    post_form(master, "/catalogue/products/new", {"code": "widget", "name": "Widget", "kind": "physical_good",
                                                  "unit": "each", "active": "on"}, page="/catalogue/products/new")
    bad = post_form(master, "/catalogue/price-plans/new", {"code": "jpy", "name": "Yen", "currency": "XXY",
                                                           "active": "on"}, page="/catalogue/price-plans")
    assert bad.status_code == 422 and 'id="err-currency"' in bad.text
    created = post_form(master, "/catalogue/price-plans/new", {"code": "jpy", "name": "Yen", "currency": "jpy",
                                                               "is_default": "on", "active": "on"},
                        page="/catalogue/price-plans")
    assert created.status_code == 303 and created.headers["location"].startswith("/catalogue/price-plans/plan_")
    plan_page = created.headers["location"]
    pid = product_id(db, world.workspace_id, "widget")
    refused = post_form(master, f"{plan_page}/prices", {"product_id": pid, "unit_price": "12.50"}, page=plan_page)
    assert refused.status_code == 422 and f'id="err-{pid}"' in refused.text and "JPY" in refused.text
    saved = post_form(master, f"{plan_page}/prices", {"product_id": pid, "unit_price": "1,250"}, page=plan_page)
    assert saved.status_code == 303
    assert "JPY1,250" in master.get(plan_page).text  # currencies.format_money, en_AU
    with db.read() as session:
        assert session.scalar(select(Price.unit_price).where(Price.product_id == pid)) == 1250


def test_tax_rates_typed_in_percent(db, master, world):
    post_form(master, "/catalogue/tax-classes/new", {"code": "gst", "name": "GST"}, page="/catalogue/taxes")
    bad = post_form(master, "/catalogue/tax-rates/new", {"tax_class": "gst", "rate": "ten", "valid_from": "2026-01-01"},
                    page="/catalogue/taxes")
    assert bad.status_code == 422 and 'id="err-rate-rate_bp"' in bad.text
    ok = post_form(master, "/catalogue/tax-rates/new", {"tax_class": "gst", "rate": "12.5", "inclusive": "on",
                                                        "valid_from": "2026-01-01"}, page="/catalogue/taxes")
    assert ok.status_code == 303
    with db.read() as session:
        rate = session.scalar(select(TaxRate).where(TaxRate.workspace_id == world.workspace_id))
        assert (rate.rate_bp, rate.inclusive) == (1250, True)
    assert "12.5 % inclusive" in master.get("/catalogue/taxes").text


def test_a_forged_post_by_a_manager_is_refused(web, world):
    manager = logged_in(web, world.manager_email)
    r = post_form(manager, "/catalogue/tax-classes/new", {"code": "gst", "name": "GST"}, page="/catalogue/taxes")
    assert r.status_code == 403


def test_every_catalogue_form_carries_its_csrf_token_and_one_time_key(master):
    for path in ("/catalogue/products/new", "/catalogue/price-plans", "/catalogue/taxes", "/catalogue/types"):
        html = master.get(path).text
        forms = re.findall(r'<form method="post" action="/catalogue.*?</form>', html, re.S)
        assert forms, path
        for form in forms:
            assert re.search(r'name="csrf_token" value="[^"]{20,}"', form), (path, form[:200])
            assert 'name="idempotency_key"' in form, (path, form[:200])
