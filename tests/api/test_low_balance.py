"""Low-balance thresholds (issue 16): crossing below a threshold gives one balance.low crossing (audited), never
two for one crossing, also with 16 concurrent consumers; a configured top-up invoices the package for the holder
and, paid from the wallet, grants its pack at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from creditdesk.credits.low_balance_models import BalanceCrossing
from tests.api.helpers import audit_rows
from tests.api.test_billing_accounts import SETTINGS, Api
from tests.credits.helpers import consume
from tests.parties.factories import master_actor


@pytest.fixture
def api(client, workspace):
    return Api(client, workspace.headers)


@pytest.fixture
def office(api):
    api.post("/v1/credit-types", {"code": "hours", "name": "Hours", "scale": 2})
    customer = api.post("/v1/customers", {"name": "Acme"})["id"]
    office = api.post("/v1/offices", {"name": "London", "customer_id": customer})["id"]
    api.post("/v1/packs", {"holder": {"kind": "office", "id": office}, "credit_type": "hours", "quantity": 1000,
                           "name": "Ten hours"})
    return {"customer": customer, "office": office}


def crossings(db, workspace_id):
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(BalanceCrossing).where(
            BalanceCrossing.workspace_id == workspace_id))


def use(api, office, amount):
    return api.post("/v1/consumptions", {"context": {"kind": "office", "id": office}, "credit_type": "hours",
                                         "amount": amount})


def test_one_crossing_per_fall_below_the_threshold(api, office, db, workspace):
    t = api.call("PUT", "/v1/balance-thresholds", {"credit_type": "hours", "threshold": 300,
                                                   "holder": {"kind": "office", "id": office["office"]}}, status=200)
    assert (t["threshold"], t["holder"]["id"]) == (300, office["office"])
    use(api, office["office"], 600)  # 10.00 -> 4.00: still at or above 3.00
    assert crossings(db, workspace.id) == 0
    use(api, office["office"], 200)  # 4.00 -> 2.00: crossed
    use(api, office["office"], 100)  # 2.00 -> 1.00: already below, no new crossing
    [row] = api.get("/v1/balance-crossings")["data"]
    assert (row["balance_before"], row["balance_after"], row["threshold"]) == (400, 200, 300)
    assert len(audit_rows(db, workspace.id, action="balance.low")) == 1
    api.post("/v1/packs", {"holder": {"kind": "office", "id": office["office"]}, "credit_type": "hours",
                           "quantity": 500, "name": "Five more"})  # 6.00: above again
    use(api, office["office"], 400)  # 6.00 -> 2.00: a second crossing
    assert crossings(db, workspace.id) == 2
    # The workspace default watches holders without their own threshold.
    other = api.post("/v1/offices", {"name": "Leeds", "customer_id": office["customer"]})["id"]
    api.post("/v1/packs", {"holder": {"kind": "office", "id": other}, "credit_type": "hours", "quantity": 100,
                           "name": "One hour"})
    api.call("PUT", "/v1/balance-thresholds", {"credit_type": "hours", "threshold": 50}, status=200)
    use(api, other, 60)
    assert crossings(db, workspace.id) == 3
    assert api.call("DELETE", f"/v1/balance-thresholds/{t['id']}", status=200)["deleted"] is False


def test_sixteen_consumers_at_once_cross_once(api, office, db, workspace):
    api.call("PUT", "/v1/balance-thresholds", {"credit_type": "hours", "threshold": 500,
                                               "holder": {"kind": "office", "id": office["office"]}}, status=200)
    actor = master_actor(db, workspace.id)
    errors = []

    def consumer():
        try:
            for _ in range(3):
                consume(db, actor, "office", office["office"], 15, credit_type="hours")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
    threads = [threading.Thread(target=consumer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # 48 consumptions of 0.15 hours: 10.00 -> 2.80, through 5.00 once.
    assert crossings(db, workspace.id) == 1
    [row] = api.get("/v1/balance-crossings")["data"]
    assert row["balance_before"] >= 500 > row["balance_after"]


def test_a_top_up_is_invoiced_and_paid_from_the_wallet(api, office, db, workspace):
    api.patch("/v1/billing/settings", SETTINGS)
    api.post("/v1/products", {"code": "consulting", "name": "Consulting", "kind": "service", "unit": "hour"})
    api.post("/v1/products", {"code": "hours-5", "name": "Five hours", "kind": "credit_package", "unit": "pack",
                              "credit_package": {"credit_type": "hours", "credit_quantity": 500,
                                                 "applicable_product_codes": ["consulting"],
                                                 "expiry": {"kind": "none"}}})
    plan = api.post("/v1/price-plans", {"code": "aud", "name": "AUD", "currency": "AUD", "is_default": True})
    api.call("PUT", f"/v1/price-plans/{plan['id']}/prices", {"product": "hours-5", "unit_price": 50000}, status=200)
    account = api.post("/v1/accounts", {"customer_id": office["customer"], "name": "Main"})["id"]
    api.post(f"/v1/accounts/{account}/wallet")
    api.post(f"/v1/accounts/{account}/wallet/top-ups", {"amount": 100000})
    api.post("/v1/payment-preferences", {"account_id": account, "kind": "wallet", "opt_in_purchases": True})
    api.call("PUT", "/v1/balance-thresholds", {"credit_type": "hours", "threshold": 300, "top_up_package": "hours-5",
                                               "holder": {"kind": "office", "id": office["office"]}}, status=200)
    use(api, office["office"], 800)  # 10.00 -> 2.00
    [row] = api.get("/v1/balance-crossings")["data"]
    invoice = api.get(f"/v1/invoices/{row['top_up_invoice_id']}")
    assert (invoice["status"], invoice["total"]) == ("settled", 50000)
    packs = api.get(f"/v1/packs?holder_kind=office&holder_id={office['office']}")["data"]
    assert sorted(p["quantity"] for p in packs) == [500, 1000]  # the package's pack, for the office
    assert api.get(f"/v1/accounts/{account}/wallet")["balance"] == 50000
    use(api, office["office"], 100)  # still above (7.00 -> 6.00): no second top-up
    assert len(api.get("/v1/balance-crossings")["data"]) == 1
    refused = api.call("PUT", "/v1/balance-thresholds", {"credit_type": "hours", "threshold": 1,
                                                         "top_up_package": "consulting"}, status=422)
    assert refused["code"] == "top_up_not_a_package"
