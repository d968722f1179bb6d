"""Bill communications over the API (seed 002): templates CRUD with a preview for an invoice, communicate a
posted invoice (202, sent after the commit through a real SMTP server on loopback, the PDF attached), a
replay with the same Idempotency-Key sends nothing more, a draft is refused (409 invoice_not_billed), the
lists by customer and invoice; a member reads and previews but is refused writes, and nothing changes."""

from __future__ import annotations

import pytest

from tests.api.helpers import audit_rows
from tests.api.test_billing_accounts import SETTINGS, Api
from tests.notify.conftest import serve_smtp
from tests.parties.factories import make_api_key, make_user, master_actor


@pytest.fixture
def smtp_server(settings_env):
    with serve_smtp(settings_env) as inbox:
        yield inbox


@pytest.fixture
def api(client, workspace):
    return Api(client, workspace.headers)


@pytest.fixture
def bills(api):
    api.patch("/v1/billing/settings", SETTINGS)
    customer = api.post("/v1/customers", {"name": "Acme Widgets", "email": "accounts@acme.example.com"})["id"]
    api.post("/v1/products", {"code": "hours", "name": "Consulting", "kind": "service", "unit": "hour"})
    account = api.post("/v1/accounts", {"customer_id": customer, "name": "Main"})["id"]
    draft = api.post("/v1/invoices", {"account_id": account, "lines": [
        {"product": "hours", "quantity": 2, "unit_price": 15000}]})
    posted = api.post("/v1/invoices", {"account_id": account, "lines": [
        {"product": "hours", "quantity": 1, "unit_price": 15000}]})
    posted = api.post(f"/v1/invoices/{posted['id']}/post", status=200)
    template = api.post("/v1/communication-templates", {
        "name": "Bill", "subject": "Your invoice {{ invoice.number }}",
        "body": "Hello {{ customer.name }}, {{ invoice.amount_due }} is due by {{ invoice.due_date }}."})
    return {"customer": customer, "account": account, "draft": draft["id"], "posted": posted,
            "template": template["id"]}


def test_communicate_a_bill_once_with_its_pdf(api, db, workspace, bills, smtp_server):
    inv = bills["posted"]
    body = {"to": "accounts@acme.example.com", "template_id": bills["template"]}
    first = api.post(f"/v1/invoices/{inv['id']}/communicate", body, status=202, key="bill-1")
    assert (first["status"], first["to"], first["customer_id"], first["invoice_id"]) == (
        "sent", "accounts@acme.example.com", bills["customer"], inv["id"])
    assert first["subject"] == f"Your invoice {inv['number']}" and first["attachments"] == [f"{inv['number']}.pdf"]
    assert "$150.00 is due by" in first["body"]
    again = api.client.post(f"/v1/invoices/{inv['id']}/communicate", json=body,
                            headers={**api.headers, "Idempotency-Key": "bill-1"})
    assert again.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first["id"]
    [message] = smtp_server.to("accounts@acme.example.com")
    [pdf] = list(message.iter_attachments())
    assert pdf.get_filename() == f"{inv['number']}.pdf" and pdf.get_content().startswith(b"%PDF")
    assert api.get(f"/v1/communications/{first['id']}") == first
    listed = api.get(f"/v1/communications?customer_id={bills['customer']}")["data"]
    assert [c["id"] for c in listed] == [first["id"]]
    assert api.get(f"/v1/communications?invoice_id={bills['draft']}")["data"] == []
    assert [c["id"] for c in api.get("/v1/communications?status=sent")["data"]] == [first["id"]]
    assert len(audit_rows(db, workspace.id, action="communication.create")) == 1


def test_inline_content_preview_and_a_draft_is_not_a_bill(api, bills, smtp_server):
    inv = bills["posted"]
    preview = api.post("/v1/communication-templates/preview", {
        "invoice_id": inv["id"], "template_id": bills["template"], "subject": "Re: {{ invoice.number }}"}, status=200)
    assert preview["subject"] == f"Re: {inv['number']}" and "Acme Widgets" in preview["body"]
    assert preview["attachments"] == [f"{inv['number']}.pdf"]
    refused = api.post(f"/v1/invoices/{bills['draft']}/communicate", {
        "to": "accounts@acme.example.com", "template_id": bills["template"]}, status=409)
    assert refused["code"] == "invoice_not_billed"
    assert api.post(f"/v1/invoices/{inv['id']}/communicate", {"to": "not-an-email", "subject": "S", "body": "B"},
                    status=422)["code"] == "validation_error"
    assert api.post(f"/v1/invoices/{inv['id']}/communicate", {"to": "a@example.com"},
                    status=422)["code"] == "content_required"
    sent = api.post(f"/v1/invoices/{inv['id']}/communicate", {
        "to": "someone.else@example.com", "subject": "Invoice {{ invoice.number }}", "body": "See attached."},
        status=202)
    assert sent["template_id"] is None and sent["status"] == "sent"
    assert [m["To"] for m in smtp_server.messages] == ["someone.else@example.com"]


def test_templates_crud_and_the_sandbox(api, bills):
    tid = bills["template"]
    assert api.patch(f"/v1/communication-templates/{tid}", {"name": "Bill (en)"})["name"] == "Bill (en)"
    unsafe = api.patch(f"/v1/communication-templates/{tid}", {"body": "{{ customer.__class__.__mro__ }}"},
                       status=422)
    assert unsafe["code"] == "template_unsafe"
    assert api.get(f"/v1/communication-templates/{tid}")["body"].startswith("Hello")
    taken = api.post("/v1/communication-templates", {"name": "Bill (en)", "subject": "S", "body": "B"}, status=409)
    assert taken["code"] == "template_name_taken"
    deleted = api.call("DELETE", f"/v1/communication-templates/{tid}", status=200)
    assert deleted["archived"] is True
    assert api.get("/v1/communication-templates")["data"] == []
    assert [t["id"] for t in api.get("/v1/communication-templates?include_archived=true")["data"]] == [tid]
    archived = api.post(f"/v1/invoices/{bills['posted']['id']}/communicate", {
        "to": "a@example.com", "template_id": tid}, status=422)
    assert archived["code"] == "template_archived"


def test_a_member_reads_but_cannot_send_or_edit(api, client, db, workspace, bills, smtp_server):
    actor = master_actor(db, workspace.id)
    member = make_user(db, actor=actor, name="Mel Member", role="member", permissions=["consume_credits"])
    them = Api(client, {"Authorization": f"Bearer {make_api_key(db, actor=actor, user_id=member)}"})
    inv = bills["posted"]
    before = audit_rows(db, workspace.id)
    assert them.post(f"/v1/invoices/{inv['id']}/communicate", {
        "to": "accounts@acme.example.com", "template_id": bills["template"]}, status=403)["code"] == "not_permitted"
    assert them.post("/v1/communication-templates", {"name": "Mine", "subject": "S", "body": "B"},
                     status=403)["code"] == "not_permitted"
    them.call("DELETE", f"/v1/communication-templates/{bills['template']}", status=403)
    assert len(audit_rows(db, workspace.id)) == len(before)
    assert smtp_server.messages == []
    assert api.get("/v1/communications")["data"] == []
    assert [t["id"] for t in them.get("/v1/communication-templates")["data"]] == [bills["template"]]
    assert them.post("/v1/communication-templates/preview", {"invoice_id": inv["id"],
                                                             "template_id": bills["template"]}, status=200)


def test_another_workspaces_objects_are_not_found(api, client, other_workspace, bills):
    them = Api(client, other_workspace.headers)
    assert them.get(f"/v1/communication-templates/{bills['template']}", status=404)["code"] == "not_found"
    assert them.post("/v1/communication-templates/preview", {"invoice_id": bills["posted"]["id"], "subject": "S",
                                                             "body": "B"}, status=404)["code"] == "not_found"
