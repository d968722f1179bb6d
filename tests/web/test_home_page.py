"""The home page (issue 17): what needs attention, each count with its first items and a link to the list that
counts the same things: packs expiring this month, packs under 20 % left, overdue invoices, my activities.
Logging in lands there; "/" too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from creditdesk import clock
from creditdesk.credits import packs
from creditdesk.credits import schemas as cs
from tests.credits.helpers import consume
from tests.parties.factories import master_actor
from tests.web.conftest import login


def _grant(db, actor, holder: dict, name: str, quantity: int, **kw):
    return db.write(lambda s: packs.grant_pack(s, cs.PackCreate(holder=holder, credit_type="hours",
                                                                quantity=quantity, name=name, **kw), actor=actor))


def _section(page: str, section_id: str) -> str:
    return page.split(f'id="{section_id}"', 1)[1].split("</section>", 1)[0]


def test_home_counts_what_needs_attention_and_links_to_it(web, db, world, frozen_clock):
    # The world's own packs were made on the real clock: in March 2027 the one that expired soon has expired.
    frozen_clock.set(datetime(2027, 3, 10, 12, 0, tzinfo=UTC))
    actor = master_actor(db, world.workspace_id)
    office = {"kind": "office", "id": world.london_id}
    _grant(db, actor, office, "Ends this month", 1000, expires_at=clock.now() + timedelta(days=5))
    _grant(db, actor, office, "Ends next month", 1000, expires_at=clock.now() + timedelta(days=30))
    _grant(db, actor, {"kind": "workspace"}, "Pool nearly used", 10_000)
    consume(db, actor, "workspace", None, 8_500, credit_type="hours")
    response = login(web, world.master_email)
    assert response.status_code == 303 and response.headers["location"] == "/home"
    page = web.get("/home").text
    expiring = _section(page, "home-expiring")
    assert "Ends this month" in expiring and "Ends next month" not in expiring
    assert 'id="expiring-count">1<' in expiring
    assert "expires_from=2027-03-10" in expiring and "expires_to=2027-03-31" in expiring
    # The link's list shows the same pack: the report counts what the home page counted.
    link = expiring.split('href="', expiring.count('href="'))[-1].split('"', 1)[0].replace("&amp;", "&")
    report = web.get(link).text
    assert "Ends this month" in report and "Ends next month" not in report
    low = _section(page, "home-low")
    assert "Pool nearly used" in low and "15.00 of 100.00 hours left" in low
    assert "Ends this month" not in low
    assert web.get("/", follow_redirects=False).headers["location"] == "/home"


def test_a_member_sees_the_home_page_of_what_they_may_see(web, db, world):
    login(web, world.member_email)
    page = web.get("/home")
    assert page.status_code == 200 and "Needs attention" in page.text
