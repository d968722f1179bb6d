"""Settings > Low balance in the back office: masters set thresholds in the credit type's unit (every problem
next to its field at once, nothing stored on errors), remove them, and everyone reads the thresholds and the
latest crossings; other roles are refused the writes as the API refuses them."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import select

from creditdesk.credits import consumptions, low_balance
from creditdesk.credits import schemas as cs
from creditdesk.credits.low_balance_models import BalanceThreshold
from tests.parties.factories import master_actor
from tests.web.conftest import logged_in, post_form

PAGE = "/settings/low-balance"


def _thresholds(db, workspace_id: str) -> list:
    with db.read() as session:
        return [SimpleNamespace(id=r.id, holder_kind=r.holder_kind, holder_id=r.holder_id, threshold=r.threshold,
                                active=r.active)
                for r in session.scalars(select(BalanceThreshold).where(BalanceThreshold.workspace_id == workspace_id))]


def test_emails_page_links_to_the_screen_instead_of_the_endpoint(web, world):
    client = logged_in(web, world.master_email)
    emails = client.get("/settings/emails").text
    assert f'href="{PAGE}"' in emails and "/v1/balance-thresholds" not in emails
    assert 'id="low-balance-link"' in client.get("/settings").text


def test_master_sets_a_threshold_in_hours_and_a_crossing_is_listed(web, db, world):
    client = logged_in(web, world.master_email)
    saved = post_form(client, PAGE, {"credit_type": "hours", "holder": f"office:{world.london_id}",
                                     "threshold": "44", "top_up_count": "1"}, page=PAGE)
    assert saved.status_code == 303, saved.text
    [row] = _thresholds(db, world.workspace_id)
    assert (row.holder_kind, row.holder_id, row.threshold, row.active) == ("office", world.london_id, 4400, True)
    page = client.get(PAGE).text
    listed = page.split('id="thresholds"', 1)[1].split("</section>", 1)[0]
    assert "London" in listed and "44.00" in listed and "Work hours" in listed
    assert "No balance has fallen below" in page
    # London holds 40 h + 5 h: spending 2.5 h takes it to 42.5 h, below 44 h.
    db.write(lambda s: consumptions.consume(s, cs.ConsumeRequest(
        context={"kind": "project", "id": world.project_id}, credit_type="hours", amount=250,
        reference={"kind": "project", "id": world.project_id}), actor=master_actor(db, world.workspace_id)))
    crossings = client.get(PAGE).text.split('id="crossings"', 1)[1]
    assert "London" in crossings and "45.00" in crossings and "42.50" in crossings
    assert "No balance has fallen below" not in crossings


def test_every_problem_next_to_its_field_and_nothing_stored(web, db, world):
    client = logged_in(web, world.master_email)
    refused = post_form(client, PAGE, {"credit_type": "hours", "holder": "office:", "threshold": "1.234",
                                       "top_up_count": "0"}, page=PAGE)
    assert refused.status_code == 422
    html = refused.text
    for name in ("holder", "threshold", "top_up_count"):
        assert f'id="err-{name}"' in html, name
        assert f'aria-describedby="err-{name}"' in html, name
    assert 'value="1.234"' in html  # what was typed stays
    no_type = post_form(client, PAGE, {"credit_type": "", "holder": "any", "threshold": "5"}, page=PAGE)
    assert no_type.status_code == 422 and 'id="err-credit_type"' in no_type.text
    wrong_package = post_form(client, PAGE, {"credit_type": "hours", "holder": "any", "threshold": "5",
                                             "top_up_package": "no-such-package"}, page=PAGE)
    assert wrong_package.status_code in (404, 422)
    for html in (refused.text, no_type.text, wrong_package.text):
        assert "Input should" not in html and "/v1/" not in html.split("<main", 1)[-1]
    assert _thresholds(db, world.workspace_id) == []


def test_default_threshold_and_removal(web, db, world):
    client = logged_in(web, world.master_email)
    saved = post_form(client, PAGE, {"credit_type": "hours", "holder": "any", "threshold": "2.5"}, page=PAGE)
    assert saved.status_code == 303, saved.text
    [row] = _thresholds(db, world.workspace_id)
    assert (row.holder_kind, row.holder_id) == low_balance.ANY and row.threshold == 250
    assert "Every holder without its own threshold" in client.get(PAGE).text
    removed = post_form(client, f"{PAGE}/{row.id}/remove", {}, page=PAGE)
    assert removed.status_code == 303
    assert _thresholds(db, world.workspace_id) == []


def test_other_roles_read_but_cannot_set(web, db, world):
    master = logged_in(web, world.master_email)
    post_form(master, PAGE, {"credit_type": "hours", "holder": "any", "threshold": "3"}, page=PAGE)
    [row] = _thresholds(db, world.workspace_id)
    web.cookies.clear()
    manager = logged_in(web, world.manager_email)
    page = manager.get(PAGE)
    assert page.status_code == 200 and "3.00" in page.text and 'id="threshold-set"' not in page.text
    refused = post_form(manager, PAGE, {"credit_type": "hours", "holder": "any", "threshold": "1"}, page=PAGE)
    assert refused.status_code == 403
    removal = post_form(manager, f"{PAGE}/{row.id}/remove", {"idempotency_key": "k" * 24}, page=PAGE)
    assert removal.status_code == 403
    [still] = _thresholds(db, world.workspace_id)
    assert still.threshold == 300 and still.active
