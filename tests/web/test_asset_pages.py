"""Account assets in the back office (seed 004): the account page's Assets section with Transfer ownership,
Return and Import, the asset page with its history, Finance > Assets; a double submit acts once."""

from __future__ import annotations

from sqlalchemy import func, select

from creditdesk.billing import asset_schemas as s
from creditdesk.billing import assets
from creditdesk.billing.asset_models import AssetEvent
from tests.billing.factories import configure, make_account
from tests.parties.factories import make_customer, master_actor
from tests.web.conftest import csrf_of, logged_in, once_key_of, post_form


def test_assets_section_transfer_return_import_and_history(web, db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    first = make_account(db, actor=actor, customer_id=world.customer_id, name="Shop")
    second = make_account(db, actor=actor, customer_id=make_customer(db, actor=actor, name="Owner Co"), name="Owner")
    one, two = [db.write(lambda session, n=n: assets.import_asset(session, s.AssetImport(
        account_id=first.id, description=f"Modem {n}", warranty_ends_on="2028-01-31"), actor=actor).id)
        for n in (1, 2)]
    client = logged_in(web, world.master_email)
    url = f"/accounts/{first.id}"
    page = client.get(url).text
    assert 'id="account-assets"' in page and "Modem 1" in page and "Owned by customer" in page
    data = {"asset_id": [one], "to_account_id": second.id, "note": "moved", "csrf_token": csrf_of(page),
            "idempotency_key": once_key_of(page)}
    a = client.post(f"{url}/assets/transfer", data=data, follow_redirects=False)
    b = client.post(f"{url}/assets/transfer", data=data, follow_redirects=False)  # the same form twice: once
    assert a.status_code == b.status_code == 303, a.text
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(AssetEvent).where(
            AssetEvent.asset_id == one, AssetEvent.kind == "transferred")) == 1
    page = client.get(url).text
    assert "Modem 1" in page.split('id="assets-before"', 1)[1]  # the first owner's history keeps it
    assert f"{second.number}" in client.get(f"/assets/{one}").text
    history = client.get(f"/assets/{one}").text
    assert "Ownership transferred" in history and "2028-01-31" in history
    # A customer-owned item is not returned: the reason is shown, nothing changes.
    refused = post_form(client, f"{url}/assets/return", {"asset_id": [two]}, page=url)
    assert refused.status_code == 409 and "stays with the account" in refused.text
    imported = post_form(client, f"{url}/assets/import", {"description": "Set-top box", "serial_number": "B-7"},
                         page=url)
    assert imported.status_code == 303
    listing = client.get("/finance/assets").text
    assert "Set-top box" in listing and "Modem 1" in listing and 'href="/finance/assets"' in listing
