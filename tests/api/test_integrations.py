"""Packs from CRM deals over the API (issue 16): the HubSpot webhook (signed payloads, one pack per deal,
forged and stale signatures refused with nothing changed, unmapped deals in the review queue, Retry after
mapping), workspaces kept apart, external_ref as a key of POST /v1/packs (and its exact filter), the body
idempotency_key's replays, and the deal import through the same code."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from creditdesk.audit import AuditEvent
from creditdesk.credits.models import Pack
from creditdesk.integrations.models import CrmEvent, CrmReviewItem
from tests.api.test_billing_accounts import Api
from tests.conftest import make_workspace
from tests.integrations.signing import (SECRET, body_of, deal_event, hand_signed, now_ms, signed,
                                        webhook_url)

WEBHOOK = "/v1/integrations/hubspot/webhook"


def setup_crm(api: Api, *, secret: str = SECRET) -> dict:
    """Hours, a credit package of 10 hours (12 months), a customer with an office, the settings, a company
    mapping (5551 -> the customer) and a product mapping (1234 -> the package)."""
    api.post("/v1/credit-types", {"code": "hours", "name": "Hours"})
    api.post("/v1/products", {"code": "consulting", "name": "Consulting", "kind": "service", "unit": "hour"})
    api.post("/v1/products", {"code": "hrs-10", "name": "10 hours", "kind": "credit_package", "unit": "pack",
                              "credit_package": {"credit_type": "hours", "credit_quantity": 10,
                                                 "applicable_product_codes": ["consulting"],
                                                 "expiry": {"kind": "months_after_purchase", "months": 12}}})
    customer = api.post("/v1/customers", {"name": "Acme"})["id"]
    office = api.post("/v1/offices", {"name": "Acme HQ", "customer_id": customer})["id"]
    settings = api.call("PUT", "/v1/integrations/hubspot", {"client_secret": secret, "won_stage": "closedwon",
                                                            "holder_property": "creditdesk_holder"}, status=200)
    assert settings["client_secret_set"] is True and "client_secret" not in settings
    api.post("/v1/integrations/hubspot/mappings", {"kind": "company", "external_id": "5551",
                                                   "holder": {"kind": "customer", "id": customer}})
    api.post("/v1/integrations/hubspot/mappings", {"kind": "product", "external_id": "1234", "product": "hrs-10"})
    return {"customer": customer, "office": office}


@pytest.fixture
def api(client, workspace):
    return Api(client, workspace.headers)


@pytest.fixture
def crm(api):
    return setup_crm(api)


def send(client, workspace_id: str, body: bytes, *, headers: dict | None = None, status: int = 200):
    url = webhook_url(workspace_id)
    r = client.post(url, content=body, headers=headers if headers is not None else signed(body, url))
    assert r.status_code == status, r.text
    return r.json()


def state(db, workspace_id: str) -> dict:
    with db.read() as s:
        return {name: s.scalar(select(func.count()).select_from(model).where(model.workspace_id == workspace_id))
                for name, model in (("packs", Pack), ("events", CrmEvent), ("review", CrmReviewItem),
                                    ("audit", AuditEvent))}


def test_the_same_deal_twice_makes_one_pack(client, api, db, workspace, crm):
    first = send(client, workspace.id, body_of(deal_event(981, event_id=1001)))["events"][0]
    assert first["outcome"] == "pack_created" and first["external_ref"] == "hubspot:deal:981"
    pack = api.get(f"/v1/packs/{first['pack_id']}")
    assert (pack["holder"], pack["quantity"], pack["source"], pack["external_ref"]) == (
        {"kind": "customer", "id": crm["customer"]}, 10, "crm_deal", "hubspot:deal:981")
    assert (pack["price_paid"], pack["currency"], pack["is_paid"]) == (120000, "GBP", True)
    # The package's 12 months from the close date: to the end of that day (the workspace's zone, UTC here).
    assert pack["expires_at"].startswith("2028-01-15T23:59:59")
    # Another delivery of the deal (a new event id), and the same event again.
    again = send(client, workspace.id, body_of(deal_event(981, event_id=1002)))["events"][0]
    assert (again["outcome"], again["pack_id"]) == ("pack_exists", first["pack_id"])
    dup = send(client, workspace.id, body_of(deal_event(981, event_id=1001)))["events"][0]
    assert (dup["outcome"], dup["pack_id"]) == ("duplicate_event", first["pack_id"])
    listed = api.get("/v1/packs?external_ref=hubspot:deal:981")["data"]
    assert [p["id"] for p in listed] == [first["pack_id"]]
    # Two line items of the package: 2 x 10 + 1 x 10 hours, one pack.
    lines = [{"id": "a", "productId": "1234", "quantity": 2}, {"id": "b", "productId": "1234", "quantity": "1"}]
    made = send(client, workspace.id, body_of(deal_event(982, event_id=1003, lines=lines)))["events"][0]
    assert api.get(f"/v1/packs/{made['pack_id']}")["quantity"] == 30


def test_external_ref_filter_is_exact(client, api, workspace, crm):
    for deal, event in ((981, 1), (9810, 2)):
        send(client, workspace.id, body_of(deal_event(deal, event_id=event)))
    exact = api.get("/v1/packs?external_ref=hubspot:deal:981")["data"]
    assert [p["external_ref"] for p in exact] == ["hubspot:deal:981"]
    assert api.get("/v1/packs?external_ref=hubspot:deal:98")["data"] == []
    assert len(api.get("/v1/packs?q=hubspot:deal:981")["data"]) == 2  # q stays a substring search


def test_a_hand_made_hmac_is_accepted_and_forged_or_stale_ones_change_nothing(client, db, workspace, crm):
    url = webhook_url(workspace.id)
    body = body_of(deal_event(981, event_id=1))
    before = state(db, workspace.id)
    refusals = [
        (signed(body, url, secret="not-the-secret-at-all"), "invalid_signature"),
        (signed(body_of(deal_event(981, event_id=1, lines=[{"productId": "1234", "quantity": 50}])), url),
         "invalid_signature"),  # another body under this signature
        (signed(body, url.replace("testserver", "evil.example")), "invalid_signature"),  # another URI
        ({**signed(body, url), "X-HubSpot-Signature-v3": ""}, "invalid_signature"),
        ({"Content-Type": "application/json"}, "invalid_signature"),
        (signed(body, url, timestamp=str(int(now_ms()) - 6 * 60 * 1000)), "stale_signature"),
        (signed(body, url, timestamp=str(int(now_ms()) + 6 * 60 * 1000)), "stale_signature"),
        (hand_signed(body, url, secret="not-the-secret-at-all"), "invalid_signature"),
    ]
    for headers, code in refusals:
        answer = send(client, workspace.id, body, headers=headers, status=401)
        assert answer["code"] == code, answer
    # An unknown workspace, and none, answer like a bad signature.
    for target in ("ws_nosuchworkspace", ""):
        r = client.post(webhook_url(target), content=body, headers=signed(body, webhook_url(target)))
        assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    assert state(db, workspace.id) == before
    # The signature computed by hand from HubSpot's description (not with the helper) is the real check.
    made = send(client, workspace.id, body, headers=hand_signed(body, url))["events"][0]
    assert made["outcome"] == "pack_created"
    assert state(db, workspace.id)["packs"] == before["packs"] + 1


def test_an_unmapped_deal_waits_in_the_review_queue_then_retry_makes_its_pack(client, api, db, workspace, crm):
    unknown = send(client, workspace.id, body_of(deal_event(555, event_id=1, company="7777")))["events"][0]
    assert (unknown["outcome"], unknown["reason"]) == ("review", "unknown_company")
    queue = api.get("/v1/integrations/review-queue?status=open")["data"]
    assert [(i["deal_id"], i["reason"], i["external_ref"]) for i in queue] == [
        ("555", "unknown_company", "hubspot:deal:555")]
    item = queue[0]["id"]
    assert api.get("/v1/packs?external_ref=hubspot:deal:555")["data"] == []
    # Retry before mapping: still unmapped, said so, nothing changed.
    before = state(db, workspace.id)
    assert api.post(f"/v1/integrations/review-queue/{item}/retry", status=409)["code"] == "deal_not_mappable"
    assert state(db, workspace.id) == before
    api.post("/v1/integrations/hubspot/mappings", {"kind": "company", "external_id": "7777",
                                                   "holder": {"kind": "office", "id": crm["office"]}})
    resolved = api.post(f"/v1/integrations/review-queue/{item}/retry", status=200)
    assert resolved["status"] == "resolved" and resolved["pack_id"]
    pack = api.get(f"/v1/packs/{resolved['pack_id']}")
    assert (pack["holder"], pack["external_ref"]) == ({"kind": "office", "id": crm["office"]}, "hubspot:deal:555")
    assert api.get("/v1/integrations/review-queue?status=open")["data"] == []
    assert api.post(f"/v1/integrations/review-queue/{item}/retry", status=409)["code"] == "review_item_resolved"
    # The deal sent again now: the same pack.
    again = send(client, workspace.id, body_of(deal_event(555, event_id=2, company="7777")))["events"][0]
    assert (again["outcome"], again["pack_id"]) == ("pack_exists", resolved["pack_id"])


def test_unknown_products_other_stages_and_missing_details(client, api, workspace, crm):
    events = send(client, workspace.id, body_of(
        deal_event(1, event_id=1, lines=[{"productId": "9999", "quantity": 1}]),
        deal_event(2, event_id=2, stage="appointmentscheduled"),
        deal_event(3, event_id=3, details=False),
        {"eventId": 4, "subscriptionType": "contact.creation", "objectId": 12},
    ))["events"]
    assert [(e["outcome"], e["reason"]) for e in events] == [
        ("review", "unknown_product"), ("ignored", None), ("review", "deal_details_missing"), ("ignored", None)]
    reasons = {i["deal_id"]: i["reason"] for i in api.get("/v1/integrations/review-queue")["data"]}
    assert reasons == {"1": "unknown_product", "3": "deal_details_missing"}
    # A SKU mapping for the line, then Dismiss for the other.
    api.post("/v1/integrations/hubspot/mappings", {"kind": "sku", "external_id": "HRS-99", "product": "hrs-10"})
    items = {i["deal_id"]: i["id"] for i in api.get("/v1/integrations/review-queue")["data"]}
    dismissed = api.post(f"/v1/integrations/review-queue/{items['3']}/dismiss", {"reason": "granted by hand"},
                         status=200)
    assert (dismissed["status"], dismissed["dismiss_reason"]) == ("dismissed", "granted by hand")
    assert api.post(f"/v1/integrations/review-queue/{items['1']}/retry", status=409)["code"] == "deal_not_mappable"
    assert api.get("/v1/packs?external_ref=hubspot:deal:2")["data"] == []


def test_a_deal_changed_after_its_pack_goes_to_review_naming_the_pack(client, api, workspace, crm):
    first = send(client, workspace.id, body_of(deal_event(77, event_id=1)))["events"][0]
    changed = send(client, workspace.id, body_of(deal_event(77, event_id=2, lines=[
        {"productId": "1234", "quantity": 3}])))["events"][0]
    assert (changed["outcome"], changed["reason"], changed["pack_id"]) == ("review", "deal_changed", first["pack_id"])
    assert first["pack_id"] in changed["message"]
    assert len(api.get("/v1/packs?external_ref=hubspot:deal:77")["data"]) == 1


def test_a_webhook_of_workspace_a_never_touches_workspace_b(client, api, db, workspace, crm):
    other = make_workspace(db, name="Other CRM workspace")
    b = Api(client, other.headers)
    b_crm = setup_crm(b, secret="workspace-b-secret-5678")
    before_b = state(db, other.id)
    # A's secret, B's URL: refused.
    body = body_of(deal_event(1, event_id=1))
    a_signed_for_b = signed(body, webhook_url(other.id))
    assert send(client, other.id, body, headers=a_signed_for_b, status=401)["code"] == "invalid_signature"
    # A's URL, A's secret, a deal naming B's office and customer: A's review queue, nothing of B.
    for event_id, holder in ((2, b_crm["office"]), (3, b_crm["customer"])):
        answer = send(client, workspace.id, body_of(deal_event(
            100 + event_id, event_id=event_id, properties={"creditdesk_holder": holder})))["events"][0]
        assert (answer["outcome"], answer["reason"]) == ("review", "unknown_holder")
    # The import naming B's office as the holder: A's review queue too.
    imported = api.post("/v1/deals/import", {"deals": [{"id": "x-1", "holder": {"kind": "office", "id": b_crm["office"]},
                                                        "line_items": [{"product_id": "1234"}]}]}, status=200)
    assert (imported["review"], imported["deals"][0]["reason"]) == (1, "unknown_holder")
    # B's company id 5551 maps to B's customer in B only: in A it is A's mapping.
    made = send(client, workspace.id, body_of(deal_event(200, event_id=4)))["events"][0]
    assert api.get(f"/v1/packs/{made['pack_id']}")["holder"]["id"] == crm["customer"]
    assert state(db, other.id) == before_b
    assert b.get("/v1/integrations/review-queue")["data"] == []
    # A's mappings naming B's objects are refused.
    refused = api.post("/v1/integrations/hubspot/mappings", {"kind": "company", "external_id": "x",
                                                             "holder": {"kind": "office", "id": b_crm["office"]}},
                       status=404)
    assert refused["code"] == "not_found"


def test_external_ref_is_a_key_of_pack_grants(api, crm):
    grant = {"holder": {"kind": "customer", "id": crm["customer"]}, "credit_type": "hours", "quantity": 5,
             "name": "Deal 981", "source": "crm_deal", "external_ref": "deal-981"}
    r = api.client.post("/v1/packs", json={**grant, "idempotency_key": "k1"}, headers=api.headers)
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    first = r.json()
    # The same grant under another key, or none: the same pack, said to be a replay.
    for key in ("k2", None):
        again = api.client.post("/v1/packs", json={**grant, "idempotency_key": key}, headers=api.headers)
        assert (again.status_code, again.json()["id"], again.headers.get("Idempotent-Replayed")) == (
            201, first["id"], "true")
    # Another grant for the ref: 409 naming the pack, whatever the key.
    taken = api.post("/v1/packs", {**grant, "quantity": 6, "idempotency_key": "k3"}, status=409)
    assert (taken["code"], taken["pack_id"], taken["fields"]) == ("external_ref_taken", first["id"], ["quantity"])
    # Another source, or a ref that only starts the same: other packs.
    assert api.post("/v1/packs", {**grant, "source": "manual"})["id"] != first["id"]
    assert api.post("/v1/packs", {**grant, "external_ref": "deal-9810"})["id"] != first["id"]
    assert len(api.get("/v1/packs?external_ref=deal-981")["data"]) == 2


def test_the_body_idempotency_key_follows_the_header_rules(api, crm):
    grant = {"holder": {"kind": "customer", "id": crm["customer"]}, "credit_type": "hours", "quantity": 5,
             "name": "Keyed", "idempotency_key": "body-key-1"}
    first = api.client.post("/v1/packs", json=grant, headers=api.headers)
    replay = api.client.post("/v1/packs", json=grant, headers=api.headers)
    assert replay.status_code == first.status_code == 201
    assert replay.json() == first.json() and replay.headers.get("Idempotent-Replayed") == "true"
    conflict = api.post("/v1/packs", {**grant, "quantity": 7}, status=409)
    assert (conflict["code"], conflict["pack_id"]) == ("idempotency_key_conflict", first.json()["id"])
    assert "body-key-1" in conflict["detail"]


def test_deal_import_goes_through_the_same_code(client, api, workspace, crm):
    send(client, workspace.id, body_of(deal_event(981, event_id=1)))
    csv_text = ("crm,deal_id,name,amount,currency,closed_at,company_id,holder_kind,holder_id,product_id,sku,quantity\n"
                "hubspot,981,Deal 981,1200.00,GBP,2027-01-15T10:00:00Z,5551,,,1234,HRS-10,1\n"
                f",A-1,Spreadsheet deal,50.00,GBP,2027-02-01,,office,{crm['office']},1234,,2\n"
                ",A-1,,,,,,,,1234,,1\n"
                ",A-2,Unknown company,,,,8888,,,1234,,1\n"
                ",A-3,Bad quantity,,,,5551,,,1234,,1.5\n")
    result = api.post("/v1/deals/import", {"csv": csv_text}, status=200)
    assert (result["created"], result["existing"], result["review"], result["errors"]) == (1, 1, 1, 1)
    by_deal = {d["deal_id"]: d for d in result["deals"]}
    assert by_deal["981"]["outcome"] == "pack_exists"  # the webhook's pack, not a second one
    assert (by_deal["A-1"]["outcome"], by_deal["A-1"]["external_ref"]) == ("pack_created", "import:deal:A-1")
    assert api.get(f"/v1/packs/{by_deal['A-1']['pack_id']}")["quantity"] == 30
    assert (by_deal["A-2"]["reason"], by_deal["A-3"]["outcome"], by_deal["A-3"]["line"]) == (
        "unknown_company", "error", 6)
    # JSON, the same deal again: nothing twice.
    again = api.post("/v1/deals/import", {"deals": [{"id": "A-1", "name": "Spreadsheet deal", "amount": "50.00",
                                                     "currency": "GBP", "closed_at": "2027-02-01",
                                                     "holder": {"kind": "office", "id": crm["office"]},
                                                     "line_items": [{"product_id": "1234", "quantity": 2},
                                                                    {"product_id": "1234"}]}]},
                     status=200)
    assert (again["existing"], again["deals"][0]["pack_id"]) == (1, by_deal["A-1"]["pack_id"])
    assert api.post("/v1/deals/import", {"deals": [], "csv": "deal_id\n"}, status=422)["code"] == "deals_or_csv"


def test_settings_and_mappings(api, workspace):
    assert api.get("/v1/integrations/hubspot")["configured"] is False
    refused = api.call("PUT", "/v1/integrations/hubspot", {"won_stage": "won"}, status=422)
    assert refused["code"] == "client_secret_required"
    crm = setup_crm(api)
    # The secret is kept when omitted, and never shown (nor in the audit log).
    api.call("PUT", "/v1/integrations/hubspot", {"won_stage": "contractsigned"}, status=200)
    settings = api.get("/v1/integrations/hubspot")
    assert (settings["won_stage"], settings["client_secret_set"]) == ("contractsigned", True)
    assert SECRET not in json.dumps(api.get("/v1/audit-events?limit=500"))
    mappings = api.get("/v1/integrations/hubspot/mappings")["data"]
    assert {(m["kind"], m["external_id"]) for m in mappings} == {("company", "5551"), ("product", "1234")}
    dup = api.post("/v1/integrations/hubspot/mappings", {"kind": "product", "external_id": "1234",
                                                         "product": "hrs-10"}, status=409)
    assert dup["code"] == "mapping_exists"
    api.post("/v1/products", {"code": "svc", "name": "Service", "kind": "service", "unit": "each"})
    bad = api.post("/v1/integrations/hubspot/mappings", {"kind": "sku", "external_id": "S", "product": "svc"},
                   status=422)
    assert bad["code"] == "not_a_credit_package"
    company = next(m for m in mappings if m["kind"] == "company")
    moved = api.patch(f"/v1/integrations/hubspot/mappings/{company['id']}",
                      {"holder": {"kind": "office", "id": crm["office"]}})
    assert moved["holder"] == {"kind": "office", "id": crm["office"]}
    api.call("DELETE", f"/v1/integrations/hubspot/mappings/{company['id']}", status=200)
    assert api.get(f"/v1/integrations/hubspot/mappings/{company['id']}", status=404)["code"] == "not_found"
