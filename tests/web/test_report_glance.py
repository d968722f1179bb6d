"""The active packs report at a glance (issue 17, seed 000's core screen): the count and totals per credit type
for the filters, the presets (expiring in 30 days, under 20 % left, not started), a "not started yet" badge,
expiry pills and % used, previous/next with the position, aria-sort on the sorted header; all in the URL."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

from creditdesk.credits import packs
from creditdesk.credits import schemas as cs
from creditdesk.web import packs as web_packs
from tests.parties.factories import master_actor
from tests.web.conftest import logged_in

# The world (tests/web/conftest.py): active packs of hours london 40.00, wendy 10.00, leeds 20.00 and soon 5.00
# (expires in 10 days); an expired one the report leaves out.


def _grant(db, world, name, quantity, **extra):
    actor = master_actor(db, world.workspace_id)
    return db.write(lambda s: packs.grant_pack(s, cs.PackCreate(
        holder=cs.Holder(kind="office", id=world.leeds_id), credit_type="hours", quantity=quantity, name=name,
        **extra), actor=actor).id)


def _text(response) -> str:
    return html.unescape(response.text)


def test_count_and_totals_per_credit_type_follow_the_filters(web, db, world):
    client = logged_in(web, world.master_email)
    page = _text(client.get("/credits"))
    assert re.search(r'id="result-count">4 packs<', page), page[page.find("report-summary"):][:400]
    assert "Work hours</strong>: 75.00 remaining of 75.00" in page
    office = _text(client.get(f"/credits?office_id={world.leeds_id}"))
    assert 'id="result-count">1 pack<' in office and "20.00 remaining of 20.00" in office


def test_presets_select_exactly_their_packs(web, db, world):
    late = _grant(db, world, "Starts next month", 100, starts_at=datetime.now(UTC) + timedelta(days=30))
    client = logged_in(web, world.master_email)
    page = _text(client.get("/credits"))
    links = dict(re.findall(r'id="preset-([a-z0-9-]+)" href="([^"]+)"', page))
    assert set(links) == {"expiring-30", "left-20", "not-started"}
    expiring = _text(client.get(links["expiring-30"]))
    assert "London top-up" in expiring and "London content pack" not in expiring
    assert 'id="preset-expiring-30"' in expiring and 'aria-current="true"' in expiring
    assert 'id="result-count">1 pack<' in expiring
    not_started = _text(client.get(links["not-started"]))
    assert 'id="result-count">1 pack<' in not_started and "Starts next month" in not_started
    assert "not started yet" in not_started
    # Under 20 % left: use 9.00 of Leeds' 20.00 hours -> 55 % left (not listed); then 17.00 -> 15 % (listed).
    actor = master_actor(db, world.workspace_id)
    consume = cs.ConsumeRequest.model_validate({"context": {"kind": "office", "id": world.leeds_id},
                                                "credit_type": "hours", "amount": 900})
    from creditdesk.credits import consumptions

    db.write(lambda s: consumptions.consume(s, consume, actor=actor))
    assert "Leeds starter pack" not in _text(client.get(links["left-20"]))
    more = cs.ConsumeRequest.model_validate({"context": {"kind": "office", "id": world.leeds_id},
                                             "credit_type": "hours", "amount": 800})
    db.write(lambda s: consumptions.consume(s, more, actor=actor))
    left = _text(client.get(links["left-20"]))
    assert "Leeds starter pack" in left and "85 % used" in left
    assert late  # granted


def test_previous_and_next_with_the_position(web, db, world):
    for n in range(60):
        _grant(db, world, f"Bulk pack {n:02d}", 100)
    client = logged_in(web, world.master_email)
    first = _text(client.get("/credits?limit=25&sort=name&order=asc"))
    assert 'id="previous-page"' not in first
    assert "Page 1 · packs 1–25 of 64" in first
    names_1 = re.findall(r'href="/packs/pack_[^"?]+\?back=[^"]*">([^<]+)</a>', first)
    second_url = html.unescape(re.search(r'id="next-page" href="([^"]+)"', first).group(1))
    second = _text(client.get(second_url))
    assert "Page 2 · packs 26–50 of 64" in second
    third = _text(client.get(html.unescape(re.search(r'id="next-page" href="([^"]+)"', second).group(1))))
    assert "Page 3 · packs 51–64 of 64" in third and 'id="next-page"' not in third
    back = _text(client.get(html.unescape(re.search(r'id="previous-page" href="([^"]+)"', third).group(1))))
    assert "Page 2 · packs 26–50 of 64" in back
    assert re.findall(r'href="/packs/pack_[^"?]+\?back=[^"]*">([^<]+)</a>', back) == \
        re.findall(r'href="/packs/pack_[^"?]+\?back=[^"]*">([^<]+)</a>', second)
    start = _text(client.get(html.unescape(re.search(r'id="previous-page" href="([^"]+)"', back).group(1))))
    assert re.findall(r'href="/packs/pack_[^"?]+\?back=[^"]*">([^<]+)</a>', start) == names_1
    # The sorted header says so to assistive technology; the others say nothing.
    assert len(re.findall(r'aria-sort="ascending"', first)) == 1
    assert re.search(r'<th[^>]*aria-sort="ascending"[^>]*>\s*<a[^>]*>Pack', first)


def test_a_count_past_the_cap_says_more_than(web, db, world, monkeypatch):
    monkeypatch.setattr(web_packs, "TOTALS_CAP", 2)
    client = logged_in(web, world.master_email)
    page = _text(client.get("/credits"))
    assert 'id="result-count">More than 2 packs<' in page and "remaining of" not in page
    assert "of more than 2" in page
