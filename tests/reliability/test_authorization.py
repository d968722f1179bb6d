"""Authorization matrix over HTTP: keys of workspace A, of every role, against the objects of workspace B.

Every endpoint that takes an id is found in /openapi.json (a new one without an entry here fails the
test, so it cannot be forgotten). For each caller of A (master, manager, a member holding every
permission, a member holding none):

- reads, writes and deletes of B's objects by id answer exactly as for an id that never existed
  (same status and code: no existence oracle) and never show anything of B;
- every list, search and export of A, filtered by B's ids or searched for B's names, shows nothing of B;
- requests of A that name B's objects in their body (holder, context, office, user, pack, ...) fail;
- and afterwards nothing of B changed: audit events, party rows, ledger transfers, balances and every
  object as B reads it. Within A, members without manage_packs cannot change another office's packs.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest
from sqlalchemy import func, select

from creditdesk.ids import new_id
from creditdesk.ledger.models import LedgerTransfer
from tests.api.helpers import counts
from tests.conftest import make_workspace
from tests.reliability import summary

MARK = "SECRETB"
B_CT = "secretb"
ACT_START = "2027-01-01T09:00:00Z"
PERMISSIONS = ["send_sms", "manage_office_credits", "manage_packs", "consume_credits", "manage_users"]

# A valid body for every write that takes an id, so that a refusal is about the id, not the body.
WRITE_BODIES = {
    ("PATCH", "/v1/customers/{customer_id}"): {"name": "Stolen"},
    ("PATCH", "/v1/offices/{office_id}"): {"name": "Stolen"},
    ("PATCH", "/v1/users/{user_id}"): {"name": "Stolen"},
    ("PATCH", "/v1/teams/{team_id}"): {"name": "Stolen"},
    ("PATCH", "/v1/api-keys/{key_id}"): {"name": "Stolen"},
    ("DELETE", "/v1/api-keys/{key_id}"): None,
    ("PATCH", "/v1/credit-types/{code}"): {"name": "Stolen"},
    ("PATCH", "/v1/packs/{pack_id}"): {"status_label": "Stolen"},
    ("POST", "/v1/packs/{pack_id}/change-holder"): {"holder": {"kind": "office", "id": "{a_office}"}},
    ("POST", "/v1/packs/{pack_id}/void"): {"reason": "Stolen"},
    ("PATCH", "/v1/projects/{project_id}"): {"name": "Stolen"},
    ("POST", "/v1/consumptions/{consumption_id}/reverse"): {"reason": "Stolen"},
    ("POST", "/v1/holds/{hold_id}/capture"): {},
    ("POST", "/v1/holds/{hold_id}/release"): None,
    ("POST", "/v1/holds/{hold_id}/reverse"): {"reason": "Stolen"},
    ("POST", "/v1/sms/purchases/{purchase_id}/payment"): {"status": "paid", "reference": "Stolen"},
    # the catalogue
    ("PATCH", "/v1/product-types/{type_id}"): {"name": "Stolen"},
    ("PATCH", "/v1/product-families/{family_id}"): {"name": "Stolen"},
    ("PATCH", "/v1/tax-classes/{class_id}"): {"name": "Stolen"},
    ("PATCH", "/v1/tax-rates/{rate_id}"): {"rate_bp": 0},
    ("PATCH", "/v1/products/{product}"): {"name": "Stolen"},
    ("PATCH", "/v1/price-plans/{plan_id}"): {"name": "Stolen"},
    ("PUT", "/v1/price-plans/{plan_id}/prices"): {"product": "{a_product}", "unit_price": 1},
    # billing accounts
    ("POST", "/v1/customers/{customer_id}/addresses"): {"line1": "Stolen", "city": "X", "country": "AU"},
    ("PATCH", "/v1/customers/{customer_id}/addresses/{address_id}"): {"city": "Stolen"},
    ("PATCH", "/v1/accounts/{account_id}"): {"name": "Stolen"},
    # invoices, credit notes, payments
    ("PATCH", "/v1/invoices/{invoice_id}"): {"notes": "Stolen"},
    ("POST", "/v1/invoices/{invoice_id}/lines"): {"product": "{a_product}", "quantity": 1, "unit_price": 1},
    ("PATCH", "/v1/invoices/{invoice_id}/lines/{line_id}"): {"quantity": 2},
    ("DELETE", "/v1/invoices/{invoice_id}/lines/{line_id}"): None,
    ("POST", "/v1/invoices/{invoice_id}/lines/{line_id}/credits"): {
        "context": {"kind": "customer", "id": "{a_customer}"}, "credit_type": "unit", "quantity": 1},
    ("DELETE", "/v1/invoices/{invoice_id}/lines/{line_id}/credits"): None,
    ("POST", "/v1/invoices/{invoice_id}/post"): None,
    ("POST", "/v1/invoices/{invoice_id}/void"): None,
    ("POST", "/v1/invoices/{invoice_id}/credit-notes"): {"full": True},
    ("POST", "/v1/payments/{payment_id}/allocate"): {},
    ("POST", "/v1/accounts/{account_id}/credit/apply"): {},
    ("POST", "/v1/accounts/{account_id}/credit/refunds"): {"amount": 1, "reason": "Stolen"},
    # credit control
    ("PATCH", "/v1/credit-ratings/{rating_id}"): {"name": "Stolen"},
    ("PATCH", "/v1/override-rules/{rule_id}"): {"name": "Stolen"},
    ("POST", "/v1/accounts/{account_id}/credit-terms"): {"credit_limit": 1},
    ("POST", "/v1/accounts/{account_id}/suspend"): {"reason": "dispute"},
    ("POST", "/v1/accounts/{account_id}/reactivate"): None,
    ("POST", "/v1/accounts/{account_id}/terminate"): None,
    ("POST", "/v1/accounts/{account_id}/write-off"): {"reason": "Stolen"},
    # group accounts and pricing agreements
    ("POST", "/v1/accounts/{account_id}/members"): {"member_id": "{a_account}", "funding": {"scope": "full"}},
    ("DELETE", "/v1/accounts/{account_id}/members/{member_id}"): None,
    ("POST", "/v1/accounts/{account_id}/pricing-agreement"): {"price_plan_id": "{a_plan}"},
    # credit packages (issue 13)
    ("POST", "/v1/products/{product}/grant"): {"holder": {"kind": "customer", "id": "{a_customer}"}},
    ("POST", "/v1/packs/{pack_id}/package-edit"): {"notes": "Stolen"},
    # wallets and payment preferences (seed 004)
    ("POST", "/v1/accounts/{account_id}/wallet"): None,
    ("POST", "/v1/accounts/{account_id}/wallet/top-ups"): {"amount": 1},
    ("POST", "/v1/accounts/{account_id}/wallet/refunds"): {"amount": 1, "reason": "Stolen"},
    ("POST", "/v1/invoices/{invoice_id}/pay-from-wallet"): {},
    ("PATCH", "/v1/payment-preferences/{preference_id}"): {"active": False},
    ("POST", "/v1/payment-preferences/{preference_id}/cards"): {"card_token": "pm_card_visa"},
    ("POST", "/v1/payment-preferences/{preference_id}/cards/{card_id}/remove"): None,
    # subscriptions and bills (seed 002)
    ("POST", "/v1/subscriptions/{subscription_id}/activate"): {},
    ("POST", "/v1/subscriptions/{subscription_id}/services"): {"product": "{a_product}"},
    ("POST", "/v1/subscriptions/{subscription_id}/remove-services"): {"service_id": "{a_product}"},
    ("POST", "/v1/subscriptions/{subscription_id}/change-quantity"): {"service_id": "{a_product}", "quantity": 9},
    ("POST", "/v1/subscriptions/{subscription_id}/suspend"): {},
    ("POST", "/v1/subscriptions/{subscription_id}/resume"): {},
    ("POST", "/v1/subscriptions/{subscription_id}/terminate"): {},
    ("POST", "/v1/subscriptions/{subscription_id}/bill-preview"): {"as_of": "2030-01-01"},
    ("POST", "/v1/subscriptions/{subscription_id}/bill"): {"as_of": "2030-01-01"},
    # low-balance thresholds (issue 16)
    ("DELETE", "/v1/balance-thresholds/{threshold_id}"): None,
    # activities (seed 002)
    ("PATCH", "/v1/activity-types/{activity_type_id}"): {"name": "Stolen"},
    ("PATCH", "/v1/activities/{activity_id}"): {"details": "Stolen"},
    ("POST", "/v1/activities/{activity_id}/start"): None,
    ("POST", "/v1/activities/{activity_id}/complete"): None,
    ("POST", "/v1/activities/{activity_id}/cancel"): {"reason": "Stolen"},
    # bill communications (seed 002)
    ("PATCH", "/v1/communication-templates/{template_id}"): {"name": "Stolen"},
    ("DELETE", "/v1/communication-templates/{template_id}"): None,
    ("POST", "/v1/invoices/{invoice_id}/communicate"): {"to": "stolen@example.com", "subject": "Stolen",
                                                        "body": "Stolen"},
    # packs from CRM deals (issue 16)
    ("PATCH", "/v1/integrations/hubspot/mappings/{mapping_id}"): {"note": "Stolen"},
    ("DELETE", "/v1/integrations/hubspot/mappings/{mapping_id}"): None,
    ("POST", "/v1/integrations/review-queue/{item_id}/retry"): None,
    ("POST", "/v1/integrations/review-queue/{item_id}/dismiss"): {"reason": "Stolen"},
    # outbound webhooks (issue 16)
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): {"description": "Stolen", "enabled": False},
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"): None,
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): None,
    ("POST", "/v1/webhook-deliveries/{delivery_id}/replay"): None,
}
# Which of B's objects an id parameter names (a captured hold for reverse, a pending one otherwise).
PARAM_OBJECT = {"customer_id": "customer", "office_id": "office", "user_id": "user", "team_id": "team",
                "key_id": "api_key", "code": "credit_type", "pack_id": "pack", "project_id": "project",
                "consumption_id": "consumption", "hold_id": "hold", "transfer_id": "transfer",
                "purchase_id": "sms_purchase", "message_id": "message",
                "type_id": "product_type", "family_id": "product_family", "class_id": "tax_class",
                "rate_id": "tax_rate", "product": "product", "plan_id": "price_plan",
                "address_id": "address", "account_id": "account", "invoice_id": "invoice",
                "line_id": "invoice_line", "payment_id": "payment", "rating_id": "credit_rating",
                "rule_id": "override_rule", "member_id": "account", "asset_id": "asset",
                "preference_id": "payment_preference", "card_id": "payment_card", "charge_id": "gateway_charge",
                "subscription_id": "subscription", "run_id": "billing_run", "threshold_id": "balance_threshold",
                "activity_type_id": "activity_type", "activity_id": "activity",
                "template_id": "communication_template", "communication_id": "communication",
                "mapping_id": "crm_mapping", "item_id": "crm_review_item",
                "endpoint_id": "webhook_endpoint", "delivery_id": "webhook_delivery"}
FAKE_PREFIX = {"customer": "cus", "office": "off", "user": "usr", "team": "team", "api_key": "key", "pack": "pack",
               "project": "prj", "consumption": "con", "hold": "hold", "captured_hold": "hold", "transfer": "xfer",
               "sms_purchase": "smsp", "message": "msg", "product_type": "ptyp", "product_family": "pfam",
               "tax_class": "taxc", "tax_rate": "taxr", "product": "prod", "price_plan": "plan",
               "address": "adr", "account": "acc", "invoice": "inv", "invoice_line": "inl", "payment": "pay",
               "credit_rating": "crat", "override_rule": "ovr", "asset": "ast",
               "payment_preference": "ppref", "payment_card": "card", "gateway_charge": "gch",
               "subscription": "sub", "billing_run": "brun", "balance_threshold": "thr",
               "activity_type": "atyp", "activity": "act",
               "communication_template": "ctpl", "communication": "comm",
               "crm_mapping": "crmm", "crm_review_item": "crmr",
               "webhook_endpoint": "whep", "webhook_delivery": "whd"}
KIND_OF_PREFIX = {"off": "office", "usr": "user", "cus": "customer", "prj": "project"}
# Query parameters that search or filter by text: searched for B's names and codes.
TEXT_PARAMS = {"q", "status_label", "action", "reference_id", "reference_kind", "credit_type", "object_type",
               "product_code", "type", "family", "tax_class"}


def _ok(r: httpx.Response, *expected: int) -> dict:
    assert r.status_code in expected, f"{r.request.method} {r.request.url} -> {r.status_code} {r.text}"
    return r.json()


class Api:
    def __init__(self, base_url: str, key: str):
        self.client = httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {key}"})

    def post(self, path, body=None):
        return _ok(self.client.post(path, json=body), 200, 201, 202)

    def get(self, path, **params):
        return _ok(self.client.get(path, params=params), 200)


@pytest.fixture(scope="module")
def world(db, live_server):
    """Workspace A with a caller of every role, workspace B with one object of every kind."""
    a, b = make_workspace(db, name="Matrix A"), make_workspace(db, name=f"Matrix B {MARK}")
    base = live_server.base_url
    am = Api(base, a.api_key)
    am.post("/v1/credit-types", {"code": "unit", "name": "Units"})
    a_office = am.post("/v1/offices", {"name": "A office 1"})["id"]
    a_office2 = am.post("/v1/offices", {"name": "A office 2"})["id"]
    a_pack = am.post("/v1/packs", {"holder": {"kind": "office", "id": a_office}, "credit_type": "unit",
                                   "quantity": 50, "name": "A pack"})["id"]
    a_pack2 = am.post("/v1/packs", {"holder": {"kind": "office", "id": a_office2}, "credit_type": "unit",
                                    "quantity": 50, "name": "A office 2 pack"})["id"]
    a_team = am.post("/v1/teams", {"name": "A team", "office_id": a_office})["id"]
    callers = {"master": a.api_key}
    for role, perms in (("manager", PERMISSIONS), ("member+all", PERMISSIONS), ("member", [])):
        user = am.post("/v1/users", {"name": f"A {role}", "role": role.split("+")[0], "permissions": perms,
                                     "is_staff": True, "email": f"{role.replace('+', '.')}@example.com",
                                     "primary_office_id": a_office})["id"]
        callers[role] = am.post("/v1/api-keys", {"name": role, "user_id": user})["key"]
    consumer = am.post("/v1/users", {"name": "A consumer", "permissions": ["consume_credits"], "is_staff": True,
                                     "email": "consumer@example.com", "primary_office_id": a_office})["id"]
    callers["member+consume"] = am.post("/v1/api-keys", {"name": "consumer", "user_id": consumer})["key"]

    bm = Api(base, b.api_key)
    bm.post("/v1/credit-types", {"code": B_CT, "name": f"{MARK} units"})
    objs = {"credit_type": B_CT}
    objs["customer"] = bm.post("/v1/customers", {"name": f"{MARK} customer", "email": "secretb@example.com"})["id"]
    objs["office"] = bm.post("/v1/offices", {"name": f"{MARK} office", "customer_id": objs["customer"]})["id"]
    objs["office2"] = bm.post("/v1/offices", {"name": f"{MARK} office 2"})["id"]
    objs["user"] = bm.post("/v1/users", {"name": f"{MARK} user", "email": "secretb.user@example.com",
                                         "is_staff": True, "primary_office_id": objs["office"]})["id"]
    objs["team"] = bm.post("/v1/teams", {"name": f"{MARK} team", "member_ids": [objs["user"]]})["id"]
    objs["api_key"] = bm.post("/v1/api-keys", {"name": f"{MARK} key", "user_id": objs["user"]})["id"]
    objs["pack"] = bm.post("/v1/packs", {"holder": {"kind": "office", "id": objs["office"]}, "credit_type": B_CT,
                                         "quantity": 1000, "name": f"{MARK} pack", "notes": MARK})["id"]
    objs["user_pack"] = bm.post("/v1/packs", {"holder": {"kind": "user", "id": objs["user"]}, "credit_type": B_CT,
                                              "quantity": 100, "name": f"{MARK} user pack"})["id"]
    objs["project"] = bm.post("/v1/projects", {"name": f"{MARK} project", "office_id": objs["office"],
                                               "contact_ids": [objs["user"]]})["id"]
    ctx = {"kind": "office", "id": objs["office"]}
    objs["consumption"] = bm.post("/v1/consumptions", {"context": ctx, "credit_type": B_CT, "amount": 5,
                                                       "reference": {"kind": "invoice", "id": MARK}})["id"]
    objs["hold"] = bm.post("/v1/holds", {"context": ctx, "credit_type": B_CT, "amount": 7})["id"]
    objs["captured_hold"] = bm.post("/v1/holds", {"context": ctx, "credit_type": B_CT, "amount": 3})["id"]
    bm.post(f"/v1/holds/{objs['captured_hold']}/capture", {})
    objs["transfer"] = bm.post("/v1/transfers", {"from": ctx, "to": {"kind": "office", "id": objs["office2"]},
                                                 "credit_type": B_CT, "amount": 11, "memo": MARK})["id"]
    objs["sms_purchase"] = bm.post("/v1/sms/purchases", {
        "for": {"kind": "user", "id": b.master_id}, "quantity": 20,
        "billing": {"name": f"{MARK} buyer", "address": MARK, "email": "secretb.buyer@example.com"}})["id"]
    objs["message"] = bm.post("/v1/messages", {"to": "+61400000000", "body": f"{MARK} message"})["id"]
    # The catalogue: B's codes are B_CT, so A's filters and bodies can name them.
    objs["product_type"] = bm.post("/v1/product-types", {"code": B_CT, "name": f"{MARK} type", "kind": "service"})["id"]
    objs["product_family"] = bm.post("/v1/product-families", {"code": B_CT, "name": f"{MARK} family"})["id"]
    objs["tax_class"] = bm.post("/v1/tax-classes", {"code": B_CT, "name": f"{MARK} tax"})["id"]
    objs["tax_rate"] = bm.post("/v1/tax-rates", {"tax_class": B_CT, "rate_bp": 1000, "valid_from": "2020-01-01"})["id"]
    objs["product"] = bm.post("/v1/products", {"code": B_CT, "name": f"{MARK} product", "type": B_CT, "family": B_CT,
                                               "tax_class": B_CT, "unit": "each"})["id"]
    objs["price_plan"] = bm.post("/v1/price-plans", {"code": B_CT, "name": f"{MARK} plan", "currency": "AUD",
                                                     "is_default": True})["id"]
    bm.client.put(f"/v1/price-plans/{objs['price_plan']}/prices", json={"product": B_CT, "unit_price": 4242})
    a_product = am.post("/v1/products", {"code": "a-product", "name": "A product", "kind": "service",
                                         "unit": "each"})["id"]
    a_plan = am.post("/v1/price-plans", {"code": "a-plan", "name": "A plan", "currency": "AUD"})["id"]
    # Billing: both workspaces bill in AUD; B has an address and an account, A a customer of its own.
    for api in (am, bm):
        _ok(api.client.patch("/v1/billing/settings", json={"default_currency": "AUD"}), 200)
    objs["address"] = bm.post(f"/v1/customers/{objs['customer']}/addresses",
                              {"line1": f"{MARK} street", "city": "Sydney", "country": "AU"})["id"]
    objs["account"] = bm.post("/v1/accounts", {"customer_id": objs["customer"], "name": f"{MARK} account",
                                               "billing_address_id": objs["address"]})["id"]
    a_customer = am.post("/v1/customers", {"name": "A customer"})["id"]
    # Invoices: B has a draft with a line, a posted invoice and a payment; A an account and a draft.
    b_invoice = bm.post("/v1/invoices", {"account_id": objs["account"], "notes": MARK,
                                         "lines": [{"product": B_CT, "quantity": 1, "description": MARK}]})
    objs["invoice"], objs["invoice_line"] = b_invoice["id"], b_invoice["lines"][0]["id"]
    objs["posted_invoice"] = bm.post("/v1/invoices", {"account_id": objs["account"],
                                                      "lines": [{"product": B_CT, "quantity": 2}]})["id"]
    bm.post(f"/v1/invoices/{objs['posted_invoice']}/post")
    objs["payment"] = bm.post("/v1/payments", {"account_id": objs["account"], "amount": 5000,
                                               "reference": MARK})["id"]
    objs["asset"] = bm.post("/v1/assets/import", {"account_id": objs["account"], "description": f"{MARK} asset",
                                                  "serial_number": MARK})["id"]
    # Activities: B's type (code B_CT, B's product as its service) and an open activity of B's customer, linked
    # to B's invoice and assigned to B's user and office.
    objs["activity_type"] = bm.post("/v1/activity-types", {"code": B_CT, "name": f"{MARK} activity type",
                                                           "services": [B_CT]})["id"]
    objs["activity"] = bm.post("/v1/activities", {
        "customer_id": objs["customer"], "type": B_CT, "starts_at": "2027-01-01T09:00:00Z", "details": MARK,
        "contact": {"name": f"{MARK} contact", "phone": "+61 400 000 000"},
        "link": {"kind": "invoice", "id": objs["invoice"]}, "assignee_user_id": objs["user"],
        "unit": {"kind": "office", "id": objs["office2"]}})["id"]
    # Wallets and payment preferences: B's wallet with money, a card preference with a card and a charge (the
    # card and the charge written as the gateway would leave them: no gateway runs in this test).
    bm.post(f"/v1/accounts/{objs['account']}/wallet")
    bm.post(f"/v1/accounts/{objs['account']}/wallet/top-ups", {"amount": 4242, "reference": MARK})
    objs["payment_preference"] = bm.post("/v1/payment-preferences", {"account_id": objs["account"], "kind": "card",
                                                                     "gateway": "stripe"})["id"]
    objs["payment_card"], objs["gateway_charge"] = _card_and_charge(db, b.id, objs)
    # Subscriptions: B's active subscription of a subscription service, and a billing run (nothing due).
    bm.post("/v1/products", {"code": f"{B_CT}-sub", "name": f"{MARK} service", "kind": "subscription_service",
                             "unit": "month"})
    objs["subscription"] = bm.post("/v1/subscriptions", {
        "account_id": objs["account"], "name": MARK, "activate_on": "2027-01-01",
        "services": [{"product": f"{B_CT}-sub", "unit_price": 100}]})["id"]
    objs["billing_run"] = bm.post("/v1/billing-runs", {"as_of": "2026-01-01"})["id"]
    objs["balance_threshold"] = _ok(bm.client.put("/v1/balance-thresholds", json={
        "credit_type": B_CT, "threshold": 4242, "holder": {"kind": "office", "id": objs["office"]}}), 200)["id"]
    a_account = am.post("/v1/accounts", {"customer_id": a_customer, "name": "A account"})["id"]
    am.post("/v1/activity-types", {"code": "a-visit", "name": "A visit"})
    a_invoice = am.post("/v1/invoices", {"account_id": a_account, "lines": [
        {"product": "a-product", "quantity": 1, "unit_price": 100}]})
    # Credit control: B's rating (code B_CT) with a limit, an override rule naming it, B's account rated.
    objs["credit_rating"] = bm.post("/v1/credit-ratings", {"code": B_CT, "name": f"{MARK} rating",
                                                           "limits": {"AUD": 4242}})["id"]
    objs["override_rule"] = bm.post("/v1/override-rules", {"name": f"{MARK} rule", "events": ["purchase"],
                                                           "credit_rating_ids": [objs["credit_rating"]]})["id"]
    bm.post(f"/v1/accounts/{objs['account']}/credit-terms", {"credit_rating_id": objs["credit_rating"]})
    # Expiry emails: B's settings and its own template, marked, never seen by A (lists have no id parameter:
    # the list endpoints below are searched for B's marks).
    _ok(bm.client.patch("/v1/email-settings", json={"warning_days": 42, "default_language": "de"}), 200)
    _ok(bm.client.put("/v1/email-templates", json={"event": "warning", "language": "de", "subject": f"{MARK} subject",
                                                   "text_body": MARK}), 200)
    # Bill communications: B's template and a communication of its posted invoice (no SMTP here: it failed).
    objs["communication_template"] = bm.post("/v1/communication-templates", {
        "name": f"{MARK} template", "subject": f"{MARK} {{{{ invoice.number }}}}", "body": MARK})["id"]
    objs["communication"] = bm.post(f"/v1/invoices/{objs['posted_invoice']}/communicate", {
        "to": "secretb.bills@example.com", "template_id": objs["communication_template"]})["id"]
    objs["crm_mapping"], objs["crm_review_item"] = _crm_objects(bm, base, b.id, objs)
    # Outbound webhooks: B's endpoint (marked) and a failed delivery of it, written as the outbox would leave it
    # (last in the world: no event of B follows, so nothing is delivered behind the matrix's back).
    objs["webhook_endpoint"] = bm.post("/v1/webhook-endpoints", {"url": f"http://127.0.0.1:9/{MARK}",
                                                                 "event_types": ["pack.created"],
                                                                 "description": MARK})["id"]
    objs["webhook_delivery"] = _webhook_delivery(db, b.id, objs["webhook_endpoint"])
    schema = httpx.get(base + "/openapi.json", timeout=30).json()
    yield {"a": a, "b": b, "callers": callers, "b_objs": objs, "schema": schema, "base": base,
           "a_office": a_office, "a_office2": a_office2, "a_pack": a_pack, "a_pack2": a_pack2, "a_team": a_team,
           "a_member": consumer, "a_product": a_product, "a_plan": a_plan, "a_customer": a_customer,
           "a_account": a_account, "a_invoice": a_invoice["id"], "a_line": a_invoice["lines"][0]["id"]}
    am.client.close()
    bm.client.close()


def _crm_objects(bm: Api, base: str, workspace_id: str, objs: dict) -> tuple[str, str]:
    """B's HubSpot settings, a company mapping to B's customer, and a deal of B's in its review queue (sent by
    HubSpot to B's webhook URL, signed with B's secret)."""
    from tests.integrations.signing import body_of, deal_event, signed, webhook_url

    _ok(bm.client.put("/v1/integrations/hubspot", json={"client_secret": "secretb-client-secret",
                                                         "holder_property": MARK}), 200)
    mapping = bm.post("/v1/integrations/hubspot/mappings", {"kind": "company", "external_id": MARK,
                                                            "holder": {"kind": "customer", "id": objs["customer"]},
                                                            "note": MARK})["id"]
    body = body_of(deal_event(MARK, event_id=MARK, company=MARK))
    url = webhook_url(workspace_id, base)
    answer = _ok(httpx.post(url, content=body, headers=signed(body, url, secret="secretb-client-secret"),
                            timeout=30), 200)
    return mapping, answer["events"][0]["review_item_id"]


def _card_and_charge(db, workspace_id: str, objs: dict) -> tuple[str, str]:
    from creditdesk import clock
    from creditdesk.billing.wallet_models import GatewayCharge, PaymentCard
    from creditdesk.ids import new_id

    def write(session):
        now = clock.now()
        card = PaymentCard(id=new_id("card"), workspace_id=workspace_id, preference_id=objs["payment_preference"],
                           gateway="stripe", card_ref="pm_" + MARK, brand="visa", last4="4242", exp_month=12,
                           exp_year=2030, removed=False, created_at=now)
        session.add(card)
        session.flush()
        charge = GatewayCharge(id=new_id("gch"), workspace_id=workspace_id, account_id=objs["account"],
                               preference_id=objs["payment_preference"], card_id=card.id, amount=4242,
                               currency="AUD", status="failed", error_code="card_declined", outcome=MARK,
                               charge_due_at=None, charge_attempts=1, created_at=now, updated_at=now)
        session.add(charge)
        return card.id, charge.id
    return db.write(write)


def _webhook_delivery(db, workspace_id: str, endpoint_id: str) -> str:
    from creditdesk import clock
    from creditdesk.webhooks.models import WebhookDelivery

    def write(session):
        now = clock.now()
        row = WebhookDelivery(id=new_id("whd"), workspace_id=workspace_id, endpoint_id=endpoint_id,
                              event_id=new_id("whevt"), event_type="pack.created",
                              body=f'{{"type":"pack.created","data":{{"name":"{MARK}"}}}}', status="failed",
                              attempts=1, next_attempt_at=None, last_error=MARK, retry_from=now, created_at=now,
                              updated_at=now)
        session.add(row)
        return row.id
    return db.write(write)


def _b_snapshot(db, w) -> dict:
    """Everything of B that a foreign caller might change, as B itself reads it."""
    b, objs = w["b"], w["b_objs"]
    snap = {"rows": counts(db, b.id)}
    with db.read() as session:
        snap["ledger_transfers"] = session.scalar(select(func.count()).select_from(LedgerTransfer)
                                                  .where(LedgerTransfer.workspace_id == b.id))
    with httpx.Client(base_url=w["base"], headers=b.headers, timeout=30) as c:
        paths = {"customer": "/v1/customers/{}", "office": "/v1/offices/{}", "office2": "/v1/offices/{}",
                 "user": "/v1/users/{}", "team": "/v1/teams/{}", "pack": "/v1/packs/{}", "user_pack": "/v1/packs/{}",
                 "project": "/v1/projects/{}", "consumption": "/v1/consumptions/{}", "hold": "/v1/holds/{}",
                 "captured_hold": "/v1/holds/{}", "transfer": "/v1/transfers/{}", "credit_type": "/v1/credit-types/{}",
                 "sms_purchase": "/v1/sms/purchases/{}", "message": "/v1/messages/{}",
                 "product_type": "/v1/product-types/{}", "product_family": "/v1/product-families/{}",
                 "tax_class": "/v1/tax-classes/{}", "tax_rate": "/v1/tax-rates/{}", "product": "/v1/products/{}",
                 "price_plan": "/v1/price-plans/{}", "prices": "/v1/price-plans/{}/prices",
                 "account": "/v1/accounts/{}", "balance": "/v1/accounts/{}/balance",
                 "statement": "/v1/accounts/{}/statement", "invoice": "/v1/invoices/{}",
                 "posted_invoice": "/v1/invoices/{}", "payment": "/v1/payments/{}",
                 "credit_rating": "/v1/credit-ratings/{}", "override_rule": "/v1/override-rules/{}",
                 "asset": "/v1/assets/{}", "wallet": "/v1/accounts/{}/wallet",
                 "wallet_transactions": "/v1/accounts/{}/wallet/transactions",
                 "payment_preference": "/v1/payment-preferences/{}", "gateway_charge": "/v1/gateway-charges/{}",
                 "subscription": "/v1/subscriptions/{}", "billing_run": "/v1/billing-runs/{}",
                 "activity_type": "/v1/activity-types/{}", "activity": "/v1/activities/{}",
                 "communication_template": "/v1/communication-templates/{}",
                 "communication": "/v1/communications/{}",
                 "crm_mapping": "/v1/integrations/hubspot/mappings/{}",
                 "crm_review_item": "/v1/integrations/review-queue/{}",
                 "webhook_endpoint": "/v1/webhook-endpoints/{}", "webhook_delivery": "/v1/webhook-deliveries/{}"}
        owner = {"prices": "price_plan", "balance": "account", "statement": "account", "wallet": "account",
                 "wallet_transactions": "account"}
        for name, path in paths.items():
            snap[name] = _ok(c.get(path.format(objs[owner.get(name, name)])), 200)
        snap["addresses"] = _ok(c.get(f"/v1/customers/{objs['customer']}/addresses"), 200)
        snap["billing_settings"] = _ok(c.get("/v1/billing/settings"), 200)
        snap["email_settings"] = _ok(c.get("/v1/email-settings"), 200)
        snap["email_templates"] = _ok(c.get("/v1/email-templates"), 200)
        snap["balance_thresholds"] = _ok(c.get("/v1/balance-thresholds"), 200)
        snap["balance_crossings"] = _ok(c.get("/v1/balance-crossings"), 200)
        snap["hubspot_settings"] = _ok(c.get("/v1/integrations/hubspot"), 200)
        key = _ok(c.get(f"/v1/api-keys/{objs['api_key']}"), 200)
        key.pop("last_used_at", None)
        snap["api_key"] = key
        for kind, holder in (("office", objs["office"]), ("office", objs["office2"]), ("user", objs["user"])):
            snap[f"balance {holder}"] = _ok(c.get("/v1/balances", params={"holder_kind": kind, "holder_id": holder}),
                                            200)
    return snap


def _fake_id(obj: str) -> str:
    if obj == "credit_type":
        return "nosuchcode"
    return new_id(FAKE_PREFIX[obj])


def _fill(template, values: dict):
    """Put ids into a body template ("{a_office}" and the like)."""
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    if isinstance(template, str) and template.startswith("{") and template.endswith("}"):
        return values[template[1:-1]]
    return template


def _id_endpoints(schema: dict) -> list[tuple[str, str, list[str]]]:
    """(method, path, its id parameters): a path with several ids (a customer's address) is tried with
    B's ids in every place, against ids that never existed in every place."""
    out = []
    for path, ops in schema["paths"].items():
        names = re.findall(r"{(\w+)}", path)
        for method in ops:
            if names:
                out.append((method.upper(), path, names))
    return out


def _list_endpoints(schema: dict) -> list[tuple[str, list[dict]]]:
    return [(path, ops["get"].get("parameters", [])) for path, ops in schema["paths"].items()
            if "get" in ops and "{" not in path and path.startswith("/v1/")]


def _b_secrets(w) -> list[str]:
    objs = w["b_objs"]
    return [MARK.lower(), w["b"].id.lower()] + [v.lower() for k, v in objs.items() if k != "credit_type"]


def _leaks(text: str, secrets: list[str], sent: set[str]) -> list[str]:
    """B's ids and names found in a response, less what the request itself sent (echoed in errors)."""
    low = text.lower()
    for s in sent:
        low = low.replace(s.lower(), "")
    return [s for s in secrets if s in low]


def test_authorization_matrix(db, live_server, world):
    started = time.monotonic()
    w = world
    objs = w["b_objs"]
    secrets = _b_secrets(w)
    before = _b_snapshot(db, w)
    violations: list[str] = []
    requests = 0
    endpoints = _id_endpoints(w["schema"])
    unknown = [(m, p) for m, p, _ in endpoints if m != "GET" and (m, p) not in WRITE_BODIES]
    unmapped = sorted({n for _, _, names in endpoints for n in names} - set(PARAM_OBJECT))
    assert not unknown and not unmapped, (
        f"new endpoints with ids: add them to the matrix: bodies for {unknown}, objects for {unmapped}")
    assert len(endpoints) >= 20
    values = {"a_office": w["a_office"], "a_product": w["a_product"], "a_customer": w["a_customer"],
              "a_account": w["a_account"], "a_plan": w["a_plan"]}

    for role, key in w["callers"].items():
        c = httpx.Client(base_url=w["base"], headers={"Authorization": f"Bearer {key}"}, timeout=30)

        def send(method, url, body=None, params=None):
            nonlocal requests
            requests += 1
            kwargs = {"params": params} if params else {}
            if body is not None:
                kwargs["json"] = body
            return c.request(method, url, **kwargs)

        # 1. Every endpoint with an id, B's id against an id that never existed.
        for method, path, names in endpoints:
            theirs_path, fake_path, used = path, path, []
            for name in names:
                obj = PARAM_OBJECT[name]
                if name == "hold_id" and path.endswith("/reverse"):
                    obj = "captured_hold"
                theirs_path = theirs_path.replace("{" + name + "}", objs[obj])
                fake_path = fake_path.replace("{" + name + "}", _fake_id(obj))
                used.append(obj)
            body = _fill(WRITE_BODIES.get((method, path)), values)
            theirs = send(method, theirs_path, body)
            fake = send(method, fake_path, body)
            obj = "+".join(used)
            label = f"[{role}] {method} {path} with B's {obj}"
            if theirs.status_code < 400:
                violations.append(f"{label}: {theirs.status_code} {theirs.text[:300]}")
            elif (theirs.status_code, theirs.json().get("code")) != (fake.status_code, fake.json().get("code")):
                violations.append(f"{label}: {theirs.status_code} {theirs.json().get('code')}, but "
                                  f"{fake.status_code} {fake.json().get('code')} for an id that never existed")
            leaked = _leaks(theirs.text, secrets, {objs[o] for o in used})
            if leaked:
                violations.append(f"{label}: response shows {leaked}: {theirs.text[:300]}")

        # 2. Lists, searches and exports of A, filtered by B's ids or searched for B's names.
        for path, params in _list_endpoints(w["schema"]):
            queries: list[dict] = [{}]
            for p in params:
                pname = p["name"]
                if p.get("in") != "query":
                    continue
                if pname.endswith("_id"):
                    for obj, oid in objs.items():
                        if obj == "credit_type":
                            continue
                        q = {pname: oid}
                        kind = KIND_OF_PREFIX.get(oid.split("_")[0])
                        for kind_param in ("holder_kind", "context_kind"):
                            if kind_param in {x["name"] for x in params} and kind:
                                q[kind_param] = kind if not (kind == "project" and kind_param == "holder_kind") \
                                    else "office"
                        queries.append(q)
                elif pname in TEXT_PARAMS:
                    queries += [{pname: MARK}, {pname: B_CT}, {pname: objs["consumption"]}]
            required = [p["name"] for p in params if p.get("required")]
            for q in queries:
                for r in required:  # e.g. holder_kind on /v1/balances
                    q.setdefault(r, "office" if r.endswith("_kind") else "x")
                r = send("GET", path, params=q)
                label = f"[{role}] GET {path} {q}"
                if r.status_code >= 500:
                    violations.append(f"{label}: {r.status_code}")
                sent = {str(v) for v in q.values()} if r.status_code >= 400 else set()
                leaked = _leaks(r.text, secrets, sent)
                if leaked:
                    violations.append(f"{label}: {r.status_code} shows {leaked}: {r.text[:300]}")

        # 3. Writes of A that name B's objects in their body.
        office_b = {"kind": "office", "id": objs["office"]}
        a_office = {"kind": "office", "id": w["a_office"]}
        refs = [
            ("POST", "/v1/packs", {"holder": office_b, "credit_type": "unit", "quantity": 5, "name": "x"}),
            ("POST", "/v1/packs", {"holder": a_office, "credit_type": B_CT, "quantity": 5, "name": "x"}),
            ("POST", "/v1/packs", {"holder": a_office, "credit_type": "unit", "quantity": 5, "name": "x",
                                   "relationship_manager_id": objs["user"]}),
            ("POST", "/v1/packs/batch", {"packs": [{"holder": office_b, "credit_type": "unit", "quantity": 5,
                                                    "name": "x"}]}),
            ("POST", "/v1/consumptions", {"context": office_b, "credit_type": "unit", "amount": 1}),
            ("POST", "/v1/consumptions", {"context": {"kind": "customer", "id": objs["customer"]},
                                          "credit_type": "unit", "amount": 1}),
            ("POST", "/v1/consumptions", {"context": {"kind": "project", "id": objs["project"]},
                                          "credit_type": "unit", "amount": 1}),
            ("POST", "/v1/holds", {"context": office_b, "credit_type": "unit", "amount": 1}),
            ("POST", "/v1/transfers", {"from": office_b, "to": a_office, "credit_type": B_CT, "amount": 1}),
            ("POST", "/v1/transfers", {"from": office_b, "to": a_office, "credit_type": "unit", "amount": 1}),
            ("POST", "/v1/transfers", {"from": a_office, "to": office_b, "credit_type": "unit", "amount": 1}),
            ("POST", "/v1/transfers", {"from_pack_id": objs["pack"], "to": a_office, "credit_type": "unit",
                                       "amount": 1}),
            ("POST", "/v1/offices", {"name": "x", "customer_id": objs["customer"]}),
            ("POST", "/v1/users", {"name": "x", "primary_office_id": objs["office"]}),
            ("POST", "/v1/users", {"name": "x", "additional_office_ids": [objs["office"]]}),
            ("POST", "/v1/teams", {"name": "x", "office_id": objs["office"]}),
            ("POST", "/v1/teams", {"name": "x", "member_ids": [objs["user"]]}),
            ("POST", "/v1/api-keys", {"name": "x", "user_id": objs["user"]}),
            ("POST", "/v1/projects", {"name": "x", "office_id": objs["office"]}),
            ("POST", "/v1/projects", {"name": "x", "office_id": w["a_office"], "contact_ids": [objs["user"]]}),
            ("PATCH", f"/v1/packs/{w['a_pack']}", {"relationship_manager_id": objs["user"]}),
            ("POST", f"/v1/packs/{w['a_pack']}/change-holder", {"holder": office_b}),
            ("PATCH", f"/v1/users/{w['a_member']}", {"primary_office_id": objs["office"]}),
            ("PATCH", f"/v1/users/{w['a_member']}", {"additional_office_ids": [objs["office"]]}),
            ("PATCH", f"/v1/teams/{w['a_team']}", {"member_ids": [objs["user"]]}),
            ("PATCH", f"/v1/teams/{w['a_team']}", {"office_id": objs["office"]}),
            ("POST", "/v1/products", {"code": "x", "name": "x", "unit": "each", "type": B_CT}),
            ("POST", "/v1/products", {"code": "x", "name": "x", "unit": "each", "kind": "service", "tax_class": B_CT}),
            ("POST", "/v1/products", {"code": "x", "name": "x", "unit": "each", "kind": "credit_package",
                                      "credit_package": {"credit_type": "unit", "credit_quantity": 1,
                                                         "applicable_product_codes": [B_CT],
                                                         "expiry": {"kind": "none"}}}),
            ("PATCH", f"/v1/products/{w['a_product']}", {"family": B_CT}),
            ("POST", "/v1/tax-rates", {"tax_class": B_CT, "rate_bp": 1, "valid_from": "2030-01-01"}),
            ("PUT", f"/v1/price-plans/{w['a_plan']}/prices", {"product": objs["product"], "unit_price": 1}),
            ("PUT", f"/v1/price-plans/{w['a_plan']}/prices", {"product": B_CT, "unit_price": 1}),
            ("POST", "/v1/accounts", {"customer_id": objs["customer"], "name": "x"}),
            ("POST", "/v1/accounts", {"customer_id": w["a_customer"], "name": "x",
                                      "billing_address_id": objs["address"]}),
            ("POST", "/v1/invoices", {"account_id": objs["account"]}),
            ("POST", "/v1/invoices", {"account_id": w["a_account"], "price_plan_id": objs["price_plan"]}),
            ("POST", "/v1/invoices", {"account_id": w["a_account"], "lines": [{"product": B_CT, "quantity": 1}]}),
            ("POST", "/v1/invoices", {"account_id": w["a_account"],
                                      "lines": [{"product": objs["product"], "quantity": 1}]}),
            ("POST", f"/v1/invoices/{w['a_invoice']}/lines", {"product": objs["product"], "quantity": 1}),
            ("PATCH", f"/v1/invoices/{w['a_invoice']}/lines/{w['a_line']}", {"product": B_CT}),
            ("PATCH", f"/v1/invoices/{w['a_invoice']}", {"price_plan_id": objs["price_plan"]}),
            ("POST", f"/v1/invoices/{w['a_invoice']}/lines/{w['a_line']}/credits",
             {"context": {"kind": "customer", "id": objs["customer"]}, "credit_type": B_CT, "quantity": 1}),
            ("POST", f"/v1/invoices/{w['a_invoice']}/lines/{w['a_line']}/credits",
             {"context": {"kind": "office", "id": objs["office"]}, "credit_type": "unit", "quantity": 1}),
            ("POST", "/v1/payments", {"account_id": objs["account"], "amount": 1}),
            ("POST", "/v1/payments", {"account_id": w["a_account"], "amount": 1,
                                      "allocations": [{"invoice_id": objs["posted_invoice"], "amount": 1}]}),
            ("POST", "/v1/decisions/spend", {"account_id": objs["account"], "event": "purchase", "amount": 1}),
            ("POST", "/v1/decisions/spend", {"account_id": w["a_account"], "event": "purchase", "amount": 1,
                                             "product": B_CT}),
            ("POST", "/v1/override-rules", {"name": "x", "events": ["purchase"],
                                            "credit_rating_ids": [objs["credit_rating"]]}),
            ("POST", f"/v1/accounts/{w['a_account']}/credit-terms", {"credit_rating_id": objs["credit_rating"]}),
            ("POST", "/v1/assets/import", {"account_id": objs["account"], "description": "x"}),
            ("POST", "/v1/assets/transfer", {"asset_ids": [objs["asset"]], "to_account_id": w["a_account"]}),
            ("POST", "/v1/assets/return", {"asset_ids": [objs["asset"]]}),
            ("POST", "/v1/payment-preferences", {"account_id": objs["account"], "kind": "bank_transfer"}),
            ("POST", "/v1/subscriptions", {"account_id": objs["account"], "services": []}),
            ("PUT", "/v1/balance-thresholds", {"credit_type": "unit", "threshold": 1,
                                               "holder": {"kind": "office", "id": objs["office"]}}),
            ("PUT", "/v1/balance-thresholds", {"credit_type": B_CT, "threshold": 1}),
            ("POST", "/v1/subscriptions", {"account_id": w["a_account"], "services": [{"product": f"{B_CT}-sub"}]}),
            ("POST", "/v1/activity-types", {"code": "stolen", "name": "x", "services": [B_CT]}),
            ("POST", "/v1/activity-types", {"code": "stolen", "name": "x", "services": [objs["product"]]}),
            ("POST", "/v1/activities", {"customer_id": objs["customer"], "type": "a-visit", "starts_at": ACT_START}),
            ("POST", "/v1/activities", {"customer_id": w["a_customer"], "type": B_CT, "starts_at": ACT_START}),
            ("POST", "/v1/activities", {"customer_id": w["a_customer"], "type": objs["activity_type"],
                                        "starts_at": ACT_START}),
            ("POST", "/v1/activities", {"customer_id": w["a_customer"], "type": "a-visit", "starts_at": ACT_START,
                                        "link": {"kind": "invoice", "id": objs["invoice"]}}),
            ("POST", "/v1/activities", {"customer_id": w["a_customer"], "type": "a-visit", "starts_at": ACT_START,
                                        "link": {"kind": "pack", "id": objs["pack"]}}),
            ("POST", "/v1/activities", {"customer_id": w["a_customer"], "type": "a-visit", "starts_at": ACT_START,
                                        "account_id": objs["account"]}),
            ("POST", "/v1/activities", {"customer_id": w["a_customer"], "type": "a-visit", "starts_at": ACT_START,
                                        "assignee_user_id": objs["user"]}),
            ("POST", "/v1/activities", {"customer_id": w["a_customer"], "type": "a-visit", "starts_at": ACT_START,
                                        "unit": {"kind": "office", "id": objs["office2"]}}),
            ("POST", "/v1/activities", {"customer_id": w["a_customer"], "type": "a-visit", "starts_at": ACT_START,
                                        "unit": {"kind": "team", "id": objs["team"]}}),
            ("POST", "/v1/activities", {"customer_id": w["a_customer"], "type": "a-visit", "starts_at": ACT_START,
                                        "services": [{"product": objs["product"]}]}),
            ("POST", f"/v1/invoices/{w['a_invoice']}/communicate", {
                "to": "x@example.com", "template_id": objs["communication_template"]}),
            ("POST", "/v1/communication-templates/preview", {"invoice_id": objs["posted_invoice"], "subject": "x",
                                                             "body": "x"}),
            ("POST", "/v1/communication-templates/preview", {"invoice_id": w["a_invoice"],
                                                             "template_id": objs["communication_template"]}),
            # packs from CRM deals: A's mappings naming B's holders or packages; B's webhook with A's key
            ("POST", "/v1/integrations/hubspot/mappings", {"kind": "company", "external_id": "x",
                                                           "holder": {"kind": "office", "id": objs["office"]}}),
            ("POST", "/v1/integrations/hubspot/mappings", {"kind": "company", "external_id": "x",
                                                           "holder": {"kind": "customer", "id": objs["customer"]}}),
            ("POST", "/v1/integrations/hubspot/mappings", {"kind": "sku", "external_id": "x", "product": B_CT}),
            ("POST", "/v1/integrations/hubspot/mappings", {"kind": "product", "external_id": "x",
                                                           "product": objs["product"]}),
            ("POST", f"/v1/integrations/hubspot/webhook?workspace={w['b'].id}",
             [{"eventId": 1, "subscriptionType": "deal.propertyChange", "objectId": MARK}]),
        ]
        for method, path, body in refs:
            r = send(method, path, body)
            label = f"[{role}] {method} {path} naming B's objects {body}"
            if r.status_code < 400 or r.status_code >= 500:
                violations.append(f"{label}: {r.status_code} {r.text[:300]}")
            leaked = _leaks(r.text, secrets, set(_strings(body)))
            if leaked:
                violations.append(f"{label}: response shows {leaked}")

        # 4. Within A: callers without manage_packs cannot change another office's pack.
        if role in ("member", "member+consume"):
            for method, path, body in (
                    ("POST", f"/v1/packs/{w['a_pack2']}/void", {"reason": "x"}),
                    ("POST", f"/v1/packs/{w['a_pack2']}/change-holder", {"holder": a_office}),
                    ("PATCH", f"/v1/packs/{w['a_pack2']}", {"name": "mine now", "priority": 1}),
                    ("POST", "/v1/transfers", {"from": {"kind": "office", "id": w["a_office2"]}, "to": a_office,
                                               "credit_type": "unit", "amount": 1})):
                r = send(method, path, body)
                if r.status_code != 403:
                    violations.append(f"[{role}] {method} {path} on office 2's pack: {r.status_code} {r.text[:200]}")
        c.close()

    after = _b_snapshot(db, w)
    for name in before:
        if before[name] != after[name]:
            violations.append(f"B's {name} changed: {before[name]} -> {after[name]}")
    a_pack2 = httpx.get(f"{w['base']}/v1/packs/{w['a_pack2']}", headers=w["a"].headers, timeout=30).json()
    if (a_pack2["holder"]["id"], a_pack2["status"], a_pack2["name"]) != (w["a_office2"], "active", "A office 2 pack"):
        violations.append(f"A's office 2 pack changed: {a_pack2}")

    summary.add({"test": "authorization matrix", "db": db.dialect, "attempted": requests, "refused": requests,
                 "violations": len(violations), "seconds": round(time.monotonic() - started, 1),
                 "notes": f"{len(w['callers'])} callers x {len(endpoints)} id endpoints + lists + references"})
    assert violations == [], "\n".join(violations[:60])


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_fake_ids_are_shaped_like_real_ones():
    # The "never existed" comparison is only fair if fakes look like real ids.
    real = new_id("pack")
    assert re.fullmatch(r"pack_[0-9a-z]{26}", real) and len(_fake_id("pack")) == len(real)
