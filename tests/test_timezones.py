"""The workspace's time zone (issue 17): a bare date means that day where the business is, in the back-office
form, the CSV import, the API and credit packages alike (an expiry: the end of the day; a start: its first
moment); the back office shows times in the zone with UTC in the tooltip; a zone that does not exist is refused
and changes nothing."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

from sqlalchemy import select

from creditdesk import clock, timezones
from creditdesk.credits import credit_types, importer
from creditdesk.credits import schemas as cs
from creditdesk.credits.models import Pack
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from creditdesk.parties.models import Workspace
from tests.conftest import make_workspace
from tests.parties.factories import make_office, master_actor

SYDNEY = timezones.zone("Australia/Sydney")
# 2027-01-31 is summer in Sydney (AEDT, UTC+11): the day ends at 12:59:59 UTC.
END_OF_31_JAN_SYDNEY = datetime(2027, 1, 31, 12, 59, 59, tzinfo=UTC)


def test_days_in_a_zone_across_daylight_saving():
    assert timezones.end_of_day(date(2027, 1, 31), SYDNEY) == END_OF_31_JAN_SYDNEY
    assert timezones.start_of_day(date(2027, 1, 31), SYDNEY) == datetime(2027, 1, 30, 13, 0, tzinfo=UTC)
    # 4 April 2027: Sydney leaves daylight saving at 03:00 (the day has 25 hours); it ends at 23:59:59 AEST.
    assert timezones.end_of_day(date(2027, 4, 4), SYDNEY) == datetime(2027, 4, 4, 13, 59, 59, tzinfo=UTC)
    assert timezones.start_of_day(date(2027, 4, 4), SYDNEY) == datetime(2027, 4, 3, 13, 0, tzinfo=UTC)
    assert timezones.end_of_day(date(2027, 1, 31), UTC) == datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert timezones.local_day(datetime(2027, 1, 30, 14, 0, tzinfo=UTC), SYDNEY) == date(2027, 1, 31)


def test_zone_names_are_checked():
    assert timezones.check_name("australia/sydney") == "Australia/Sydney"
    assert timezones.check_name(" utc ") == "UTC"
    for bad in ("Mars/Olympus", "", "+10:00", "../../etc/passwd"):
        try:
            timezones.check_name(bad)
        except Exception as exc:
            assert getattr(exc, "code", None) == "invalid_time_zone", bad
        else:
            raise AssertionError(f"{bad!r} was taken as a time zone")


def _sydney_workspace(db, client=None):
    ws = make_workspace(db, name="Sydney office")
    actor = master_actor(db, ws.id)

    def fn(s):
        parties.update_workspace(s, ps.WorkspaceUpdate(time_zone="Australia/Sydney"), actor=actor)
        credit_types.create_credit_type(s, cs.CreditTypeCreate(code="hours", name="Hours", scale=2), actor=actor)
    db.write(fn)
    return ws, actor, make_office(db, actor=actor, name="Bondi")


def _expiry(db, pack_id) -> datetime:
    with db.read() as s:
        return clock.aware(s.get(Pack, pack_id).expires_at)


def test_the_api_reads_a_bare_expiry_date_as_the_end_of_that_day_in_the_workspace_zone(db, client):
    ws, _actor, office = _sydney_workspace(db)
    assert client.get("/v1/workspace", headers=ws.headers).json()["time_zone"] == "Australia/Sydney"
    body = {"holder": {"kind": "office", "id": office}, "credit_type": "hours", "quantity": 100, "name": "Bare",
            "expires_at": "2027-01-31", "starts_at": "2027-01-01"}
    r = client.post("/v1/packs", json=body, headers={**ws.headers, "Idempotency-Key": "bare-date"})
    assert r.status_code == 201, r.text
    assert _expiry(db, r.json()["id"]) == END_OF_31_JAN_SYDNEY
    assert datetime.fromisoformat(r.json()["starts_at"]) == datetime(2026, 12, 31, 13, 0, tzinfo=UTC)
    # The replay of the same body is the same pack, not a conflict with the moment it became.
    again = client.post("/v1/packs", json=body, headers={**ws.headers, "Idempotency-Key": "bare-date"})
    assert again.status_code in (200, 201) and again.json()["id"] == r.json()["id"]
    # A moment stays the moment it is.
    exact = {**body, "name": "Exact", "expires_at": "2027-01-31T00:00:00Z", "starts_at": None}
    r = client.post("/v1/packs", json=exact, headers={**ws.headers, "Idempotency-Key": "exact"})
    assert _expiry(db, r.json()["id"]) == datetime(2027, 1, 31, tzinfo=UTC)


def test_a_time_zone_that_does_not_exist_is_refused_and_changes_nothing(db, client):
    ws = make_workspace(db)
    r = client.patch("/v1/workspace", json={"time_zone": "Mars/Olympus"}, headers=ws.headers)
    assert r.status_code == 422 and r.json()["code"] == "invalid_time_zone"
    with db.read() as s:
        assert s.get(Workspace, ws.id).time_zone == "UTC"
    r = client.patch("/v1/workspace", json={"time_zone": "Europe/London"}, headers=ws.headers)
    assert r.status_code == 200 and r.json()["time_zone"] == "Europe/London"


def test_the_import_reads_bare_dates_in_the_workspace_zone(db):
    ws, actor, _office = _sydney_workspace(db)
    csv_text = ("holder,credit_type,quantity,name,expires_at,starts_at\n"
                "Bondi,hours,12.5,Imported,2027-01-31,2027-01-01\n"
                "Bondi,hours,1,Exact,2027-01-31T00:00:00Z,\n")
    report = importer.import_stream(db, io.StringIO(csv_text), actor=actor)
    assert report.granted == 2 and not report.errors
    with db.read() as s:
        packs = {p.name: p for p in s.scalars(select(Pack).where(Pack.workspace_id == ws.id))}
        assert clock.aware(packs["Imported"].expires_at) == END_OF_31_JAN_SYDNEY
        assert clock.aware(packs["Imported"].starts_at) == datetime(2026, 12, 31, 13, 0, tzinfo=UTC)
        assert clock.aware(packs["Exact"].expires_at) == datetime(2027, 1, 31, tzinfo=UTC)
