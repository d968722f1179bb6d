"""Mass assignment over HTTP: server-owned fields injected into every create/update body are refused.

Every operation with a request body is found in /openapi.json (a new one without a base body here
fails the test). For each, fields the body does not declare (workspace ids, ids, balances,
statuses, roles, ledger accounts, timestamps, secrets...) are injected one at a time, at the top
level and inside nested objects (holder, context, from/to, batch items). Each answer must be 422
`unknown_field`; nothing may change in the caller's workspace nor in the workspace whose id was
injected. Then the base body alone must succeed, proving the refusal was about the injected field.
"""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import func, select

from creditdesk.audit import Actor
from creditdesk.billing import postings
from creditdesk.billing.models import BillingAccount
from creditdesk.credits.models import Pack
from creditdesk.ledger.models import LedgerTransfer
from creditdesk.sms import payments
from creditdesk.sms import schemas as sms_schemas
from creditdesk.sms import service as sms_service
from tests.api.helpers import counts
from tests.conftest import make_workspace
from tests.reliability import summary


def _injections(other_ws: str) -> dict:
    return {
        "workspace_id": other_ws, "id": "pack_01m000000000000000000000zz", "object": "pack",
        "remaining": 10**9, "balance": 10**9, "available": 10**9, "held": 0, "total": 10**9, "frozen": False,
        "status": "voided", "role": "master", "is_master": True, "permissions": ["manage_packs"],
        "ledger_account_id": "la_01m000000000000000000000zz", "debits_posted": 0, "credits_posted": 10**9,
        "created_at": "2000-01-01T00:00:00Z", "updated_at": "2000-01-01T00:00:00Z",
        "reversed_at": None, "resolved_at": None, "revoked_at": None, "last_used_at": None,
        "customer_id": "cus_01m000000000000000000000zz", "origin_pack_id": "pack_01m000000000000000000000zz",
        "credit_transfer_id": "xfer_01m000000000000000000000zz", "captured_amount": 10**6,
        "actor_id": "usr_01m000000000000000000000zz", "api_key_id": "key_01m000000000000000000000zz",
        "key": "cdk_injected", "key_hash": "x", "prefix": "cdk_x", "settings": {"plan": "enterprise"},
        "is_active": False, "is_staff": True, "unit": "unit", "quantity": 10**9, "amount": 10**9,
        "holder_kind": "workspace", "holder_id": other_ws, "lines": [], "void_reason": "x",
    }


BILLING = {"name": "Buyer", "address": "1 Street", "email": "buyer@example.com"}


class _PendingPayment:
    code, label = "mass_assignment_pending", "Confirmed later"

    def charge(self, purchase, *, idempotency_key):
        return payments.PaymentResult(status="pending", reference=f"bank:{purchase.id}")


def _pending_purchase(db, ws) -> str:
    """A purchase waiting for its payment, made in-process: the server offers no pending method."""
    payments.register_payment_method(_PendingPayment())
    try:
        actor = Actor(workspace_id=ws.id, user_id=ws.master_id, role="master")
        data = sms_schemas.PurchaseCreate.model_validate({
            "for": {"kind": "workspace"}, "quantity": 5, "billing": BILLING,
            "payment_method": _PendingPayment.code})
        return db.write(lambda session: sms_service.create_purchase(session, data, actor=actor).id)
    finally:
        payments.unregister_payment_method(_PendingPayment.code)


def _ok(r: httpx.Response) -> dict:
    assert r.status_code in (200, 201), f"{r.request.method} {r.request.url} -> {r.status_code} {r.text}"
    return r.json()


@pytest.fixture(scope="module")
def target(db, live_server):
    ws, other = make_workspace(db, name="Mass assignment"), make_workspace(db, name="Mass assignment other")
    c = httpx.Client(base_url=live_server.base_url, headers=ws.headers, timeout=30)
    ids = {"master": ws.master_id}
    _ok(c.post("/v1/credit-types", json={"code": "unit", "name": "Units"}))
    ids["o1"] = _ok(c.post("/v1/offices", json={"name": "O1"}))["id"]
    ids["o2"] = _ok(c.post("/v1/offices", json={"name": "O2"}))["id"]
    ids["c1"] = _ok(c.post("/v1/customers", json={"name": "C1"}))["id"]
    ids["u1"] = _ok(c.post("/v1/users", json={"name": "U1", "is_staff": True, "email": "u1@example.com"}))["id"]
    ids["t1"] = _ok(c.post("/v1/teams", json={"name": "T1"}))["id"]
    ids["k1"] = _ok(c.post("/v1/api-keys", json={"name": "K1", "user_id": ids["u1"]}))["id"]
    office = {"kind": "office", "id": ids["o1"]}
    for name in ("p1", "p2", "p3", "p4"):
        ids[name] = _ok(c.post("/v1/packs", json={"holder": office, "credit_type": "unit", "quantity": 100,
                                                  "name": name}))["id"]
    ids["prj1"] = _ok(c.post("/v1/projects", json={"name": "P1", "office_id": ids["o1"]}))["id"]
    ids["con1"] = _ok(c.post("/v1/consumptions", json={"context": office, "credit_type": "unit", "amount": 2}))["id"]
    ids["h1"] = _ok(c.post("/v1/holds", json={"context": office, "credit_type": "unit", "amount": 3}))["id"]
    ids["h2"] = _ok(c.post("/v1/holds", json={"context": office, "credit_type": "unit", "amount": 3}))["id"]
    _ok(c.post(f"/v1/holds/{ids['h2']}/capture", json={}))
    ids["smsp_paid"] = _ok(c.post("/v1/sms/purchases", json={
        "for": {"kind": "user", "id": ws.master_id}, "quantity": 50, "billing": BILLING}))["id"]
    ids["smsp_pending"] = _pending_purchase(db, ws)
    ids.update(_catalogue_objects(c))
    # A credit package to give free (issue 13).
    _ok(c.post("/v1/products", json={"code": "ma-pkg-free", "name": "Free package", "kind": "credit_package",
                                     "unit": "pack", "credit_package": {
                                         "credit_type": "unit", "credit_quantity": 5,
                                         "applicable_product_codes": ["ma-product"], "expiry": {"kind": "none"}}}))
    # Billing (customer accounts): settings first (no account without them), an address, an account.
    _ok(c.patch("/v1/billing/settings", json={"default_currency": "AUD", "multi_currency": True,
                                              "enabled_currencies": ["EUR"]}))
    ids["adr1"] = _ok(c.post(f"/v1/customers/{ids['c1']}/addresses", json={
        "line1": "1 Street", "city": "Sydney", "country": "AU"}))["id"]
    ids["acc1"] = _ok(c.post("/v1/accounts", json={"customer_id": ids["c1"], "name": "A1"}))["id"]
    # Invoices: a draft with a line, a posted invoice, an unallocated payment, credits of the customer.
    line = {"product": "ma-product", "quantity": 2, "unit_price": 500}
    draft = _ok(c.post("/v1/invoices", json={"account_id": ids["acc1"], "lines": [line]}))
    ids["inv1"], ids["inl1"] = draft["id"], draft["lines"][0]["id"]
    ids["inv_posted"] = _ok(c.post("/v1/invoices", json={"account_id": ids["acc1"], "lines": [line]}))["id"]
    _ok(c.post(f"/v1/invoices/{ids['inv_posted']}/post"))
    ids["pay1"] = _ok(c.post("/v1/payments", json={"account_id": ids["acc1"], "amount": 100, "allocations": []}))["id"]
    # Account credit to apply and refund: an account of its own with an open invoice and more paid than it owes.
    ids["acc_credit"] = _ok(c.post("/v1/accounts", json={"customer_id": ids["c1"], "name": "Credit"}))["id"]
    owed = _ok(c.post("/v1/invoices", json={"account_id": ids["acc_credit"], "lines": [line]}))["id"]
    _ok(c.post(f"/v1/invoices/{owed}/post"))
    _ok(c.post("/v1/payments", json={"account_id": ids["acc_credit"], "amount": 50_000, "allocations": []}))
    # Packs from CRM deals: a company mapping, and a deal of an unknown company in the review queue.
    ids["crmm1"] = _ok(c.post("/v1/integrations/hubspot/mappings", json={
        "kind": "company", "external_id": "ma-co-1", "holder": {"kind": "customer", "id": ids["c1"]}}))["id"]
    ids["crmr1"] = _ok(c.post("/v1/deals/import", json={"deals": [{"id": "ma-deal-0", "company_id": "ma-unknown",
                                                                   "line_items": [{"sku": "ma-sku"}]}]}))[
        "deals"][0]["review_item_id"]
    # An asset sold on a posted invoice (goods sold can be transferred and returned).
    _ok(c.post("/v1/products", json={"code": "ma-router", "name": "Router", "kind": "physical_good", "unit": "each"}))
    sold = _ok(c.post("/v1/invoices", json={"account_id": ids["acc1"], "lines": [
        {"product": "ma-router", "quantity": 1, "unit_price": 100}]}))
    _ok(c.post(f"/v1/invoices/{sold['id']}/post"))
    ids["asset1"] = _ok(c.get("/v1/assets", params={"account_id": ids["acc1"]}))["data"][0]["id"]
    # Activities: a type with a service, an open activity to change and one to cancel.
    ids["atyp1"] = _ok(c.post("/v1/activity-types", json={"code": "ma-atype", "name": "T",
                                                          "services": ["ma-product"]}))["id"]
    for name in ("act1", "act_cancel"):
        ids[name] = _ok(c.post("/v1/activities", json={"customer_id": ids["c1"], "type": "ma-atype",
                                                       "starts_at": "2027-01-01T09:00:00Z"}))["id"]
    ids["ctpl1"] = _ok(c.post("/v1/communication-templates", json={"name": "Bill", "subject": "S", "body": "B"}))["id"]
    _ok(c.post("/v1/packs", json={"holder": {"kind": "customer", "id": ids["c1"]}, "credit_type": "unit",
                                  "quantity": 50, "name": "Customer credits"}))
    # Wallets, payment preferences and subscriptions (seed 004, seed 002).
    _ok(c.post(f"/v1/accounts/{ids['acc1']}/wallet"))
    _ok(c.post(f"/v1/accounts/{ids['acc1']}/wallet/top-ups", json={"amount": 1000}))
    ids["ppref1"] = _ok(c.post("/v1/payment-preferences", json={"account_id": ids["acc1"], "kind": "card",
                                                                "gateway": "stripe"}))["id"]
    _ok(c.post("/v1/products", json={"code": "ma-line", "name": "Line", "kind": "subscription_service",
                                     "unit": "month"}))
    subs_account = _ok(c.post("/v1/accounts", json={"customer_id": ids["c1"], "name": "Subscriptions"}))["id"]
    for name in ("activate", "services", "remove", "qty", "suspend", "resume", "terminate", "bill"):
        body = {"account_id": subs_account, "services": [{"product": "ma-line", "unit_price": 100}]}
        if name != "activate":
            body["activate_on"] = "2027-01-01"
        sub = _ok(c.post("/v1/subscriptions", json=body))
        ids[f"sub_{name}"], ids[f"subsvc_{name}"] = sub["id"], sub["services"][0]["id"]
    _ok(c.post(f"/v1/subscriptions/{ids['sub_resume']}/suspend", json={"on": "2027-01-02"}))
    ids["subs_account"] = subs_account
    # Credit control: a rating, a rule, and one account per lifecycle action in the state it needs.
    ids["crat1"] = _ok(c.post("/v1/credit-ratings", json={"code": "ma-rating", "name": "R"}))["id"]
    ids["ovr1"] = _ok(c.post("/v1/override-rules", json={"name": "ma-rule", "events": ["purchase"]}))["id"]
    for name in ("acc_suspend", "acc_reactivate", "acc_terminate", "acc_write_off"):
        ids[name] = _ok(c.post("/v1/accounts", json={"customer_id": ids["c1"], "name": name}))["id"]
    _ok(c.post(f"/v1/accounts/{ids['acc_reactivate']}/suspend", json={"reason": "dispute"}))
    db.write(lambda s: postings.post_account_entry(s, s.get(BillingAccount, ids["acc_write_off"]), 100, "debit",
                                                   "invoice"))
    # Group accounts: a parent of c1 and a member account of another customer.
    ids["c_group"] = _ok(c.post("/v1/customers", json={"name": "Group member"}))["id"]
    ids["acc_parent"] = _ok(c.post("/v1/accounts", json={"customer_id": ids["c1"], "name": "Parent"}))["id"]
    ids["acc_member"] = _ok(c.post("/v1/accounts", json={"customer_id": ids["c_group"], "name": "Member"}))["id"]
    ids["whep1"] = _ok(c.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/ma1",
                                                             "event_types": ["balance.low"]}))["id"]
    yield {"ws": ws, "other": other, "ids": ids, "client": c}
    c.close()


def _bases(ids: dict) -> dict:
    office = {"kind": "office", "id": ids["o1"]}
    office2 = {"kind": "office", "id": ids["o2"]}
    pack = {"holder": office, "credit_type": "unit", "quantity": 5, "name": "p"}
    return {
        ("PATCH", "/v1/workspace"): ("/v1/workspace", {"name": "Mass assignment renamed"}),
        ("POST", "/v1/customers"): ("/v1/customers", {"name": "C"}),
        ("PATCH", "/v1/customers/{customer_id}"): (f"/v1/customers/{ids['c1']}", {"name": "C1b"}),
        ("POST", "/v1/offices"): ("/v1/offices", {"name": "O"}),
        ("PATCH", "/v1/offices/{office_id}"): (f"/v1/offices/{ids['o1']}", {"name": "O1b"}),
        ("POST", "/v1/users"): ("/v1/users", {"name": "U"}),
        ("PATCH", "/v1/users/{user_id}"): (f"/v1/users/{ids['u1']}", {"name": "U1b"}),
        ("POST", "/v1/teams"): ("/v1/teams", {"name": "T"}),
        ("PATCH", "/v1/teams/{team_id}"): (f"/v1/teams/{ids['t1']}", {"name": "T1b"}),
        ("POST", "/v1/api-keys"): ("/v1/api-keys", {"name": "K"}),
        ("PATCH", "/v1/api-keys/{key_id}"): (f"/v1/api-keys/{ids['k1']}", {"name": "K1b"}),
        ("POST", "/v1/credit-types"): ("/v1/credit-types", {"code": "second", "name": "Second"}),
        ("PATCH", "/v1/credit-types/{code}"): ("/v1/credit-types/unit", {"name": "Units b"}),
        ("POST", "/v1/packs"): ("/v1/packs", pack),
        ("POST", "/v1/packs/batch"): ("/v1/packs/batch", {"packs": [pack]}),
        ("PATCH", "/v1/packs/{pack_id}"): (f"/v1/packs/{ids['p4']}", {"status_label": "x"}),
        ("POST", "/v1/packs/{pack_id}/change-holder"): (f"/v1/packs/{ids['p3']}/change-holder", {"holder": office2}),
        ("POST", "/v1/packs/{pack_id}/void"): (f"/v1/packs/{ids['p2']}/void", {"reason": "r"}),
        ("POST", "/v1/projects"): ("/v1/projects", {"name": "P", "office_id": ids["o1"]}),
        ("PATCH", "/v1/projects/{project_id}"): (f"/v1/projects/{ids['prj1']}", {"name": "P1b"}),
        ("POST", "/v1/consumptions"): ("/v1/consumptions", {"context": office, "credit_type": "unit", "amount": 1}),
        ("POST", "/v1/consumptions/{consumption_id}/reverse"): (f"/v1/consumptions/{ids['con1']}/reverse",
                                                                {"reason": "r"}),
        ("POST", "/v1/holds"): ("/v1/holds", {"context": office, "credit_type": "unit", "amount": 1}),
        ("POST", "/v1/holds/{hold_id}/capture"): (f"/v1/holds/{ids['h1']}/capture", {"amount": 1}),
        ("POST", "/v1/holds/{hold_id}/reverse"): (f"/v1/holds/{ids['h2']}/reverse", {"reason": "r"}),
        ("POST", "/v1/transfers"): ("/v1/transfers", {"from": office, "to": office2, "credit_type": "unit",
                                                      "amount": 1}),
        ("PATCH", "/v1/sms/settings"): ("/v1/sms/settings", {"tax_label": "GST"}),
        ("POST", "/v1/sms/purchases"): ("/v1/sms/purchases", {"for": {"kind": "workspace"}, "quantity": 3,
                                                              "billing": BILLING}),
        ("POST", "/v1/sms/purchases/{purchase_id}/payment"): (f"/v1/sms/purchases/{ids['smsp_pending']}/payment",
                                                               {"status": "paid", "reference": "bank:ok"}),
        ("POST", "/v1/sms/transfers"): ("/v1/sms/transfers", {"from": {"kind": "user", "id": ids["master"]},
                                                              "to": {"kind": "workspace"}, "quantity": 1,
                                                              "agree_to_conditions": True}),
        ("POST", "/v1/messages"): ("/v1/messages", {"to": "+61400000000", "body": "Hello"}),
        # Billing (customer accounts)
        ("POST", "/v1/customers/{customer_id}/addresses"): (f"/v1/customers/{ids['c1']}/addresses", {
            "line1": "2 Street", "city": "Sydney", "country": "AU"}),
        ("PATCH", "/v1/customers/{customer_id}/addresses/{address_id}"): (
            f"/v1/customers/{ids['c1']}/addresses/{ids['adr1']}", {"city": "Newcastle"}),
        ("PATCH", "/v1/billing/settings"): ("/v1/billing/settings", {"multi_currency": True}),
        ("POST", "/v1/conversion-rates"): ("/v1/conversion-rates", {"from_currency": "EUR", "to_currency": "AUD",
                                                                    "rate": "1.6", "valid_from": "2026-01-01"}),
        ("POST", "/v1/accounts"): ("/v1/accounts", {"customer_id": ids["c1"], "name": "A2"}),
        ("PATCH", "/v1/accounts/{account_id}"): (f"/v1/accounts/{ids['acc1']}", {"name": "A1b"}),
        **_catalogue_bases(ids),
        # Credit control (a rating's limits are a map of currencies: injected keys are refused as currencies)
        ("POST", "/v1/credit-ratings"): ("/v1/credit-ratings", {"code": "ma-rating-2", "name": "R2"}),
        ("PATCH", "/v1/credit-ratings/{rating_id}"): (f"/v1/credit-ratings/{ids['crat1']}", {"name": "R1b"}),
        ("POST", "/v1/override-rules"): ("/v1/override-rules", {"name": "ma-rule-2", "events": ["purchase"]}),
        ("PATCH", "/v1/override-rules/{rule_id}"): (f"/v1/override-rules/{ids['ovr1']}", {"name": "ma-rule-1b"}),
        ("POST", "/v1/accounts/{account_id}/credit-terms"): (f"/v1/accounts/{ids['acc1']}/credit-terms",
                                                             {"credit_limit": 100}),
        ("POST", "/v1/decisions/spend"): ("/v1/decisions/spend", {"account_id": ids["acc1"], "event": "purchase",
                                                                  "amount": 1}),
        ("POST", "/v1/accounts/{account_id}/suspend"): (f"/v1/accounts/{ids['acc_suspend']}/suspend",
                                                        {"reason": "dispute"}),
        ("POST", "/v1/accounts/{account_id}/reactivate"): (f"/v1/accounts/{ids['acc_reactivate']}/reactivate",
                                                           {"note": "settled"}),
        ("POST", "/v1/accounts/{account_id}/terminate"): (f"/v1/accounts/{ids['acc_terminate']}/terminate",
                                                          {"note": "closed"}),
        ("POST", "/v1/accounts/{account_id}/write-off"): (f"/v1/accounts/{ids['acc_write_off']}/write-off",
                                                          {"reason": "uncollectable"}),
        **_invoice_bases(ids),
        # Expiry emails (SMTP settings are not fields: they come from the environment)
        ("PATCH", "/v1/email-settings"): ("/v1/email-settings", {"warning_days": 10}),
        ("PUT", "/v1/email-templates"): ("/v1/email-templates", {"event": "warning", "language": "de",
                                                                 "subject": "S", "text_body": "B"}),
        ("POST", "/v1/email-templates/preview"): ("/v1/email-templates/preview", {"event": "expired", "subject": "S",
                                                                                  "text_body": "B"}),
        # Group accounts and pricing agreements
        ("POST", "/v1/accounts/{account_id}/members"): (f"/v1/accounts/{ids['acc_parent']}/members", {
            "member_id": ids["acc_member"], "funding": {"scope": "partial", "products": ["ma-product"]}}),
        ("POST", "/v1/accounts/{account_id}/pricing-agreement"): (f"/v1/accounts/{ids['acc1']}/pricing-agreement",
                                                                  {"price_plan_id": ids["plan1"]}),
        # Account assets
        ("POST", "/v1/assets/import"): ("/v1/assets/import", {"account_id": ids["acc1"], "description": "Router"}),
        ("POST", "/v1/assets/transfer"): ("/v1/assets/transfer", {"asset_ids": [ids["asset1"]],
                                                                  "to_account_id": ids["acc_member"]}),
        ("POST", "/v1/assets/return"): ("/v1/assets/return", {"asset_ids": [ids["asset1"]]}),
        # Wallets and payment preferences
        ("POST", "/v1/accounts/{account_id}/wallet/top-ups"): (f"/v1/accounts/{ids['acc1']}/wallet/top-ups",
                                                               {"amount": 100}),
        ("POST", "/v1/accounts/{account_id}/wallet/refunds"): (f"/v1/accounts/{ids['acc1']}/wallet/refunds",
                                                               {"amount": 1, "reason": "r"}),
        ("POST", "/v1/invoices/{invoice_id}/pay-from-wallet"): (f"/v1/invoices/{ids['inv_posted']}/pay-from-wallet",
                                                                {"amount": 1}),
        ("POST", "/v1/payment-preferences"): ("/v1/payment-preferences", {"account_id": ids["acc1"],
                                                                          "kind": "bank_transfer"}),
        ("PATCH", "/v1/payment-preferences/{preference_id}"): (f"/v1/payment-preferences/{ids['ppref1']}",
                                                               {"use_billing_address": False}),
        ("POST", "/v1/payment-preferences/{preference_id}/cards"): (f"/v1/payment-preferences/{ids['ppref1']}/cards",
                                                                    {"card_token": "pm_card_visa"}),
        # Subscriptions and bills
        ("POST", "/v1/subscriptions"): ("/v1/subscriptions", {"account_id": ids["subs_account"], "services": [
            {"product": "ma-line", "quantity": 1}]}),
        ("POST", "/v1/subscriptions/{subscription_id}/activate"): (f"/v1/subscriptions/{ids['sub_activate']}/activate", {}),
        ("POST", "/v1/subscriptions/{subscription_id}/services"): (f"/v1/subscriptions/{ids['sub_services']}/services",
                                                                   {"product": "ma-line", "unit_price": 1}),
        ("POST", "/v1/subscriptions/{subscription_id}/remove-services"): (
            f"/v1/subscriptions/{ids['sub_remove']}/remove-services", {"service_id": ids["subsvc_remove"],
                                                                 "effective_on": "2027-06-01"}),
        ("POST", "/v1/subscriptions/{subscription_id}/change-quantity"): (
            f"/v1/subscriptions/{ids['sub_qty']}/change-quantity", {"service_id": ids["subsvc_qty"], "quantity": 2}),
        ("POST", "/v1/subscriptions/{subscription_id}/suspend"): (f"/v1/subscriptions/{ids['sub_suspend']}/suspend", {}),
        ("POST", "/v1/subscriptions/{subscription_id}/resume"): (
            f"/v1/subscriptions/{ids['sub_resume']}/resume", {"on": "2027-02-01"}),
        ("POST", "/v1/subscriptions/{subscription_id}/terminate"): (f"/v1/subscriptions/{ids['sub_terminate']}/terminate",
                                                                    {}),
        ("POST", "/v1/subscriptions/{subscription_id}/bill-preview"): (
            f"/v1/subscriptions/{ids['sub_bill']}/bill-preview", {"as_of": "2027-01-01"}),
        ("POST", "/v1/subscriptions/{subscription_id}/bill"): (f"/v1/subscriptions/{ids['sub_bill']}/bill",
                                                               {"as_of": "2027-01-01"}),
        ("POST", "/v1/billing-runs"): ("/v1/billing-runs", {"as_of": "2027-01-01"}),
        # Low-balance thresholds
        ("PUT", "/v1/balance-thresholds"): ("/v1/balance-thresholds", {"credit_type": "unit", "threshold": 5}),
        # Activities
        ("POST", "/v1/activity-types"): ("/v1/activity-types", {"code": "ma-atype-2", "name": "T",
                                                                "services": ["ma-product"]}),
        ("PATCH", "/v1/activity-types/{activity_type_id}"): (f"/v1/activity-types/{ids['atyp1']}", {"name": "T2"}),
        ("POST", "/v1/activities"): ("/v1/activities", {
            "customer_id": ids["c1"], "type": "ma-atype", "starts_at": "2027-01-01T09:00:00Z",
            "contact": {"name": "N", "phone": "1"}, "link": {"kind": "subscription", "id": "sub_1"},
            "unit": {"kind": "office", "id": ids["o1"]}, "services": [{"product": "ma-product", "quantity": 1}]}),
        ("PATCH", "/v1/activities/{activity_id}"): (f"/v1/activities/{ids['act1']}", {
            "details": "changed", "contact": {"name": "M"}, "unit": {"kind": "team", "id": ids["t1"]}}),
        ("POST", "/v1/activities/{activity_id}/cancel"): (f"/v1/activities/{ids['act_cancel']}/cancel",
                                                          {"reason": "r"}),
        # Bill communications
        ("POST", "/v1/communication-templates"): ("/v1/communication-templates", {
            "name": "MA template", "subject": "S {{ invoice.number }}", "body": "B"}),
        ("PATCH", "/v1/communication-templates/{template_id}"): (f"/v1/communication-templates/{ids['ctpl1']}",
                                                                 {"subject": "S2"}),
        ("POST", "/v1/communication-templates/preview"): ("/v1/communication-templates/preview", {
            "invoice_id": ids["inv_posted"], "template_id": ids["ctpl1"]}),
        ("POST", "/v1/invoices/{invoice_id}/communicate"): (f"/v1/invoices/{ids['inv_posted']}/communicate", {
            "to": "bills@example.com", "subject": "S", "body": "B"}),
        # Packs from CRM deals (the HubSpot webhook declares no body: HubSpot's payloads are read raw, signed,
        # and their unknown fields ignored, as HubSpot adds fields over time)
        ("PUT", "/v1/integrations/hubspot"): ("/v1/integrations/hubspot", {"client_secret": "ma-client-secret",
                                                                           "won_stage": "closedwon"}),
        ("POST", "/v1/integrations/hubspot/mappings"): ("/v1/integrations/hubspot/mappings", {
            "kind": "company", "external_id": "ma-co-2", "holder": {"kind": "customer", "id": ids["c1"]}}),
        ("PATCH", "/v1/integrations/hubspot/mappings/{mapping_id}"): (
            f"/v1/integrations/hubspot/mappings/{ids['crmm1']}", {"note": "n", "holder": {"kind": "office",
                                                                                        "id": ids["o1"]}}),
        ("POST", "/v1/integrations/review-queue/{item_id}/dismiss"): (
            f"/v1/integrations/review-queue/{ids['crmr1']}/dismiss", {"reason": "r"}),
        ("POST", "/v1/deals/import"): ("/v1/deals/import", {"deals": [{
            "id": "ma-deal-1", "holder": {"kind": "customer", "id": ids["c1"]},
            "line_items": [{"sku": "ma-sku", "quantity": 1}]}]}),
        # Outbound webhooks (balance.low: nothing emits it yet, so nothing is delivered behind the test's back)
        ("POST", "/v1/webhook-endpoints"): ("/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/ma",
                                                                      "event_types": ["balance.low"]}),
        ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): (f"/v1/webhook-endpoints/{ids['whep1']}",
                                                           {"description": "changed"}),
    }


def _invoice_bases(ids: dict) -> dict:
    inv, line = f"/v1/invoices/{ids['inv1']}", f"/v1/invoices/{ids['inv1']}/lines/{ids['inl1']}"
    return {
        ("POST", "/v1/invoices"): ("/v1/invoices", {"account_id": ids["acc1"], "notes": "n", "lines": [
            {"product": "ma-product", "quantity": 1, "unit_price": 100, "discount": {"kind": "amount", "value": 1}}]}),
        ("PATCH", "/v1/invoices/{invoice_id}"): (inv, {"notes": "changed"}),
        ("POST", "/v1/invoices/{invoice_id}/lines"): (f"{inv}/lines", {"product": "ma-product", "quantity": 1,
                                                                       "unit_price": 100}),
        ("PATCH", "/v1/invoices/{invoice_id}/lines/{line_id}"): (line, {"quantity": 2}),
        ("POST", "/v1/invoices/{invoice_id}/lines/{line_id}/credits"): (f"{line}/credits", {
            "context": {"kind": "customer", "id": ids["c1"]}, "credit_type": "unit", "quantity": 1}),
        ("POST", "/v1/invoices/{invoice_id}/credit-notes"): (f"/v1/invoices/{ids['inv_posted']}/credit-notes",
                                                             {"amount": 1}),
        ("POST", "/v1/payments"): ("/v1/payments", {"account_id": ids["acc1"], "amount": 5, "allocations": [
            {"invoice_id": ids["inv_posted"], "amount": 5}]}),
        ("POST", "/v1/payments/{payment_id}/allocate"): (f"/v1/payments/{ids['pay1']}/allocate", {}),
        ("POST", "/v1/accounts/{account_id}/credit/apply"): (f"/v1/accounts/{ids['acc_credit']}/credit/apply", {}),
        ("POST", "/v1/accounts/{account_id}/credit/refunds"): (f"/v1/accounts/{ids['acc_credit']}/credit/refunds",
                                                               {"amount": 1, "reason": "r"}),
        # credit packages (issue 13)
        ("POST", "/v1/products/{product}/grant"): ("/v1/products/ma-pkg-free/grant", {
            "holder": {"kind": "customer", "id": ids["c1"]}}),
        ("POST", "/v1/packs/{pack_id}/package-edit"): (f"/v1/packs/{ids['p3']}/package-edit", {"notes": "edited"}),
    }


def _catalogue_objects(c: httpx.Client) -> dict:
    ids = {"pt1": _ok(c.post("/v1/product-types", json={"code": "ma-type", "name": "T", "kind": "service"}))["id"],
           "pf1": _ok(c.post("/v1/product-families", json={"code": "ma-family", "name": "F"}))["id"],
           "tc1": _ok(c.post("/v1/tax-classes", json={"code": "ma-gst", "name": "GST"}))["id"],
           "prod1": _ok(c.post("/v1/products", json={"code": "ma-product", "name": "P", "kind": "service",
                                                     "unit": "each"}))["id"],
           "plan1": _ok(c.post("/v1/price-plans", json={"code": "ma-plan", "name": "Plan", "currency": "AUD"}))["id"]}
    ids["tr1"] = _ok(c.post("/v1/tax-rates", json={"tax_class": "ma-gst", "rate_bp": 1000,
                                                   "valid_from": "2020-01-01"}))["id"]
    return ids


def _catalogue_bases(ids: dict) -> dict:
    package = {"credit_type": "unit", "credit_quantity": 10, "applicable_product_codes": ["ma-product"],
               "expiry": {"kind": "months_after_purchase", "months": 12}}
    return {
        ("POST", "/v1/product-types"): ("/v1/product-types", {"code": "ma-type-2", "name": "T", "kind": "service"}),
        ("PATCH", "/v1/product-types/{type_id}"): (f"/v1/product-types/{ids['pt1']}", {"name": "T2"}),
        ("POST", "/v1/product-families"): ("/v1/product-families", {"code": "ma-family-2", "name": "F"}),
        ("PATCH", "/v1/product-families/{family_id}"): (f"/v1/product-families/{ids['pf1']}", {"name": "F2"}),
        ("POST", "/v1/tax-classes"): ("/v1/tax-classes", {"code": "ma-vat", "name": "VAT"}),
        ("PATCH", "/v1/tax-classes/{class_id}"): (f"/v1/tax-classes/{ids['tc1']}", {"name": "GST 2"}),
        ("POST", "/v1/tax-rates"): ("/v1/tax-rates", {"tax_class": "ma-gst", "rate_bp": 1500,
                                                      "valid_from": "2030-01-01"}),
        ("PATCH", "/v1/tax-rates/{rate_id}"): (f"/v1/tax-rates/{ids['tr1']}", {"rate_bp": 1100}),
        ("POST", "/v1/products"): ("/v1/products", {"code": "ma-package", "name": "Package", "kind": "credit_package",
                                                    "unit": "bundle", "credit_package": package}),
        ("PATCH", "/v1/products/{product}"): (f"/v1/products/{ids['prod1']}", {"name": "P2"}),
        ("POST", "/v1/price-plans"): ("/v1/price-plans", {"code": "ma-plan-2", "name": "Plan", "currency": "EUR"}),
        ("PATCH", "/v1/price-plans/{plan_id}"): (f"/v1/price-plans/{ids['plan1']}", {"name": "Plan 2"}),
        ("PUT", "/v1/price-plans/{plan_id}/prices"): (f"/v1/price-plans/{ids['plan1']}/prices",
                                                      {"product": "ma-product", "unit_price": 1250}),
    }


def _declared(schema: dict, operation: dict) -> set[str]:
    """The fields a request body declares (top level), resolving $ref and Optional bodies."""
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    options = body.get("anyOf", [body])
    names: set[str] = set()
    for option in options:
        if "$ref" in option:
            option = schema["components"]["schemas"][option["$ref"].split("/")[-1]]
        names |= set(option.get("properties", {}))
    return names


def _nested_paths(body: dict) -> list[tuple]:
    """Where nested objects sit in a body: ("holder",), ("packs", 0), ("packs", 0, "holder")."""
    out = []
    for key, value in body.items():
        if isinstance(value, dict):
            out.append((key,))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out.append((key, 0))
            out += [(key, 0) + sub for sub in _nested_paths(value[0])]
    return out


def _inject_nested(body: dict, where: tuple, field: str, value) -> dict:
    import copy

    new = copy.deepcopy(body)
    node = new
    for step in where:
        node = node[step]
    node[field] = value
    return new


def _fingerprint(db, workspace_id: str, client: httpx.Client, path: str | None) -> dict:
    fp = counts(db, workspace_id)
    with db.read() as session:
        fp["ledger_transfers"] = session.scalar(select(func.count()).select_from(LedgerTransfer)
                                                .where(LedgerTransfer.workspace_id == workspace_id))
        fp["packs"] = session.scalar(select(func.count()).select_from(Pack).where(Pack.workspace_id == workspace_id))
    if path is not None:
        r = client.get(path.removesuffix("/capture").removesuffix("/reverse").removesuffix("/void")
                       .removesuffix("/change-holder").removesuffix("/payment"))
        if r.status_code == 200:
            obj = r.json()
            obj.pop("last_used_at", None)
            fp["object"] = obj
    return fp


def test_mass_assignment_is_refused_everywhere(db, live_server, target):
    started = time.monotonic()
    c, ids, ws, other = target["client"], target["ids"], target["ws"], target["other"]
    schema = c.get("/openapi.json").json()
    bases = _bases(ids)
    injections = _injections(other.id)
    writes = [(m.upper(), p, op) for p, ops in schema["paths"].items() for m, op in ops.items()
              if "requestBody" in op]
    missing = [(m, p) for m, p, _ in writes if (m, p) not in bases]
    assert not missing, f"new write endpoints: add a base body for {missing}"
    violations: list[str] = []
    attempted = refused = 0
    for method, template, operation in writes:
        path, base = bases[(method, template)]
        declared = _declared(schema, operation)
        cases = [(f"{field}", {**base, field: value}) for field, value in injections.items() if field not in declared]
        for where in _nested_paths(base):
            for field in ("workspace_id", "remaining", "balance", "status"):  # none declared by a nested object
                cases.append((".".join(map(str, where + (field,))),
                              _inject_nested(base, where, field, other.id if field == "workspace_id" else "x")))
        object_path = path if "{" in template else None
        before = _fingerprint(db, ws.id, c, object_path), counts(db, other.id)
        for label, body in cases:
            attempted += 1
            r = c.request(method, path, json=body)
            code = r.json().get("code") if r.headers.get("content-type", "").endswith("json") else None
            if r.status_code == 422 and code == "unknown_field":
                refused += 1
            else:
                violations.append(f"{method} {template} with {label}: {r.status_code} {code} {r.text[:200]}")
        after = _fingerprint(db, ws.id, c, object_path), counts(db, other.id)
        if before != after:
            violations.append(f"{method} {template}: state changed by refused requests: {before} -> {after}")
        # The base body alone is accepted: the refusals were about the injected fields.
        r = c.request(method, path, json=base)
        if r.status_code not in (200, 201, 202):
            violations.append(f"{method} {template}: the base body itself is refused: {r.status_code} {r.text[:200]}")
    summary.add({"test": "mass assignment", "db": db.dialect, "attempted": attempted, "refused": refused,
                 "violations": len(violations), "seconds": round(time.monotonic() - started, 1),
                 "notes": f"{len(writes)} write endpoints"})
    assert violations == [], "\n".join(violations[:60])
