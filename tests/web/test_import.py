"""F16: the back-office CSV import reads and checks the whole file before writing anything, and its report
says exactly what was written: every refused row and every skipped row, with its line and why.

Before: every 500 rows were committed on their own, so a field over csv's 128 KiB limit on line 602 gave a
500 "nothing was changed" after 500 packs had been granted; and a row reusing another row's
idempotency_key with other content was counted as "already imported before (skipped)".
"""

from __future__ import annotations

import html as html_text
import io
import re

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from creditdesk.credits import importer
from creditdesk.credits.models import Pack
from tests.web.conftest import csrf_of, logged_in, once_key_of

HEADER = "holder_kind,holder_id,credit_type,quantity,name,notes,idempotency_key\n"


def packs(db, workspace_id: str) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(Pack).where(Pack.workspace_id == workspace_id))


def upload(client, content: str):
    html = client.get("/packs/import").text
    return client.post("/packs/import", data={"csrf_token": csrf_of(html), "idempotency_key": once_key_of(html)},
                       files={"file": ("packs.csv", content.encode(), "text/csv")}, follow_redirects=False)


def table(html: str, css: str) -> list[tuple[int, str]]:
    """(line, text) rows of the report's table of that class."""
    if f'class="{css}"' not in html:
        return []
    body = html.split(f'class="{css}"', 1)[1].split("</table>", 1)[0]
    return [(int(line), html_text.unescape(re.sub(r"\s+", " ", text).strip()))
            for line, text in re.findall(r'<tr><td class="num">(\d+)</td><td>(.*?)</td></tr>', body, re.S)]


def test_a_field_too_large_after_600_rows_imports_nothing_and_names_its_line(web, db, world):
    client = logged_in(web, world.master_email)
    rows = "".join(f"office,{world.leeds_id},hours,100,Pack {n},,\n" for n in range(600))
    content = HEADER + rows + f"office,{world.leeds_id},hours,100,Too big,{'x' * 140_000},\n"
    before = packs(db, world.workspace_id)
    response = upload(client, content)
    assert response.status_code == 422, response.text[-2000:]
    assert "Nothing was imported" in response.text
    assert "line 602" in response.text
    assert "field larger than field limit" in response.text
    assert packs(db, world.workspace_id) == before


def test_a_wrong_header_imports_nothing(web, db, world):
    client = logged_in(web, world.master_email)
    before = packs(db, world.workspace_id)
    response = upload(client, "holder,credit_type,quantity,name\noffice,hours,1,x\n")
    assert response.status_code == 422 and "Nothing was imported" in response.text
    assert "missing column(s): holder_kind" in response.text
    assert packs(db, world.workspace_id) == before


def test_a_key_reused_with_other_content_is_an_error_row_not_a_skip(web, db, world):
    client = logged_in(web, world.master_email)
    content = HEADER + (f"office,{world.leeds_id},hours,500,Five,,k1\n"
                        f"office,{world.leeds_id},hours,700,Seven,,k1\n"
                        f"office,{world.leeds_id},hours,300,Three,,k2\n"
                        f"office,{world.leeds_id},hours,300,Three,,k2\n")
    before = packs(db, world.workspace_id)
    response = upload(client, content)
    assert response.status_code == 200, response.text[-2000:]
    html = response.text
    assert "<strong>2</strong> packs granted" in html
    assert packs(db, world.workspace_id) == before + 2
    errors = table(html, "errors")
    assert [line for line, _ in errors] == [3]
    assert "'k1'" in errors[0][1] and "line 2" in errors[0][1] and "other content" in errors[0][1]
    skipped = table(html, "skipped")
    assert [line for line, _ in skipped] == [5]
    assert importer.SKIPPED_REPEATED in skipped[0][1] and "line 4" in skipped[0][1]
    with db.read() as session:
        k1 = session.scalar(select(Pack).where(Pack.workspace_id == world.workspace_id, Pack.idempotency_key == "k1"))
        assert (k1.name, k1.quantity) == ("Five", 500)


def test_every_skipped_and_refused_row_is_reported_with_its_line(web, db, world):
    client = logged_in(web, world.master_email)
    content = HEADER + (f"office,{world.leeds_id},hours,100,First,,\n"
                        f"office,{world.leeds_id},hours,-5,Negative,,\n"
                        f"office,ofc_nobody,hours,100,Nobody's,,\n"
                        f"office,{world.leeds_id},hours,200,Second,,own-1\n")
    before = packs(db, world.workspace_id)
    first = upload(client, content)
    assert first.status_code == 200
    assert "<strong>2</strong> packs granted" in first.text
    assert [line for line, _ in table(first.text, "errors")] == [3, 4]
    assert packs(db, world.workspace_id) == before + 2

    # The same file again (a new form, so a new key): the imported rows are skipped, each one said so.
    again = upload(client, content)
    assert again.status_code == 200
    assert "<strong>0</strong> packs granted" in again.text
    assert "<strong>2</strong> already imported before (skipped)" in again.text
    skipped = table(again.text, "skipped")
    assert [line for line, _ in skipped] == [2, 5]
    assert all(importer.SKIPPED_BEFORE in why for _, why in skipped)
    assert [line for line, _ in table(again.text, "errors")] == [3, 4]
    assert packs(db, world.workspace_id) == before + 2

    # A later file giving the key "own-1" to another pack: an error row, nothing granted for it.
    other = upload(client, HEADER + f"office,{world.leeds_id},hours,999,Not the same,,own-1\n")
    errors = table(other.text, "errors")
    assert [line for line, _ in errors] == [2]
    assert "'own-1'" in errors[0][1] and "other content" in errors[0][1]
    assert packs(db, world.workspace_id) == before + 2


def test_validate_file_reads_the_whole_file_and_writes_nothing():
    """The importer's validation-only entry point, on its own (no database)."""
    content = HEADER + "workspace,,hours,1,a,,\n" * 3 + 'workspace,,hours,1,"unclosed\n'
    check = importer.validate_file(io.StringIO(content + "x" * 200_000, newline=""))
    # The quoted field opened on line 5 passes the limit on line 6: where reading stopped.
    assert check.file_error is not None and check.file_error.startswith("line 6 ")
    check = importer.validate_file(io.StringIO(HEADER + "workspace,,hours,abc,a,,\nworkspace,,hours,1,b,,\n",
                                               newline=""))
    assert check.file_error is None
    assert [(r.line, r.error is not None) for r in check.rows] == [(2, True), (3, False)]


def serialization_failure() -> DBAPIError:
    class Orig(Exception):
        sqlstate = "40001"
    return DBAPIError("COMMIT", {}, Orig("could not serialize access due to read/write dependencies"))


def retry_every_write_once(db, monkeypatch) -> list[int]:
    """Make every db.write's first attempt fail with a serialization failure once its fn has done all its
    work (as PostgreSQL's COMMIT may): PostgreSQL retries in Database.write's own loop; SQLite, which has
    one writer and never retries, gets the same loop here. Returns the number of attempts of each write."""
    real = db.write
    attempts: list[int] = []

    def write(fn, **kw):
        attempts.append(0)
        mine = len(attempts) - 1

        def flaky(session):
            attempts[mine] += 1
            result = fn(session)
            if attempts[mine] == 1:
                raise serialization_failure()
            return result

        if not db.is_sqlite:
            return real(flaky, **kw)
        try:
            return real(flaky, **kw)
        except DBAPIError:
            return real(flaky, **kw)

    monkeypatch.setattr(db, "write", write)
    return attempts


def test_a_retried_transaction_reports_what_its_last_attempt_did(web, db, world, monkeypatch):
    """Issue 11: the import's report was shared between the attempts of its transaction, so a retried
    PostgreSQL transaction showed its grants, refused and skipped lines twice."""
    client = logged_in(web, world.master_email)
    content = HEADER + (f"office,{world.leeds_id},hours,100,First,,\n"
                        f"office,{world.leeds_id},hours,-5,Negative,,\n"
                        f"office,{world.leeds_id},hours,200,Second,,own-1\n"
                        f"office,{world.leeds_id},hours,200,Second,,own-1\n")
    before = packs(db, world.workspace_id)
    attempts = retry_every_write_once(db, monkeypatch)
    response = upload(client, content)
    assert 2 in attempts  # the import's transaction did run twice
    assert response.status_code == 200, response.text[-2000:]
    assert "<strong>2</strong> packs granted" in response.text
    assert [line for line, _ in table(response.text, "errors")] == [3]
    assert [line for line, _ in table(response.text, "skipped")] == [5]
    assert packs(db, world.workspace_id) == before + 2
