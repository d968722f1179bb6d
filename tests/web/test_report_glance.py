"""The active packs report at a glance (issue 17, seed 000's core screen): the count and totals per credit type
for the filters, the presets (expiring in 30 days, under 20 % left, not started), a "not started yet" badge,
expiry pills and % used, previous/next with the position, aria-sort on the sorted header; all in the URL."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

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


# --- the reads behind the report, and the page, on packs made to sit on either side of each filter ----------

def _seats_world(db, world):
    """A second credit type, seats (scale 0), one pack per new office so each use hits exactly that pack:
    low 199/1000 left (19.9 %), edge 200/1000 (exactly 20 %: not under), held 500 used + 350 held -> 150
    available (15 %), full 1000 (started yesterday), future 1000 (starts in 5 days)."""
    from creditdesk.credits import consumptions, credit_types, holds
    from creditdesk.parties import schemas as ps
    from creditdesk.parties import service as parties

    actor = master_actor(db, world.workspace_id)
    now = datetime.now(UTC)

    def fn(session):
        credit_types.create_credit_type(session, cs.CreditTypeCreate(code="seats", name="Seats", scale=0),
                                        actor=actor)
        ids = {}
        for key, extra in (("low", {}), ("edge", {}), ("held", {}),
                           ("full", {"starts_at": now - timedelta(days=1)}),
                           ("future", {"starts_at": now + timedelta(days=5)})):
            office = parties.create_office(session, ps.OfficeCreate(name=f"Seats {key}",
                                                                    customer_id=world.customer_id), actor=actor)
            ids[key] = (office.id, packs.grant_pack(session, cs.PackCreate(
                holder=cs.Holder(kind="office", id=office.id), credit_type="seats", quantity=1000,
                name=f"Seats {key} pack", expires_at=now + timedelta(days=120), **extra), actor=actor).id)
        for key, amount in (("low", 801), ("edge", 800), ("held", 500)):
            consumptions.consume(session, cs.ConsumeRequest.model_validate(
                {"context": {"kind": "office", "id": ids[key][0]}, "credit_type": "seats", "amount": amount}),
                actor=actor)
        holds.create_hold(session, cs.HoldRequest.model_validate(
            {"context": {"kind": "office", "id": ids["held"][0]}, "credit_type": "seats", "amount": 350}),
            actor=actor)
        return {key: pack_id for key, (_, pack_id) in ids.items()}

    return actor, db.write(fn)


def _all_packs(session, actor, **filters):
    from creditdesk.credits import reads

    out, cursor = [], None
    while True:
        page = reads.list_packs(session, actor=actor, limit=3, cursor=cursor, **filters)
        out += page.items
        cursor = page.next_cursor
        if not cursor:
            return out


def _names(response) -> list[str]:
    return re.findall(r'href="/packs/pack_[^"?]+\?back=[^"]*">([^<]+)</a>', _text(response))


def test_pack_totals_add_up_exactly_the_listed_packs(db, world):
    from creditdesk.credits import reads

    actor, ids = _seats_world(db, world)
    now = datetime.now(UTC)
    cases = [{}, {"credit_type": "seats"}, {"credit_type": "hours"}, {"office_id": world.london_id},
             {"left_below": 20}, {"not_started": True}, {"expires_to": now + timedelta(days=30)},
             {"q": "Seats"}, {"left_below": 50, "credit_type": "seats"}]
    with db.read() as session:
        for filters in cases:
            filters = {"status": ["active"], **filters}
            listed = _all_packs(session, actor, **filters)
            expected: dict = {}
            for pack, account in listed:
                n, left, total = expected.get(pack.unit, (0, 0, 0))
                expected[pack.unit] = (n + 1, left + account.available, total + pack.quantity)
            count, capped, by_type = reads.pack_totals(session, actor=actor, **filters)
            assert (count, capped, by_type) == (len(listed), False, expected), filters
        # Every pack, seats: 199 + 200 + 150 + 1000 + 1000 available (the 350 held are not), of 5000.
        assert reads.pack_totals(session, actor=actor, status=["active"], credit_type="seats") == \
            (5, False, {"seats": (5, 2549, 5000)})
        # Bounded: a count past the cap says so and adds nothing up; at the cap exactly it is a count.
        assert reads.pack_totals(session, actor=actor, status=["active"], cap=8) == (8, True, {})
        assert reads.pack_totals(session, actor=actor, status=["active"], cap=9)[:2] == (9, False)
    assert set(ids) == {"low", "edge", "held", "full", "future"}


def test_the_page_shows_the_totals_per_credit_type_at_its_scale(web, db, world):
    _seats_world(db, world)
    client = logged_in(web, world.master_email)
    page = _text(client.get("/credits"))
    assert 'id="result-count">9 packs<' in page
    assert "Work hours</strong>: 75.00 remaining of 75.00" in page
    assert "Seats</strong>: 2,549 remaining of 5,000" in page
    seats = _text(client.get("/credits?credit_type=seats&left_below=20"))
    assert 'id="result-count">2 packs<' in seats and "Seats</strong>: 349 remaining of 2,000" in seats
    assert "Work hours</strong>" not in seats


def test_left_below_and_not_started_select_exactly_their_packs(web, db, world):
    actor, ids = _seats_world(db, world)
    with db.read() as session:
        def found(**filters):
            return {p.id for p, _ in _all_packs(session, actor, status=["active"], **filters)}

        assert found(left_below=20) == {ids["low"], ids["held"]}  # 19.9 % and 15 %; 20 % exactly is not under
        assert found(left_below=21) == {ids["low"], ids["edge"], ids["held"]}
        assert found(left_below=16) == {ids["held"]}
        assert found(not_started=True) == {ids["future"]}
        assert found(not_started=True, left_below=20) == set()
    client = logged_in(web, world.master_email)
    assert sorted(_names(client.get("/credits?left_below=20"))) == ["Seats held pack", "Seats low pack"]
    future = client.get("/credits?not_started=1")
    assert _names(future) == ["Seats future pack"]
    row = _text(future).split('data-pack-id="' + ids["future"])[1].split("</tr>")[0]
    start = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    assert "not started yet" in row and start in row
    everything = _text(client.get("/credits"))
    assert everything.count("not started yet") == 1  # the pack that started yesterday has no badge
    # % used counts what is no longer available (held too), as "under 20 % left" does: 850 of 1000.
    held_row = everything.split('data-pack-id="' + ids["held"])[1].split("</tr>")[0]
    assert "85 % used" in held_row
    assert "0 % used" in everything.split('data-pack-id="' + ids["full"])[1].split("</tr>")[0]
    bad = client.get("/credits?left_below=abc")
    assert "a whole percentage from 1 to 100" in _text(bad) and not _names(bad)


def test_the_export_follows_the_new_filters(web, db, world):
    import csv
    import io

    _, ids = _seats_world(db, world)
    client = logged_in(web, world.master_email)

    def exported(query):
        response = client.get(f"/credits/export.csv?{query}")
        assert response.status_code == 200, response.text
        return {row["pack_id"] for row in csv.DictReader(io.StringIO(response.text.lstrip("\ufeff")))}

    assert exported("left_below=20") == {ids["low"], ids["held"]}
    assert exported("not_started=1") == {ids["future"]}
    assert len(exported("")) == 9
    assert client.get("/credits/export.csv?left_below=0").status_code >= 400


def test_previous_when_the_trail_was_cut_goes_to_the_first_page(web, db, world, monkeypatch):
    monkeypatch.setattr(web_packs, "PAGE_SIZES", (2, 25, 50))
    for n in range(6):
        _grant(db, world, f"Bulk pack {n:02d}", 100)  # 10 packs: five pages of two
    client = logged_in(web, world.master_email)

    def follow(response, rel):
        return client.get(html.unescape(re.search(rf'id="{rel}-page" href="([^"]+)"', _text(response)).group(1)))

    def walk():
        pages = [client.get("/credits?limit=2&sort=name")]
        while 'id="next-page"' in _text(pages[-1]):
            pages.append(follow(pages[-1], "next"))
        return pages

    pages = walk()
    assert len(pages) == 5 and "Page 5 · packs 9–10 of 10" in _text(pages[-1])
    # The whole trail kept: Previous from page 5 walks back through 4, 3, 2 to 1, each page as it was.
    back = pages[-1]
    for n in (4, 3, 2, 1):
        back = follow(back, "previous")
        assert f"Page {n} · packs {2 * n - 1}–{2 * n} of 10" in _text(back)
        assert _names(back) == _names(pages[n - 1])
    assert 'id="previous-page"' not in _text(back)
    # Only two cursors kept: page 5 knows pages 4 and 3; page 3 no longer knows page 2, so back to the start.
    monkeypatch.setattr(web_packs, "TRAIL_KEPT", 2)
    pages = walk()
    trails = [parse_qs(urlsplit(html.unescape(re.search(r'id="next-page" href="([^"]+)"', _text(p)).group(1))).query)
              ["trail"][0].split(",") for p in pages[1:4]]
    assert [len(t) for t in trails] == [1, 2, 2]  # page 4's link to page 5 keeps the last two only
    four = follow(pages[-1], "previous")
    assert "Page 4 · packs 7–8 of 10" in _text(four) and _names(four) == _names(pages[3])
    three = follow(four, "previous")
    assert "Page 3 · packs 5–6 of 10" in _text(three) and _names(three) == _names(pages[2])
    start = follow(three, "previous")
    assert "Page 1 · packs 1–2 of 10" in _text(start) and _names(start) == _names(pages[0])


def test_aria_sort_only_on_the_sorted_header(web, db, world):
    client = logged_in(web, world.master_email)
    page = _text(client.get("/credits?sort=remaining&order=desc"))
    headers = re.findall(r"<th\b[^>]*>", page)
    sorted_headers = [h for h in headers if "aria-sort" in h]
    assert sorted_headers == ['<th class="num" aria-sort="descending">'], sorted_headers
    assert 'aria-sort="none"' not in page and 'aria-sort="ascending"' not in page
    default = _text(client.get("/credits"))  # by expiry, ascending, unless told otherwise
    assert re.search(r'<th[^>]*aria-sort="ascending"[^>]*>\s*<a[^>]*>Expires', default)
    assert default.count("aria-sort=") == 1


def test_expiry_pills_say_the_days_and_colour_by_nearness(web, db, world):
    _grant(db, world, "Due this week", 100, expires_at=datetime.now(UTC) + timedelta(days=3, hours=1))
    client = logged_in(web, world.master_email)
    page = _text(client.get("/credits"))

    def pill(pack_name):
        row = page.split(f">{pack_name}</a>")[1].split("</tr>")[0]
        return re.search(r'<span class="pill (pill-\w+)">([^<]+)</span>', row).groups()

    assert pill("Due this week") == ("pill-bad", "in 3 days")
    assert pill("London top-up")[0] == "pill-warn" and re.fullmatch(r"in (9|10) days", pill("London top-up")[1])
    assert pill("London content pack")[0] == "pill-ok"
    assert "expired" not in re.sub(r"Expired and depleted", "", page).lower()


def test_a_range_given_back_to_front_is_said_not_shown_as_nothing(web, world):
    client = logged_in(web, world.master_email)
    page = client.get("/credits", params={"expires_from": "2027-02-01", "expires_to": "2027-01-01"})
    assert "Expires from (2027-02-01) is after Expires to (2027-01-01): swap them." in page.text
    page = client.get("/credits", params={"credit_type": "hours", "remaining_min": "5", "remaining_max": "1"})
    assert "Remaining from (5) is more than Remaining to (1): swap them." in page.text
    export = client.get("/credits/export.csv", params={"expires_from": "2027-02-01", "expires_to": "2027-01-01"})
    assert export.status_code in (400, 422)


def test_the_printed_report_says_what_it_lists(web, world):
    """Print hides the filters form: the page carries a print-only line with the workspace, the moment and the
    filters in words."""
    client = logged_in(web, world.master_email)
    page = client.get("/credits", params={"credit_type": "hours", "expires_from": "2026-12-01",
                                          "expires_to": "2026-12-31"}).text
    summary = page.split('id="print-summary">', 1)[1].split("</p>", 1)[0]
    assert "Web workspace" in summary and "printed" in summary
    assert "credit type Work hours" in summary and "expiring 2026-12-01 to 2026-12-31" in summary
    assert "all active packs" in client.get("/credits").text.split('id="print-summary">', 1)[1].split("</p>", 1)[0]
