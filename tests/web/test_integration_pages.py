"""Settings > Integrations in the back office (issue 16): HubSpot settings (the secret never shown), mappings,
and the review queue: a deal of an unmapped company waits there, mapping it and Retry makes its one pack
(a double submit acts once), Dismiss; a member without grant rights sees no buttons and is refused."""

from __future__ import annotations

from sqlalchemy import func, select

from creditdesk.credits.models import Pack
from creditdesk.integrations import deals
from creditdesk.integrations import schemas as s
from creditdesk.integrations.models import CrmReviewItem
from tests.parties.factories import master_actor
from tests.web.conftest import csrf_of, logged_in, once_key_of, post_form

PAGE = "/settings/integrations"


def _package(db, actor):
    from creditdesk.catalog import schemas as cat
    from creditdesk.catalog import service as catalog

    def fn(session):
        catalog.create_product(session, cat.ProductCreate.model_validate({
            "code": "web-svc", "name": "Service", "kind": "service", "unit": "hour"}), actor=actor)
        catalog.create_product(session, cat.ProductCreate.model_validate({
            "code": "web-hours", "name": "Web hours", "kind": "credit_package", "unit": "pack", "credit_package": {
                "credit_type": "hours", "credit_quantity": 1000, "applicable_product_codes": ["web-svc"],
                "expiry": {"kind": "months_after_purchase", "months": 6}}}), actor=actor)
    db.write(fn)


def _review_item(db, actor, company: str) -> str:
    result = db.write(lambda session: deals.import_deals(session, s.DealImport(deals=[s.DealIn(
        id=f"deal-{company}", name="Website deal", company_id=company,
        line_items=[s.LineItemIn(sku="WEB-H", quantity=2)])]), actor=actor))
    return result.deals[0].review_item_id


def test_settings_mappings_and_the_review_queue(web, db, world):
    actor = master_actor(db, world.workspace_id)
    _package(db, actor)
    client = logged_in(web, world.master_email)
    assert 'href="/settings/integrations"' in client.get("/settings").text
    saved = post_form(client, f"{PAGE}/hubspot", {"client_secret": "web-secret-12345", "won_stage": "closedwon",
                                                  "enabled": "on"}, page=PAGE)
    assert saved.status_code == 303, saved.text
    page = client.get(PAGE).text
    assert "stored (never shown)" in page and "web-secret-12345" not in page
    added = post_form(client, f"{PAGE}/mappings", {"kind": "sku", "external_id": "WEB-H", "product": "web-hours"},
                      page=PAGE)
    assert added.status_code == 303, added.text
    refused = post_form(client, f"{PAGE}/mappings", {"kind": "sku", "external_id": "WEB-X", "product": ""}, page=PAGE)
    assert refused.status_code == 422 and "credit package" in refused.text
    item = _review_item(db, actor, "web-co-1")
    page = client.get(PAGE).text
    assert "import:deal:deal-web-co-1" in page and "unknown_company" in page and f"review-{item}" in page
    # Retry before the company is mapped: the reason, nothing made.
    still = post_form(client, f"{PAGE}/review/{item}/retry", {}, page=PAGE)
    assert still.status_code == 409 and "still cannot become a pack" in still.text
    post_form(client, f"{PAGE}/mappings", {"kind": "company", "external_id": "web-co-1",
                                           "holder": f"office:{world.london_id}"}, page=PAGE)
    page = client.get(PAGE).text
    form = {"csrf_token": csrf_of(page), "idempotency_key": once_key_of(page.split(f'review-{item}', 1)[1])}
    first = client.post(f"{PAGE}/review/{item}/retry", data=form, follow_redirects=False)
    second = client.post(f"{PAGE}/review/{item}/retry", data=form, follow_redirects=False)  # a double click
    assert first.status_code == second.status_code == 303, first.text
    with db.read() as session:
        made = session.scalars(select(Pack).where(Pack.workspace_id == world.workspace_id,
                                                  Pack.external_ref == "import:deal:deal-web-co-1")).all()
        assert [(p.holder_id, p.quantity) for p in made] == [(world.london_id, 2000)]
        assert session.get(CrmReviewItem, item).status == "resolved"
    assert "Nothing to review" in client.get(PAGE).text
    # Dismiss another.
    other = _review_item(db, actor, "web-co-2")
    dismissed = post_form(client, f"{PAGE}/review/{other}/dismiss", {"reason": "sold by hand"}, page=PAGE)
    assert dismissed.status_code == 303
    assert "sold by hand" in client.get(f"{PAGE}?status=dismissed").text


def test_a_member_reads_the_queue_without_buttons_and_is_refused(web, db, world):
    actor = master_actor(db, world.workspace_id)
    _package(db, actor)
    item = _review_item(db, actor, "web-co-3")
    client = logged_in(web, world.member_email)
    page = client.get(PAGE).text
    assert "import:deal:deal-web-co-3" in page
    assert f"/review/{item}/retry" not in page and 'id="mapping-form"' not in page
    refused = post_form(client, f"{PAGE}/review/{item}/dismiss", {"reason": "x"}, page=PAGE)
    assert refused.status_code == 403
    with db.read() as session:
        assert session.get(CrmReviewItem, item).status == "open"
        assert session.scalar(select(func.count()).select_from(CrmReviewItem).where(
            CrmReviewItem.workspace_id == world.workspace_id)) == 1
