"""The accounts API: addresses, billing settings, conversion rates, accounts, balance, statement (JSON and
CSV), accounting periods; refusals with stable codes and nothing written; tenancy; idempotent writes."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from creditdesk.billing import postings
from creditdesk.billing.models import BillingAccount
from tests.api.helpers import audit_rows, auth
from tests.parties.factories import make_api_key, make_user, master_actor

SETTINGS = {"default_currency": "AUD", "multi_currency": True, "enabled_currencies": ["EUR"],
            "credit_terms": {"credit_period_days": 30, "min_days": 14, "max_days": 60}}


class Api:
    def __init__(self, client, headers):
        self.client, self.headers = client, headers

    def call(self, method, path, body=None, *, status, key=None):
        headers = dict(self.headers)
        if key:
            headers["Idempotency-Key"] = key
        r = self.client.request(method, path, json=body, headers=headers)
        assert r.status_code == status, f"{method} {path} -> {r.status_code} {r.text}"
        return r.json() if r.headers.get("content-type", "").endswith("json") else r

    def get(self, path, status=200):
        return self.call("GET", path, status=status)

    def post(self, path, body=None, status=201, **kw):
        return self.call("POST", path, body, status=status, **kw)

    def patch(self, path, body, status=200, **kw):
        return self.call("PATCH", path, body, status=status, **kw)


@pytest.fixture
def api(client, workspace):
    return Api(client, workspace.headers)


@pytest.fixture
def books(api):
    api.patch("/v1/billing/settings", SETTINGS)
    customer = api.post("/v1/customers", {"name": "Acme"})["id"]
    address = api.post(f"/v1/customers/{customer}/addresses",
                       {"type": "billing", "line1": "1 George St", "city": "Sydney", "region": "NSW",
                        "postcode": "2000", "country": "au", "is_primary": True})
    return {"customer": customer, "address": address["id"]}


def test_settings_start_unconfigured_then_round_trip(api):
    assert api.get("/v1/billing/settings")["configured"] is False
    api.post("/v1/accounts", {"customer_id": api.post("/v1/customers", {"name": "X"})["id"], "name": "A"},
             status=409)
    answer = api.patch("/v1/billing/settings", {**SETTINGS, "enabled_currencies": ["eur", "EUR", "usd"]})
    assert answer["enabled_currencies"] == ["EUR", "USD"]
    assert answer["credit_terms"] == {"credit_period_days": 30, "min_days": 14, "max_days": 60}
    assert api.get("/v1/billing/settings") == answer
    bad = api.patch("/v1/billing/settings", {"enabled_currencies": ["XYZ"]}, status=422)
    assert bad["code"] == "unknown_currency"
    bad = api.patch("/v1/billing/settings", {"credit_terms": {"credit_period_days": 5, "min_days": 10,
                                                              "max_days": 20}}, status=422)
    assert bad["code"] == "invalid_credit_terms"
    periods = {"accounting_periods": {"frequency": "monthly", "start_date": "2026-01-01"}}
    api.patch("/v1/billing/settings", periods)
    assert api.patch("/v1/billing/settings", periods, status=409)["code"] == "period_settings_locked"


def test_addresses_list_create_update(api, books):
    customer = books["customer"]
    second = api.post(f"/v1/customers/{customer}/addresses",
                      {"type": "billing", "line1": "2 Pitt St", "city": "Sydney", "country": "AU",
                       "is_primary": True})
    listed = api.get(f"/v1/customers/{customer}/addresses")["data"]
    assert [a["id"] for a in listed if a["is_primary"]] == [second["id"]]  # one primary billing address
    changed = api.patch(f"/v1/customers/{customer}/addresses/{books['address']}", {"city": "Newcastle",
                                                                                   "postcode": ""})
    assert (changed["city"], changed["postcode"], changed["country"]) == ("Newcastle", None, "AU")
    assert api.post(f"/v1/customers/{customer}/addresses", {"line1": "x", "city": "y", "country": "QQ"},
                    status=422)["code"] == "unknown_country"
    other = api.post("/v1/customers", {"name": "Other"})["id"]
    api.patch(f"/v1/customers/{other}/addresses/{books['address']}", {"city": "Nope"}, status=404)


def test_open_account_and_read_it_back(api, books, db, workspace):
    account = api.post("/v1/accounts", {"customer_id": books["customer"], "name": "Main", "currency": "EUR",
                                        "billing_address_id": books["address"], "classification": "Corporate"},
                       key="open-main")
    assert (account["number"], account["currency"], account["credit_period_days"], account["status"]) == (
        "ACC-000001", "EUR", 30, "active")
    replay = api.client.post("/v1/accounts", json={"customer_id": books["customer"], "name": "Main",
                                                   "currency": "EUR", "billing_address_id": books["address"],
                                                   "classification": "Corporate"},
                             headers={**api.headers, "Idempotency-Key": "open-main"})
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json()["id"] == account["id"]
    assert api.get(f"/v1/accounts/{account['id']}") == account
    assert api.post("/v1/accounts", {"customer_id": books["customer"], "name": "Two"})["number"] == "ACC-000002"
    assert [a["id"] for a in api.get("/v1/accounts?currency=EUR")["data"]] == [account["id"]]
    assert len(api.get(f"/v1/accounts?customer_id={books['customer']}&status=active")["data"]) == 2
    page = api.get("/v1/accounts?limit=1")
    assert api.get(f"/v1/accounts?limit=1&cursor={page['next_cursor']}")["data"][0]["number"] == "ACC-000002"
    assert [e.action for e in audit_rows(db, workspace.id, object_id=account["id"])] == ["account.create"]


@pytest.mark.parametrize("body,status,code", [
    ({"currency": "USD"}, 422, "currency_not_enabled"),
    ({"currency": "ABC"}, 422, "unknown_currency"),
    ({"credit_period_days": 90}, 422, "credit_period_out_of_range"),
    ({"billing_address_id": "adr_01m000000000000000000000zz"}, 422, "address_not_of_customer"),
    ({"customer_id": "cus_01m000000000000000000000zz"}, 404, "not_found"),
    ({"status": "suspended"}, 422, "unknown_field"),
    ({"number": "ACC-999999"}, 422, "unknown_field"),
])
def test_bad_accounts_are_refused_and_write_nothing(api, books, body, status, code, db, workspace):
    base = {"customer_id": books["customer"], "name": "Refused"}
    assert api.post("/v1/accounts", {**base, **body}, status=status)["code"] == code
    assert api.get("/v1/accounts")["data"] == []
    assert api.post("/v1/accounts", base)["number"] == "ACC-000001"  # no number was used up


def test_account_changes(api, books):
    account = api.post("/v1/accounts", {"customer_id": books["customer"], "name": "Main"})
    path = f"/v1/accounts/{account['id']}"
    assert api.patch(path, {"currency": "EUR"}, status=409)["code"] == "currency_immutable"
    assert api.patch(path, {"credit_period_days": 61}, status=422)["code"] == "credit_period_out_of_range"
    changed = api.patch(path, {"credit_period_days": 45, "name": "Renamed", "billing_address_id": books["address"]})
    assert (changed["credit_period_days"], changed["name"], changed["currency"]) == (45, "Renamed", "AUD")
    assert api.patch(path, {"billing_address_id": None})["billing_address_id"] is None


def test_balance_and_statement_from_the_ledger(api, books, db, workspace):
    account = api.post("/v1/accounts", {"customer_id": books["customer"], "name": "Main"})
    actor = master_actor(db, workspace.id)
    with db.read() as session:
        row = session.get(BillingAccount, account["id"])
        session.expunge(row)
    for amount, direction, kind in [(10_000, "debit", "invoice"), (2_550, "credit", "payment"), (5, "debit", "fee")]:
        db.write(lambda s: postings.post_account_entry(s, row, amount, direction, kind, actor_id=actor.user_id))
    balance = api.get(f"/v1/accounts/{account['id']}/balance")
    assert (balance["balance"], balance["opening_balance"], balance["outstanding"], balance["currency"]) == (
        7_455, 0, 0, "AUD")
    first = api.get(f"/v1/accounts/{account['id']}/statement?limit=2")
    rest = api.get(f"/v1/accounts/{account['id']}/statement?limit=2&cursor={first['next_cursor']}")
    assert [(line["kind"], line["debit"], line["credit"], line["balance"]) for line in first["data"] + rest["data"]] == [
        ("invoice", 10_000, 0, 10_000), ("payment", 0, 2_550, 7_450), ("fee", 5, 0, 7_455)]
    r = api.client.get(f"/v1/accounts/{account['id']}/statement.csv", headers=api.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:7] == ["posted_at", "kind", "reference_kind", "reference_id", "debit", "credit", "balance"]
    assert [row[4:8] for row in rows[1:]] == [["100.00", "0.00", "100.00", "AUD"], ["0.00", "25.50", "74.50", "AUD"],
                                              ["0.05", "0.00", "74.55", "AUD"]]


def test_conversion_rates_api(api):
    api.patch("/v1/billing/settings", SETTINGS)
    rate = api.post("/v1/conversion-rates", {"from_currency": "eur", "to_currency": "AUD", "rate": "1.6350",
                                             "valid_from": "2026-01-01"})
    assert (rate["from_currency"], rate["rate"], rate["valid_from"]) == ("EUR", "1.635", "2026-01-01")
    assert api.post("/v1/conversion-rates", {"from_currency": "EUR", "to_currency": "AUD", "rate": "1.7",
                                             "valid_from": "2026-01-01"}, status=409)["code"] == "conversion_rate_exists"
    assert api.post("/v1/conversion-rates", {"from_currency": "EUR", "to_currency": "AUD", "rate": "1e3",
                                             "valid_from": "2026-02-01"}, status=422)["code"] == "validation_error"
    assert [r["id"] for r in api.get("/v1/conversion-rates?from_currency=EUR")["data"]] == [rate["id"]]


def test_periods_close_through_the_api(api, books, frozen_clock):
    frozen_clock.set(datetime(2026, 3, 5, tzinfo=UTC))
    api.patch("/v1/billing/settings", {"accounting_periods": {"frequency": "monthly", "start_date": "2026-01-01"}})
    api.post("/v1/accounts", {"customer_id": books["customer"], "name": "Main"})
    first = api.post("/v1/accounting-periods/close", status=200)["closed"]
    assert (first["start_date"], first["end_date"], first["accounts_closed"]) == ("2026-01-01", "2026-01-31", 1)
    assert api.post("/v1/accounting-periods/close", status=200)["closed"]["end_date"] == "2026-02-28"
    assert api.post("/v1/accounting-periods/close", status=200)["closed"] is None
    assert [p["end_date"] for p in api.get("/v1/accounting-periods")["data"]] == ["2026-02-28", "2026-01-31"]
    assert api.get(f"/v1/accounts/{api.get('/v1/accounts')['data'][0]['id']}/balance")["opening_as_of"].startswith(
        "2026-03-01")


def test_who_may(api, books, client, db, workspace):
    actor = master_actor(db, workspace.id)
    manager = Api(client, auth(make_api_key(db, actor=actor, user_id=make_user(
        db, actor=actor, name="Manager", role="manager"))))
    member = Api(client, auth(make_api_key(db, actor=actor, user_id=make_user(db, actor=actor, name="Member"))))
    account = manager.post("/v1/accounts", {"customer_id": books["customer"], "name": "By manager"})
    path = f"/v1/accounts/{account['id']}"
    manager.patch(path, {"name": "Manager renamed"})
    manager.patch(path, {"credit_period_days": 40}, status=403)
    manager.patch("/v1/billing/settings", {"multi_currency": False}, status=403)
    manager.post("/v1/conversion-rates", {"from_currency": "EUR", "to_currency": "AUD", "rate": "1.6",
                                          "valid_from": "2026-01-01"}, status=403)
    manager.post("/v1/accounting-periods/close", status=403)
    manager.post(f"/v1/customers/{books['customer']}/addresses", {"line1": "M", "city": "C", "country": "NZ"})
    member.post("/v1/accounts", {"customer_id": books["customer"], "name": "By member"}, status=403)
    member.patch(path, {"name": "x"}, status=403)
    member.post(f"/v1/customers/{books['customer']}/addresses", {"line1": "M", "city": "C", "country": "NZ"},
                status=403)
    # Every staff user reads.
    assert member.get(path)["name"] == "Manager renamed"
    member.get(f"{path}/balance")
    member.get(f"{path}/statement")
    member.get("/v1/billing/settings")
    member.get(f"/v1/customers/{books['customer']}/addresses")


def test_another_workspaces_accounts_are_not_found(api, books, client, other_workspace):
    account = api.post("/v1/accounts", {"customer_id": books["customer"], "name": "Mine"})
    theirs = Api(client, other_workspace.headers)
    theirs.patch("/v1/billing/settings", SETTINGS)
    for path in (f"/v1/accounts/{account['id']}", f"/v1/accounts/{account['id']}/balance",
                 f"/v1/accounts/{account['id']}/statement", f"/v1/accounts/{account['id']}/statement.csv",
                 f"/v1/customers/{books['customer']}/addresses"):
        theirs.get(path, status=404)
    theirs.patch(f"/v1/accounts/{account['id']}", {"name": "Stolen"}, status=404)
    theirs.post("/v1/accounts", {"customer_id": books["customer"], "name": "Stolen"}, status=404)
    assert theirs.get("/v1/accounts")["data"] == []
    assert api.get(f"/v1/accounts/{account['id']}")["name"] == "Mine"
