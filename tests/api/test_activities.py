"""Activities over the API (seed 002): activity types with their services, scheduling (defaults from the type
and the customer), the list filters (customer, assignee, unit, type, status, overdue, mine), the transitions
with billing on completion, idempotent retries, and who may: managers change anything, the assignee starts
and completes, other members read only."""

from __future__ import annotations

import pytest

from tests.api.helpers import audit_rows
from tests.api.test_billing_accounts import SETTINGS, Api

START = "2027-03-01T09:00:00Z"


@pytest.fixture
def api(client, workspace):
    return Api(client, workspace.headers)


def member_api(api, client, name):
    user = api.post("/v1/users", {"name": name, "email": f"{name.lower()}@example.com", "is_staff": True,
                                  "role": "member", "password": "correct horse battery"})["id"]
    key = api.post("/v1/api-keys", {"name": "k", "user_id": user})["key"]
    return user, Api(client, {"Authorization": "Bearer " + key})


@pytest.fixture
def world(api):
    api.patch("/v1/billing/settings", SETTINGS)
    customer = api.post("/v1/customers", {"name": "Fibre Home", "email": "home@example.com"})["id"]
    api.post("/v1/products", {"code": "install", "name": "Installation", "kind": "one_time_service", "unit": "each"})
    api.post("/v1/products", {"code": "router", "name": "Router", "kind": "physical_good", "unit": "each"})
    plan = api.post("/v1/price-plans", {"code": "aud", "name": "AUD", "currency": "AUD", "is_default": True})["id"]
    api.client.put(f"/v1/price-plans/{plan}/prices", json={"product": "install", "unit_price": 12000},
                   headers=api.headers)
    account = api.post("/v1/accounts", {"customer_id": customer, "name": "Home"})["id"]
    itype = api.post("/v1/activity-types", {"code": "installation", "name": "Installation",
                                            "services": ["install"]})
    api.post("/v1/activity-types", {"code": "visit", "name": "Visit"})
    office = api.post("/v1/offices", {"name": "Field team office"})["id"]
    return {"customer": customer, "account": account, "type": itype, "office": office}


def test_schedule_start_complete_bills_once(api, world, db, workspace):
    assert world["type"]["services"] == ["install"]
    act = api.post("/v1/activities", {"customer_id": world["customer"], "type": "installation", "starts_at": START,
                                      "expected_completion_at": "2027-03-02T17:00:00Z",
                                      "unit": {"kind": "office", "id": world["office"]}}, key="sched-1")
    assert act["status"] == "open" and act["contact"] == {"name": "Fibre Home", "phone": None,
                                                          "email": "home@example.com"}
    assert [(s["product"], s["quantity"]) for s in act["services"]] == [("install", "1")]
    assert api.post("/v1/activities", {"customer_id": world["customer"], "type": "installation", "starts_at": START,
                                       "expected_completion_at": "2027-03-02T17:00:00Z",
                                       "unit": {"kind": "office", "id": world["office"]}},
                    status=201, key="sched-1")["id"] == act["id"]  # a retry schedules nothing more
    assert len(api.get(f"/v1/activities?customer_id={world['customer']}")["data"]) == 1
    api.post(f"/v1/activities/{act['id']}/start", status=200)
    assert api.post(f"/v1/activities/{act['id']}/start", status=409)["code"] == "invalid_transition"
    done = api.post(f"/v1/activities/{act['id']}/complete", status=200, key="done-1")
    assert done["status"] == "completed" and done["invoice_id"]
    assert api.post(f"/v1/activities/{act['id']}/complete", status=200, key="done-1") == done  # replayed
    invoice = api.get(f"/v1/invoices/{done['invoice_id']}")
    assert (invoice["status"], invoice["account_id"], invoice["total"]) == ("posted", world["account"], 12000)
    assert len(api.get(f"/v1/invoices?account_id={world['account']}")["data"]) == 1
    assert [e.action for e in audit_rows(db, workspace.id, object_id=act["id"])] == [
        "activity.create", "activity.start", "activity.complete"]
    assert api.patch(f"/v1/activities/{act['id']}", {"details": "x"}, status=409)["code"] == "activity_final"
    assert api.post(f"/v1/activities/{act['id']}/cancel", {}, status=409)["code"] == "invalid_transition"


def test_refusals_with_their_codes(api, world, client):
    other = api.post("/v1/customers", {"name": "Someone else"})["id"]
    inv = api.post("/v1/invoices", {"account_id": world["account"], "lines": [{"product": "install",
                                                                              "quantity": 1}]})["id"]
    base = {"customer_id": other, "type": "visit", "starts_at": START}
    assert api.post("/v1/activities", {**base, "link": {"kind": "invoice", "id": inv}},
                    status=422)["code"] == "link_not_of_customer"
    assert api.post("/v1/activities", {**base, "account_id": world["account"]},
                    status=422)["code"] == "account_not_of_customer"
    assert api.post("/v1/activities", {**base, "services": [{"product": "router"}]},
                    status=422)["code"] == "not_a_service"
    assert api.post("/v1/activities", {**base, "expected_completion_at": "2027-02-01T00:00:00Z"},
                    status=422)["code"] == "invalid_dates"
    assert api.post("/v1/activities", {**base, "status": "completed"}, status=422)["code"] == "unknown_field"
    assert api.post("/v1/activities", {**base, "type": "nope"}, status=404)["code"] == "not_found"
    assert api.get(f"/v1/activities?customer_id={other}")["data"] == []
    # No account: the completion is refused and the activity stays in progress.
    act = api.post("/v1/activities", {**base, "type": "installation"})
    api.post(f"/v1/activities/{act['id']}/start", status=200)
    assert api.post(f"/v1/activities/{act['id']}/complete", status=409)["code"] == "no_account"
    assert api.get(f"/v1/activities/{act['id']}")["status"] == "in_progress"
    assert api.patch(f"/v1/activities/{act['id']}", {"services": []}, status=409)["code"] == "activity_not_open"
    assert api.post("/v1/activity-types", {"code": "visit", "name": "Again"}, status=409)["code"] == "code_taken"
    assert api.get("/v1/activities/act_nope", status=404)["code"] == "not_found"


def test_filters_and_who_may(api, world, client):
    worker, worker_api = member_api(api, client, "Worker")
    _, other_api = member_api(api, client, "Bystander")
    team = api.post("/v1/teams", {"name": "Installers"})["id"]
    mine = api.post("/v1/activities", {"customer_id": world["customer"], "type": "installation",
                                       "assignee_user_id": worker, "unit": {"kind": "team", "id": team},
                                       "expected_completion_at": "2020-01-01T00:00:00Z",
                                       "starts_at": "2019-12-31T00:00:00Z"})
    visit = api.post("/v1/activities", {"customer_id": world["customer"], "type": "visit", "starts_at": START,
                                        "expected_completion_at": "2099-01-01T00:00:00Z"})
    ids = lambda path, who=api: [a["id"] for a in who.get(path)["data"]]  # noqa: E731
    assert ids(f"/v1/activities?assignee_user_id={worker}") == [mine["id"]]
    assert ids(f"/v1/activities?unit_id={team}") == [mine["id"]]
    assert ids("/v1/activities?type=visit") == [visit["id"]]
    assert ids("/v1/activities?overdue=true") == [mine["id"]]
    assert ids("/v1/activities?mine=true", worker_api) == [mine["id"]]
    assert ids("/v1/activities?mine=true") == []
    # Members read; only the assignee starts and completes; nobody but managers changes or cancels.
    assert len(other_api.get("/v1/activities")["data"]) == 2
    assert other_api.post(f"/v1/activities/{mine['id']}/start", status=403)["code"] == "not_permitted"
    assert worker_api.patch(f"/v1/activities/{mine['id']}", {"details": "mine"}, status=403)["code"] == \
        "not_permitted"
    assert worker_api.post(f"/v1/activities/{mine['id']}/cancel", status=403)["code"] == "not_permitted"
    assert worker_api.post(f"/v1/activities/{visit['id']}/start", status=403)["code"] == "not_permitted"
    assert worker_api.post("/v1/activity-types", {"code": "x", "name": "X"}, status=403)["code"] == "not_permitted"
    worker_api.post(f"/v1/activities/{mine['id']}/start", status=200)
    assert worker_api.post(f"/v1/activities/{mine['id']}/complete", status=200)["status"] == "completed"
    assert ids("/v1/activities?status=open&status=in_progress") == [visit["id"]]
    assert ids("/v1/activities?overdue=true") == []
    cancelled = api.post(f"/v1/activities/{visit['id']}/cancel", {"reason": "No access"}, status=200)
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "No access")
    updated = api.patch(f"/v1/activity-types/{world['type']['id']}", {"name": "Install", "services": []}, status=200)
    assert (updated["name"], updated["services"]) == ("Install", [])
    assert api.get("/v1/activity-types")["data"][0]["code"] == "installation"
