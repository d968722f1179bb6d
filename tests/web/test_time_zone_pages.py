"""The back office in the workspace's time zone (issue 17): the grant form's bare expiry date is the end of that
day where the business is; pages show moments in the zone with the UTC moment in the tooltip."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select

from creditdesk import clock, timezones
from creditdesk.credits.models import Pack
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from tests.parties.factories import master_actor
from tests.web.conftest import csrf_of, logged_in, once_key_of

SYDNEY = timezones.zone("Australia/Sydney")
END_OF_31_JAN_SYDNEY = datetime(2027, 1, 31, 12, 59, 59, tzinfo=UTC)


def test_the_form_means_the_same_day_and_pages_show_the_zone_with_utc_in_the_tooltip(db, web, world):
    actor = master_actor(db, world.workspace_id)
    db.write(lambda s: parties.update_workspace(s, ps.WorkspaceUpdate(time_zone="Australia/Sydney"), actor=actor))
    client = logged_in(web, world.master_email)
    html = client.get("/packs/new").text
    r = client.post("/packs/new", data={
        "csrf_token": csrf_of(html), "idempotency_key": once_key_of(html), "holder": f"office:{world.leeds_id}",
        "credit_type": "hours", "quantity": "2", "name": "Form pack", "source": "manual", "priority": "100",
        "is_paid": "auto", "expires_at": "2027-01-31"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    with db.read() as s:
        pack = s.scalar(select(Pack).where(Pack.workspace_id == world.workspace_id, Pack.name == "Form pack"))
        assert clock.aware(pack.expires_at) == END_OF_31_JAN_SYDNEY
        pack_id = pack.id
    page = client.get(f"/packs/{pack_id}").text
    assert "2027-01-31" in page  # the day people chose, not 2027-01-31 12:59 UTC's neighbour
    # Moments in the zone (AEDT/AEST), the UTC moment in the tooltip.
    stamps = re.findall(r'<time datetime="([^"]+)Z" title="([^"]+) UTC">([^<]+)</time>', page)
    assert stamps, page[:2000]
    for machine, utc_text, shown in stamps:
        moment = datetime.fromisoformat(machine).replace(tzinfo=UTC)
        assert utc_text == moment.strftime("%Y-%m-%d %H:%M")
        local = moment.astimezone(SYDNEY)
        assert shown == local.strftime("%Y-%m-%d %H:%M ") + local.tzname()
    settings = client.get("/settings").text
    assert "Australia/Sydney" in settings.split('id="workspace-time-zone"', 1)[1][:100]


def test_the_history_dialog_shows_the_same_zone_as_the_pages(db, web, world):
    """The report's eye icon loads the history as a fragment: it used UTC while every page used the zone."""
    actor = master_actor(db, world.workspace_id)
    db.write(lambda s: parties.update_workspace(s, ps.WorkspaceUpdate(time_zone="Australia/Sydney"), actor=actor))
    client = logged_in(web, world.master_email)
    fragment = client.get(f"/packs/{world.london_pack}/history?fragment=1").text
    page = client.get(f"/packs/{world.london_pack}/history").text
    shown = re.findall(r'<time datetime="[^"]+Z" title="[^"]+ UTC">([^<]+)</time>', fragment)
    assert shown, fragment[:1500]
    assert all(text.endswith(("AEDT", "AEST")) for text in shown), shown
    assert shown == re.findall(r'<time datetime="[^"]+Z" title="[^"]+ UTC">([^<]+)</time>', page)[:len(shown)]


def test_why_a_pack_cannot_pay_names_the_day_where_the_business_is(db, web, world):
    """The project's near misses: a pack expiring at the end of 31 January in Sydney is 12:59 UTC that day; one
    starting on 1 February in Sydney starts at 13:00 UTC on 31 January, which UTC's date called the 31st."""
    from creditdesk.credits import packs
    from creditdesk.credits import schemas as cs

    actor = master_actor(db, world.workspace_id)
    db.write(lambda s: parties.update_workspace(s, ps.WorkspaceUpdate(time_zone="Australia/Sydney"), actor=actor))
    start = datetime(2099, 1, 31, 13, 0, tzinfo=UTC)  # 00:00 on 1 February 2099 in Sydney (AEDT)
    db.write(lambda s: packs.grant_pack(s, cs.PackCreate(
        holder={"kind": "office", "id": world.leeds_id}, credit_type="hours", quantity=100, name="Later pack",
        starts_at=start), actor=actor))
    page = logged_in(web, world.master_email).get(f"/projects/{world.project_id}?credit_type=hours").text
    assert "Later pack" in page
    assert "starts on 2099-02-01" in page and "starts on 2099-01-31" not in page
