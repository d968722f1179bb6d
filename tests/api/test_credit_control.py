"""The credit control API: ratings, override rules, Change credit terms, the credit limit status on /v1/accounts
(and its filter), the spend decision (changes nothing), suspend / reactivate / terminate / write-off."""

from __future__ import annotations

import pytest

from creditdesk.billing import postings
from creditdesk.billing.models import BillingAccount
from tests.api.helpers import audit_rows
from tests.api.test_billing_accounts import SETTINGS, Api
from tests.parties.factories import make_api_key, make_user, master_actor
from tests.reliability.test_authorization_roles import workspace_state


@pytest.fixture
def api(client, workspace):
    return Api(client, workspace.headers)


@pytest.fixture
def world(api, db, workspace):
    api.patch("/v1/billing/settings", SETTINGS)
    customer = api.post("/v1/customers", {"name": "Acme", "kyc_profile": "verified"})
    assert customer["kyc_profile"] == "verified"
    rating = api.post("/v1/credit-ratings", {"code": "C", "name": "Cautious", "limits": {"AUD": 1000, "EUR": 600}})
    account = api.post("/v1/accounts", {"customer_id": customer["id"], "name": "Main", "classification": "Corporate"})
    return {"customer": customer["id"], "rating": rating["id"], "account": account["id"]}


def debit(db, account_id, amount):
    db.write(lambda s: postings.post_account_entry(s, s.get(BillingAccount, account_id), amount, "debit", "invoice"))


def test_ratings_list_create_update(api, world):
    listed = api.get("/v1/credit-ratings")["data"]
    assert [(r["code"], r["limits"]) for r in listed] == [("C", {"AUD": 1000, "EUR": 600})]
    assert api.get(f"/v1/credit-ratings/{world['rating']}")["name"] == "Cautious"
    changed = api.patch(f"/v1/credit-ratings/{world['rating']}", {"limits": {"AUD": 2000}})
    assert changed["limits"] == {"AUD": 2000}
    assert api.post("/v1/credit-ratings", {"code": "C", "name": "Again"}, status=409)["code"] == \
        "credit_rating_code_taken"
    assert api.post("/v1/credit-ratings", {"code": "D", "name": "D", "limits": {"AUD": -1}}, status=422)["code"] == \
        "validation_error"
    assert api.patch(f"/v1/credit-ratings/{world['rating']}", {"code": "Z"}, status=422)["code"] == "unknown_field"


def test_credit_terms_status_on_accounts_and_filter(api, db, world):
    account = world["account"]
    out = api.post(f"/v1/accounts/{account}/credit-terms", {"credit_rating_id": world["rating"],
                                                            "credit_period_days": 45}, status=200)
    assert (out["credit_rating_id"], out["effective_credit_limit"], out["credit_limit_status"],
            out["credit_period_days"]) == (world["rating"], 1000, "not_exceeded", 45)
    assert api.post(f"/v1/accounts/{account}/credit-terms", {"credit_period_days": 90}, status=422)["code"] == \
        "credit_period_out_of_range"
    debit(db, account, 1500)
    assert api.get(f"/v1/accounts/{account}")["credit_limit_status"] == "exceeded"
    assert [a["id"] for a in api.get("/v1/accounts?credit_limit_status=exceeded")["data"]] == [account]
    assert api.get("/v1/accounts?credit_limit_status=not_exceeded")["data"] == []
    out = api.post(f"/v1/accounts/{account}/credit-terms", {"credit_limit": 2000}, status=200)
    assert (out["credit_limit"], out["effective_credit_limit"], out["credit_limit_status"]) == \
        (2000, 2000, "not_exceeded")
    assert [a["credit_limit_status"] for a in api.get("/v1/accounts")["data"]] == ["not_exceeded"]
    [event] = audit_rows(db, api_ws(api, db), action="account.credit_terms_change", object_id=account)[:1]
    assert event.before["credit_rating_id"] is None and event.after["credit_rating_id"] == world["rating"]


def api_ws(api, db):
    return api.get("/v1/workspace")["id"]


def test_the_spend_decision_changes_nothing_and_names_the_rule(api, db, world, workspace):
    account = world["account"]
    api.post(f"/v1/accounts/{account}/credit-terms", {"credit_rating_id": world["rating"]}, status=200)
    debit(db, account, 900)
    ask = {"account_id": account, "event": "invoice_post", "amount": 100}
    before = workspace_state(db, workspace.id)
    ok = api.post("/v1/decisions/spend", ask, status=200)
    assert (ok["allowed"], ok["balance"], ok["balance_after"], ok["credit_limit"], ok["credit_limit_source"],
            ok["credit_limit_status"]) == (True, 900, 1000, 1000, "rating", "not_exceeded")
    no = api.post("/v1/decisions/spend", {**ask, "amount": 101}, status=200)
    assert no["allowed"] is False and [r["code"] for r in no["reasons"] if r["blocking"]] == ["credit_limit_exceeded"]
    assert no["credit_limit_status"] == "exceeded" and no["override_rule"] is None
    assert workspace_state(db, workspace.id) == before  # not one row changed
    rule = api.post("/v1/override-rules", {"name": "Verified corporate invoices", "events": ["invoice_post"],
                                           "classifications": ["corporate"], "kyc_profiles": ["Verified"],
                                           "credit_rating_ids": [world["rating"]]})
    yes = api.post("/v1/decisions/spend", {**ask, "amount": 101}, status=200)
    assert yes["allowed"] is True and yes["override_rule"] == {"id": rule["id"], "name": rule["name"]}
    assert [r["code"] for r in yes["reasons"]] == ["credit_limit_overridden"]
    assert api.post("/v1/decisions/spend", {**ask, "event": "purchase", "amount": 101}, status=200)["allowed"] is False
    api.patch(f"/v1/override-rules/{rule['id']}", {"active": False})
    assert api.post("/v1/decisions/spend", {**ask, "amount": 101}, status=200)["allowed"] is False
    assert api.post("/v1/decisions/spend", {**ask, "event": "nope"}, status=422)["code"] == "validation_error"
    assert api.post("/v1/decisions/spend", {**ask, "account_id": "acc_01m0000000000000000000000"},
                    status=404)["code"] == "not_found"
    assert api.post("/v1/decisions/spend", {**ask, "product": "nothing"}, status=404)["code"] == "not_found"


def test_lifecycle_endpoints(api, client, db, world, workspace):
    account = world["account"]
    out = api.post(f"/v1/accounts/{account}/suspend", {"reason": "dispute"}, status=200, key="susp-1")
    assert (out["status"], out["suspension_reason"]) == ("suspended", "dispute")
    replay = client.post(f"/v1/accounts/{account}/suspend", json={"reason": "dispute"},
                         headers={**workspace.headers, "Idempotency-Key": "susp-1"})
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert api.post(f"/v1/accounts/{account}/suspend", {"reason": "dispute"}, status=409)["code"] == \
        "account_already_suspended"
    decision = api.post("/v1/decisions/spend", {"account_id": account, "event": "subscription_activate",
                                                "amount": 0}, status=200)
    assert decision["allowed"] is False and decision["reasons"][0]["code"] == "account_suspended"
    assert api.post(f"/v1/accounts/{account}/reactivate", status=200)["status"] == "active"
    assert api.post(f"/v1/accounts/{account}/reactivate", {"note": "again"}, status=409)["code"] == \
        "account_not_suspended"
    debit(db, account, 700)
    assert api.post(f"/v1/accounts/{account}/terminate", status=409)["code"] == "account_balance_not_zero"
    wo = api.post(f"/v1/accounts/{account}/write-off", {"reason": "Insolvent"}, status=200)
    assert (wo["amount"], wo["account"]["id"], wo["reason"]) == (700, account, "Insolvent")
    assert api.get(f"/v1/accounts/{account}/balance")["balance"] == 0
    assert api.post(f"/v1/accounts/{account}/write-off", {"reason": "x"}, status=409)["code"] == "nothing_to_write_off"
    assert api.post(f"/v1/accounts/{account}/terminate", {"note": "closed"}, status=200)["status"] == "terminated"
    assert api.post(f"/v1/accounts/{account}/credit-terms", {"credit_limit": 1}, status=409)["code"] == \
        "account_terminated"
    actions = [e.action for e in audit_rows(db, workspace.id, object_id=account)]
    for action in ("account.suspend", "account.reactivate", "account.write_off", "account.terminate"):
        assert actions.count(action) == 1


def test_who_may(api, client, db, world, workspace):
    master = master_actor(db, workspace.id)
    manager = {"Authorization": "Bearer " + make_api_key(db, actor=master, user_id=make_user(
        db, actor=master, name="Manager", role="manager"))}
    member = {"Authorization": "Bearer " + make_api_key(db, actor=master, user_id=make_user(
        db, actor=master, name="Member"))}
    account = world["account"]
    for headers, path, body, status in (
            (manager, f"/v1/accounts/{account}/suspend", {"reason": "credit_check"}, 200),
            (member, f"/v1/accounts/{account}/reactivate", None, 403),
            (manager, f"/v1/accounts/{account}/reactivate", None, 200),
            (manager, f"/v1/accounts/{account}/terminate", None, 403),
            (manager, f"/v1/accounts/{account}/write-off", {"reason": "x"}, 403),
            (manager, f"/v1/accounts/{account}/credit-terms", {"credit_limit": 5}, 403),
            (manager, "/v1/credit-ratings", {"code": "M", "name": "M"}, 403),
            (manager, "/v1/accounts", {"customer_id": world["customer"], "name": "Rated",
                                       "credit_rating_id": world["rating"]}, 403),
            (manager, "/v1/accounts", {"customer_id": world["customer"], "name": "Unrated"}, 201),
            (manager, "/v1/override-rules", {"name": "M", "events": ["purchase"]}, 403),
            (member, "/v1/decisions/spend", {"account_id": account, "event": "purchase", "amount": 1}, 200)):
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == status, (path, r.text)
    assert client.get("/v1/credit-ratings", headers=member).status_code == 200
    assert client.get("/v1/override-rules", headers=member).status_code == 200


def test_an_account_opened_with_a_credit_rating_has_its_limit_from_the_start(api, world):
    """Seed 002: credit terms are set at creation, based on the selected credit rating."""
    rated = api.post("/v1/accounts", {"customer_id": world["customer"], "name": "Rated", "currency": "EUR",
                                      "credit_rating_id": world["rating"]})
    assert (rated["credit_rating_id"], rated["credit_limit"]) == (world["rating"], None)  # none of its own
    assert api.get(f"/v1/accounts/{rated['id']}")["effective_credit_limit"] == 600  # the rating's, in EUR
    refused = api.post("/v1/accounts", {"customer_id": world["customer"], "name": "Nope",
                                        "credit_rating_id": "crr_nope"}, status=404)
    assert refused["code"] == "not_found"
