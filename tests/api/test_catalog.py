"""The catalogue over HTTP: product types and families, products (credit packages too), tax classes and rates,
price plans and prices; errors, idempotency, audit, roles and workspaces."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from creditdesk.catalog.models import Price, PricePlan, Product, ProductFamily, ProductType, TaxClass, TaxRate
from tests.api.credits_world import Api, member_api, problem
from tests.api.helpers import audit_rows

CATALOGUE = {"product_types": ProductType, "product_families": ProductFamily, "products": Product,
             "tax_classes": TaxClass, "tax_rates": TaxRate, "price_plans": PricePlan, "prices": Price}


def catalogue_state(db, workspace_id: str) -> dict:
    """Every catalogue row of one workspace, as stored."""
    with db.read() as session:
        return {name: sorted(tuple(str(getattr(row, c.key)) for c in model.__table__.columns)
                             for row in session.scalars(select(model).where(model.workspace_id == workspace_id)))
                for name, model in CATALOGUE.items()}


@pytest.fixture
def api(client, workspace):
    return Api(client, workspace.headers)


@pytest.fixture
def catalogue(api):
    """Credit type sms; type consulting (service), family support; tax class gst 10 % exclusive; products
    consulting hours and sms message; a default AUD plan."""
    api.created("/v1/credit-types", {"code": "sms", "name": "SMS"})
    api.created("/v1/product-types", {"code": "consulting", "name": "Consulting hours", "kind": "service"})
    api.created("/v1/product-families", {"code": "support", "name": "Support"})
    api.created("/v1/tax-classes", {"code": "gst", "name": "GST"})
    api.created("/v1/tax-rates", {"tax_class": "gst", "rate_bp": 1000, "valid_from": "2020-01-01"})
    hours = api.created("/v1/products", {"code": "consulting-hour", "name": "Consulting hour", "type": "consulting",
                                         "family": "support", "unit": "hour", "tax_class": "gst"})
    sms = api.created("/v1/products", {"code": "sms-message", "name": "SMS message", "kind": "service",
                                       "unit": "message"})
    plan = api.created("/v1/price-plans", {"code": "aud", "name": "Standard AUD", "currency": "aud",
                                           "is_default": True})
    return {"hours": hours, "sms": sms, "plan": plan}


def test_product_with_type_family_and_tax_class(api, catalogue):
    hours = catalogue["hours"]
    assert hours["id"].startswith("prod_") and hours["object"] == "product"
    assert (hours["kind"], hours["type"], hours["family"], hours["unit"], hours["tax_class"], hours["active"]) == (
        "service", "consulting", "support", "hour", "gst", True)
    assert hours["credit_package"] is None
    assert api.get(f"/v1/products/{hours['id']}").json() == hours
    assert api.get("/v1/products/consulting-hour").json() == hours  # by code too

    changed = api.patch(f"/v1/products/{hours['id']}", {"name": "Consulting", "family": None, "active": False},
                        status=200).json()
    assert (changed["name"], changed["family"], changed["active"], changed["type"]) == (
        "Consulting", None, False, "consulting")
    # Code and kind never change: they are not fields of an update.
    problem(api.patch(f"/v1/products/{hours['id']}", {"code": "other"}), 422, "unknown_field")
    problem(api.patch(f"/v1/products/{hours['id']}", {"kind": "physical_good"}), 422, "unknown_field")


def test_product_refusals_write_nothing(api, db, workspace, catalogue):
    before = catalogue_state(db, workspace.id)
    api.created("/v1/product-types", {"code": "gadgets", "name": "Gadgets", "kind": "physical_good"})
    before = catalogue_state(db, workspace.id)
    base = {"code": "x1", "name": "X", "unit": "each"}
    problem(api.post("/v1/products", {**base, "code": "consulting-hour", "kind": "service"}), 409, "code_taken")
    problem(api.post("/v1/products", base), 422, "kind_required")
    problem(api.post("/v1/products", {**base, "type": "nope"}), 422, "unknown_product_type")
    problem(api.post("/v1/products", {**base, "type": "gadgets", "kind": "service"}), 422,
            "product_type_kind_mismatch")
    problem(api.post("/v1/products", {**base, "kind": "service", "family": "nope"}), 422, "unknown_product_family")
    problem(api.post("/v1/products", {**base, "kind": "service", "tax_class": "vat"}), 422, "unknown_tax_class")
    problem(api.post("/v1/products", {**base, "kind": "service", "code": "has space"}), 422, "validation_error")
    problem(api.post("/v1/products", {**base, "kind": "service", "workspace_id": "ws_x"}), 422, "unknown_field")
    problem(api.patch(f"/v1/products/{catalogue['hours']['id']}", {"type": "gadgets"}), 422,
            "product_type_kind_mismatch")
    problem(api.get("/v1/products/nope", status=None), 404, "not_found")
    assert catalogue_state(db, workspace.id) == before


def test_credit_package(api, db, workspace, catalogue):
    body = {"code": "sms-500", "name": "SMS bundle 500", "kind": "credit_package", "unit": "bundle",
            "tax_class": "gst", "credit_package": {
                "credit_type": "sms", "credit_quantity": 500, "applicable_product_codes": ["sms-message"],
                "expiry": {"kind": "fixed_date", "month": 12, "day": 31}}}
    bundle = api.created("/v1/products", body)
    assert bundle["credit_package"] == {"credit_type": "sms", "credit_quantity": 500,
                                        "applicable_product_codes": ["sms-message"],
                                        "expiry": {"kind": "fixed_date", "month": 12, "day": 31, "months": None}}
    months = api.patch(f"/v1/products/{bundle['id']}", {"credit_package": {
        **body["credit_package"], "expiry": {"kind": "months_after_purchase", "months": 12}}}, status=200).json()
    assert months["credit_package"]["expiry"] == {"kind": "months_after_purchase", "month": None, "day": None,
                                                  "months": 12}

    before = catalogue_state(db, workspace.id)
    package = body["credit_package"]
    for change, code in [
        ({"credit_package": None}, "credit_package_fields_required"),
        ({"credit_package": {**package, "credit_type": "hours"}}, "unknown_credit_type"),
        ({"credit_package": {**package, "applicable_product_codes": ["sms-message", "ghost"]}}, "unknown_product"),
        ({"credit_package": {**package, "applicable_product_codes": ["sms-500"]}}, "invalid_applicable_product"),
        ({"credit_package": {**package, "expiry": {"kind": "fixed_date", "month": 2, "day": 30}}},
         "invalid_expiry_policy"),
        ({"credit_package": {**package, "expiry": {"kind": "fixed_date", "month": 2, "day": 29}}},
         "invalid_expiry_policy"),
        ({"credit_package": {**package, "expiry": {"kind": "none", "months": 3}}}, "invalid_expiry_policy"),
        ({"credit_package": {**package, "expiry": {"kind": "months_after_purchase"}}}, "invalid_expiry_policy"),
    ]:
        problem(api.patch(f"/v1/products/{bundle['id']}", change), 422, code)
    problem(api.post("/v1/products", {**body, "code": "sms-1000", "credit_package": None}), 422,
            "credit_package_fields_required")
    problem(api.post("/v1/products", {**body, "code": "sms-1000", "credit_package": {**package,
                                                                                     "credit_quantity": 0}}),
            422, "validation_error")
    problem(api.post("/v1/products", {**body, "code": "svc", "kind": "service"}), 422,
            "credit_package_fields_not_allowed")
    assert catalogue_state(db, workspace.id) == before

    listed = api.get("/v1/products", {"kind": "credit_package"}).json()["data"]
    assert [p["code"] for p in listed] == ["sms-500"]


def test_product_list_filters_and_pages(api, catalogue):
    for i in range(5):
        api.created("/v1/products", {"code": f"widget-{i}", "name": f"Blue widget {i}", "kind": "physical_good",
                                     "unit": "each", "active": i % 2 == 0})
    codes = lambda params: [p["code"] for p in api.get("/v1/products", params).json()["data"]]  # noqa: E731
    assert codes({"kind": "physical_good", "active": "true"}) == ["widget-0", "widget-2", "widget-4"]
    assert codes({"type": "consulting"}) == ["consulting-hour"]
    assert codes({"family": "support"}) == ["consulting-hour"]
    assert codes({"q": "BLUE WIDGET 3"}) == ["widget-3"]
    assert codes({"q": "%"}) == []  # a wildcard is searched for, not obeyed
    first = api.get("/v1/products", {"limit": 3}).json()
    second = api.get("/v1/products", {"limit": 3, "cursor": first["next_cursor"]}).json()
    third = api.get("/v1/products", {"limit": 3, "cursor": second["next_cursor"]}).json()
    seen = [p["code"] for page in (first, second, third) for p in page["data"]]
    assert len(seen) == len(set(seen)) == 7 and third["next_cursor"] is None
    problem(api.get("/v1/products", {"type": "nope"}, status=None), 422, "unknown_product_type")
    problem(api.get("/v1/products", {"kind": "robot"}, status=None), 422, "validation_error")
    problem(api.get("/v1/products", {"colour": "blue"}, status=None), 422, "unknown_query_parameter")


def test_types_families_and_tax_classes_crud(api):
    t = api.created("/v1/product-types", {"code": "bundles", "name": "Bundles", "kind": "credit_package"})
    assert t["id"].startswith("ptyp_") and t["kind"] == "credit_package"
    assert api.patch(f"/v1/product-types/{t['id']}", {"name": "SMS bundles", "active": False},
                     status=200).json()["name"] == "SMS bundles"
    assert [x["code"] for x in api.get("/v1/product-types", {"active": "false"}).json()["data"]] == ["bundles"]
    problem(api.post("/v1/products", {"code": "b", "name": "B", "type": "bundles", "unit": "each"}), 422,
            "product_type_inactive")
    problem(api.post("/v1/product-types", {"code": "x", "name": "X", "kind": "robot"}), 422, "validation_error")
    f = api.created("/v1/product-families", {"code": "hardware", "name": "Hardware"})
    assert api.get(f"/v1/product-families/{f['id']}").json()["name"] == "Hardware"
    c = api.created("/v1/tax-classes", {"code": "vat", "name": "VAT"})
    assert api.patch(f"/v1/tax-classes/{c['id']}", {"name": "VAT 2"}, status=200).json()["name"] == "VAT 2"
    problem(api.post("/v1/tax-classes", {"code": "vat", "name": "Again"}), 409, "code_taken")
    problem(api.patch(f"/v1/tax-classes/{c['id']}", {"code": "vat2"}), 422, "unknown_field")


def test_tax_rates(api, catalogue):
    later = api.created("/v1/tax-rates", {"tax_class": "gst", "rate_bp": 1500, "inclusive": True,
                                          "valid_from": "2027-07-01"})
    assert (later["tax_class"], later["rate_bp"], later["inclusive"], later["valid_from"]) == (
        "gst", 1500, True, "2027-07-01")
    assert len(api.get("/v1/tax-rates", {"tax_class": "gst"}).json()["data"]) == 2
    problem(api.post("/v1/tax-rates", {"tax_class": "gst", "rate_bp": 1, "valid_from": "2027-07-01"}), 409,
            "tax_rate_exists")
    problem(api.post("/v1/tax-rates", {"tax_class": "nope", "rate_bp": 1, "valid_from": "2027-07-01"}), 422,
            "unknown_tax_class")
    problem(api.post("/v1/tax-rates", {"tax_class": "gst", "rate_bp": -1, "valid_from": "2028-01-01"}), 422,
            "validation_error")
    problem(api.post("/v1/tax-rates", {"tax_class": "gst", "rate_bp": True, "valid_from": "2028-01-01"}), 422,
            "validation_error")
    fixed = api.patch(f"/v1/tax-rates/{later['id']}", {"rate_bp": 1250}, status=200).json()
    assert fixed["rate_bp"] == 1250 and fixed["inclusive"] is True
    problem(api.patch(f"/v1/tax-rates/{later['id']}", {"valid_from": "2027-01-01"}), 422, "unknown_field")


def test_price_plans_and_prices(api, db, workspace, catalogue):
    plan = catalogue["plan"]
    assert (plan["currency"], plan["is_default"], plan["active"]) == ("AUD", True, True)
    price = api.client.put(f"/v1/price-plans/{plan['id']}/prices", headers=api.headers,
                           json={"product": "consulting-hour", "unit_price": 15000})
    assert price.status_code == 200, price.text
    assert (price.json()["unit_price"], price.json()["currency"], price.json()["product_code"]) == (
        15000, "AUD", "consulting-hour")
    again = api.client.put(f"/v1/price-plans/{plan['id']}/prices", headers=api.headers,
                           json={"product": catalogue["hours"]["id"], "unit_price": 16000}).json()
    assert again["id"] == price.json()["id"] and again["unit_price"] == 16000
    listed = api.get(f"/v1/price-plans/{plan['id']}/prices").json()["data"]
    assert [(p["product_code"], p["unit_price"]) for p in listed] == [("consulting-hour", 16000)]
    events = audit_rows(db, workspace.id, action="price.set")
    assert [e.before and e.before["unit_price"] for e in events] == [None, 15000]
    assert events[-1].after["unit_price"] == 16000

    # A second default AUD plan takes the flag; the first is no longer default.
    second = api.created("/v1/price-plans", {"code": "aud-2", "name": "AUD 2027", "currency": "AUD",
                                             "is_default": True})
    assert second["is_default"] is True
    assert api.get(f"/v1/price-plans/{plan['id']}").json()["is_default"] is False
    eur = api.created("/v1/price-plans", {"code": "eur", "name": "Euro", "currency": "EUR", "is_default": True})
    assert eur["is_default"] and api.get(f"/v1/price-plans/{second['id']}").json()["is_default"]
    assert [p["code"] for p in api.get("/v1/price-plans", {"currency": "aud"}).json()["data"]] == ["aud", "aud-2"]

    before = catalogue_state(db, workspace.id)
    put = lambda body: api.client.put(f"/v1/price-plans/{plan['id']}/prices", headers=api.headers,  # noqa: E731
                                      json=body)
    problem(put({"product": "ghost", "unit_price": 1}), 422, "unknown_product")
    problem(put({"product": "consulting-hour", "unit_price": -1}), 422, "validation_error")
    problem(put({"product": "consulting-hour", "unit_price": 1.5}), 422, "validation_error")
    problem(api.post("/v1/price-plans", {"code": "xx", "name": "X", "currency": "ABC"}), 422, "unknown_currency")
    problem(api.post("/v1/price-plans", {"code": "xx", "name": "X", "currency": "AUD", "is_default": True,
                                         "active": False}), 422, "default_plan_inactive")
    problem(api.patch(f"/v1/price-plans/{eur['id']}", {"active": False}), 422, "default_plan_inactive")
    problem(api.patch(f"/v1/price-plans/{eur['id']}", {"currency": "USD"}), 422, "unknown_field")
    problem(api.client.put("/v1/price-plans/plan_nope/prices", headers=api.headers,
                           json={"product": "consulting-hour", "unit_price": 1}), 404, "not_found")
    assert catalogue_state(db, workspace.id) == before


def test_writes_are_idempotent_and_audited(api, db, workspace):
    body = {"code": "gst", "name": "GST"}
    first = api.post("/v1/tax-classes", body, key="tc-1", status=201)
    replay = api.post("/v1/tax-classes", body, key="tc-1", status=201)
    assert replay.json() == first.json() and replay.headers["Idempotent-Replayed"] == "true"
    problem(api.post("/v1/tax-classes", {**body, "name": "Other"}, key="tc-1"), 422, "idempotency_key_reused")
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(TaxClass)
                              .where(TaxClass.workspace_id == workspace.id)) == 1
    tc = first.json()
    api.patch(f"/v1/tax-classes/{tc['id']}", {"name": "Goods and services tax"}, status=200)
    events = audit_rows(db, workspace.id, object_id=tc["id"])
    assert [e.action for e in events] == ["tax_class.create", "tax_class.update"]
    assert events[1].before["name"] == "GST" and events[1].after["name"] == "Goods and services tax"


def test_only_masters_write_everyone_reads(client, api, db, workspace, catalogue):
    manager, _ = member_api(client, api, permissions=["manage_packs", "consume_credits", "manage_users"],
                            role="manager")
    member, _ = member_api(client, api, permissions=[])
    before = catalogue_state(db, workspace.id)
    for caller in (manager, member):
        assert [p["code"] for p in caller.get("/v1/products").json()["data"]] == ["consulting-hour", "sms-message"]
        caller.get(f"/v1/price-plans/{catalogue['plan']['id']}/prices")
        caller.get("/v1/tax-rates")
        problem(caller.post("/v1/products", {"code": "m", "name": "M", "kind": "service", "unit": "each"}), 403,
                "not_permitted")
        problem(caller.patch(f"/v1/products/{catalogue['hours']['id']}", {"name": "M"}), 403, "not_permitted")
        problem(caller.client.put(f"/v1/price-plans/{catalogue['plan']['id']}/prices", headers=caller.headers,
                                  json={"product": "sms-message", "unit_price": 1}), 403, "not_permitted")
        problem(caller.post("/v1/tax-rates", {"tax_class": "gst", "rate_bp": 0, "valid_from": "2030-01-01"}),
                403, "not_permitted")
    assert catalogue_state(db, workspace.id) == before


def test_another_workspace_sees_nothing(client, api, other_workspace, catalogue):
    other = Api(client, other_workspace.headers)
    assert other.get("/v1/products").json()["data"] == []
    problem(other.get(f"/v1/products/{catalogue['hours']['id']}", status=None), 404, "not_found")
    problem(other.get("/v1/products/consulting-hour", status=None), 404, "not_found")
    problem(other.get(f"/v1/price-plans/{catalogue['plan']['id']}", status=None), 404, "not_found")
    problem(other.patch(f"/v1/products/{catalogue['hours']['id']}", {"name": "Mine"}), 404, "not_found")
    problem(other.client.put(f"/v1/price-plans/{catalogue['plan']['id']}/prices", headers=other.headers,
                             json={"product": "consulting-hour", "unit_price": 1}), 404, "not_found")
    # Codes are per workspace: the same codes are free here.
    other.created("/v1/tax-classes", {"code": "gst", "name": "GST"})
    other.created("/v1/products", {"code": "consulting-hour", "name": "Theirs", "kind": "service", "unit": "hour"})
    problem(other.post("/v1/tax-rates", {"tax_class": "gst", "rate_bp": 1000, "valid_from": "2020-01-01",
                                         "workspace_id": "x"}), 422, "unknown_field")


def test_every_catalogue_list_refuses_forged_cursors(api, catalogue):
    from tests.api.test_pagination import _fuzz

    plan = catalogue["plan"]["id"]
    api.client.put(f"/v1/price-plans/{plan}/prices", headers=api.headers,
                   json={"product": "sms-message", "unit_price": 5})
    failures = []
    for path in ("/v1/products", "/v1/product-types", "/v1/product-families", "/v1/tax-classes", "/v1/tax-rates",
                 "/v1/price-plans", f"/v1/price-plans/{plan}/prices"):
        failures += _fuzz(api.client, api.headers, path, {})
    assert not failures, "\n".join(failures[:30])
    api.client.put(f"/v1/price-plans/{plan}/prices", headers=api.headers,
                   json={"product": "consulting-hour", "unit_price": 7})
    first = api.get(f"/v1/price-plans/{plan}/prices", {"limit": 1}).json()
    second = api.get(f"/v1/price-plans/{plan}/prices", {"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [p["unit_price"] for p in first["data"] + second["data"]] == [5, 7] and second["next_cursor"] is None
