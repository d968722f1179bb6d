"""Credit packages over HTTP (issue 13): a free grant (idempotent), product_not_covered vs insufficient credits
from POST /v1/consumptions, the customer's packages, and Edit with a correction."""

from __future__ import annotations


def test_free_grant_not_covered_insufficient_packages_and_edit(client, workspace):
    h = workspace.headers

    def post(path, body, status, key=None):
        r = client.post(path, json=body, headers={**h, **({"Idempotency-Key": key} if key else {})})
        assert r.status_code == status, r.text
        return r.json()

    post("/v1/credit-types", {"code": "massage", "name": "Massages"}, 201)
    for code in ("massage", "facial"):
        post("/v1/products", {"code": code, "name": code.title(), "kind": "service", "unit": "each"}, 201)
    post("/v1/products", {"code": "massage-10", "name": "10 massages", "kind": "credit_package", "unit": "pack",
                          "credit_package": {"credit_type": "massage", "credit_quantity": 10,
                                             "applicable_product_codes": ["massage"],
                                             "expiry": {"kind": "months_after_purchase", "months": 3}}}, 201)
    customer = post("/v1/customers", {"name": "Spa client"}, 201)["id"]
    holder = {"holder": {"kind": "customer", "id": customer}}
    pack = post("/v1/products/massage-10/grant", holder, 201, key="promo-1")
    assert (pack["source"], pack["is_paid"], pack["price_paid"], pack["quantity"]) == ("promotion", False, 0, 10)
    assert post("/v1/products/massage-10/grant", holder, 201, key="promo-1")["id"] == pack["id"]
    assert post("/v1/products/facial/grant", holder, 422)["code"] == "not_a_credit_package"

    consume = {"context": {"kind": "customer", "id": customer}, "credit_type": "massage"}
    refused = post("/v1/consumptions", {**consume, "amount": 1, "product_code": "facial"}, 409)
    assert refused["code"] == "product_not_covered" and "facial" in refused["detail"]
    post("/v1/consumptions", {**consume, "amount": 9, "product_code": "massage"}, 201)
    short = post("/v1/consumptions", {**consume, "amount": 2, "product_code": "massage"}, 409)
    assert short["code"] == "insufficient_credits" and "1 available" in short["detail"]

    r = client.get(f"/v1/customers/{customer}/packages", headers=h)
    [row] = r.json()["data"]
    assert (row["bought"], row["used"], row["remaining"], row["status"]) == (10, 9, 1, "active")
    edited = post(f"/v1/packs/{pack['id']}/package-edit", {"remaining": 4, "reason": "goodwill",
                                                           "status_label": "VIP"}, 200)
    assert (edited["remaining"], edited["status_label"]) == (4, "VIP")
    assert post(f"/v1/packs/{pack['id']}/package-edit", {"remaining": 1}, 422)["code"] == "reason_required"
