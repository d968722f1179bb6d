"""Credit control pages (TestClient): the account's Actions menu and forms (errors next to fields, one-time keys),
the credit limit status on the list and the page, Finance > Credit ratings and Override rules; who sees what."""

from __future__ import annotations

from creditdesk.billing import postings
from creditdesk.billing.models import BillingAccount
from creditdesk.currencies import format_money
from tests.api.helpers import audit_rows
from tests.billing.factories import configure, make_account
from tests.parties.factories import master_actor
from tests.web.conftest import csrf_of, logged_in, once_key_of, post_form


def _account(db, world, amount=0):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    account = make_account(db, actor=actor, customer_id=world.customer_id, classification="Corporate")
    if amount:
        db.write(lambda s: postings.post_account_entry(s, s.get(BillingAccount, account.id), amount, "debit",
                                                       "invoice"))
    return account


def test_ratings_terms_status_and_rules(web, db, world):
    account = _account(db, world, amount=150_000)
    client = logged_in(web, world.master_email)
    ratings = "/finance/credit-ratings"
    page = client.get(ratings).text
    assert "No credit rating yet." in page and "Limit AUD" in page
    bad = post_form(client, ratings, {"code": "C", "name": "Cautious", "limit_AUD": "12.345"}, page=ratings)
    assert bad.status_code == 422 and 'id="err-limit_AUD"' in bad.text
    r = post_form(client, ratings, {"code": "C", "name": "Cautious", "limit_AUD": "1000.00", "limit_EUR": ""},
                  page=ratings)
    assert r.status_code == 303, r.text
    assert "Cautious" in client.get(ratings).text
    url = f"/accounts/{account.id}"
    page = client.get(url).text
    assert 'id="account-actions"' in page and "Change credit terms" in page and "Suspend" in page
    assert "Not exceeded" in page  # no limit yet
    rating_id = next(line.split('value="')[1].split('"')[0] for line in client.get(f"{url}/credit-terms").text
                     .splitlines() if "Cautious" in line and "option" in line)
    bad = post_form(client, f"{url}/credit-terms", {"credit_period_days": "99", "credit_rating_id": rating_id,
                                                    "credit_limit": ""}, page=f"{url}/credit-terms")
    assert bad.status_code == 422 and 'id="err-credit_period_days"' in bad.text and "between 14 and 60" in bad.text
    r = post_form(client, f"{url}/credit-terms", {"credit_period_days": "45", "credit_rating_id": rating_id,
                                                  "credit_limit": ""}, page=f"{url}/credit-terms")
    assert r.status_code == 303, r.text
    page = client.get(url).text
    assert "Exceeded" in page and format_money(100_000, "AUD") in page and "45 days" in page
    assert account.number in client.get("/accounts?credit_limit_status=exceeded").text
    assert account.number not in client.get("/accounts?credit_limit_status=not_exceeded").text
    rules = "/finance/override-rules"
    bad = post_form(client, rules, {"name": "No events"}, page=rules)
    assert bad.status_code == 422 and 'id="err-events"' in bad.text
    r = post_form(client, rules, {"name": "Corporate invoices", "events": ["invoice_post"],
                                  "classifications": "Corporate, Key account", "credit_rating_ids": [rating_id]},
                  page=rules)
    assert r.status_code == 303, r.text
    page = client.get(rules).text
    assert "Corporate invoices" in page and "Corporate, Key account" in page and "Deactivate" in page


def test_suspend_reactivate_write_off_terminate_once(web, db, world):
    account = _account(db, world, amount=5_000)
    client = logged_in(web, world.master_email)
    url = f"/accounts/{account.id}"
    html = client.get(f"{url}/suspend").text
    data = {"reason": "credit_check", "note": "", "csrf_token": csrf_of(html), "idempotency_key": once_key_of(html)}
    first = client.post(f"{url}/suspend", data=data, follow_redirects=False)
    second = client.post(f"{url}/suspend", data=data, follow_redirects=False)  # the same form twice: once
    assert first.status_code == second.status_code == 303
    assert len(audit_rows(db, world.workspace_id, action="account.suspend")) == 1
    page = client.get(url).text
    assert "suspended" in page and "Credit check" in page and "Reactivate" in page
    again = post_form(client, f"{url}/suspend", {"reason": "dispute"}, page=f"{url}/suspend")
    assert again.status_code == 409 and "already suspended" in again.text
    assert post_form(client, f"{url}/reactivate", {}, page=f"{url}/reactivate").status_code == 303
    refused = post_form(client, f"{url}/terminate", {}, page=f"{url}/terminate")
    assert refused.status_code == 409 and "write it off" in refused.text
    bad = post_form(client, f"{url}/write-off", {"reason": ""}, page=f"{url}/write-off")
    assert bad.status_code == 422 and 'id="err-reason"' in bad.text
    assert post_form(client, f"{url}/write-off", {"reason": "Insolvent"}, page=f"{url}/write-off").status_code == 303
    assert post_form(client, f"{url}/terminate", {}, page=f"{url}/terminate").status_code == 303
    page = client.get(url).text
    assert "terminated" in page and 'id="account-actions"' not in page


def test_managers_suspend_members_only_read(web, db, world):
    account = _account(db, world)
    url = f"/accounts/{account.id}"
    manager = logged_in(web, world.manager_email)
    page = manager.get(url).text
    assert "Suspend" in page and "Change credit terms" not in page and "Terminate" not in page
    assert manager.get(f"{url}/credit-terms").status_code == 403
    assert manager.get(f"{url}/terminate").status_code == 403
    assert post_form(manager, f"{url}/terminate", {}, page=f"{url}/suspend").status_code == 403
    assert post_form(manager, f"{url}/suspend", {"reason": "dispute"}, page=f"{url}/suspend").status_code == 303
    manager.cookies.clear()
    member = logged_in(manager, world.member_email)
    page = member.get(url).text
    assert 'id="account-actions"' not in page
    assert member.get(f"{url}/reactivate").status_code == 403
    assert post_form(member, f"{url}/reactivate", {}, page="/finance/override-rules").status_code == 403
    assert "Create credit rating" not in member.get("/finance/credit-ratings").text
    assert post_form(member, "/finance/credit-ratings", {"code": "X", "name": "X"},
                     page="/finance/credit-ratings").status_code == 403
