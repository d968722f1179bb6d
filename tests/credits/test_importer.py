"""CSV import of packs: per-row errors with line numbers, valid rows committed, re-runs grant nothing
twice, and an imported pack is recorded exactly as a granted one (ledger, audit, history)."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from creditdesk.audit import AuditEvent, _jsonable
from creditdesk.credits import importer
from creditdesk.credits import schemas as cs
from creditdesk.credits.packs import grant_or_find as real_grant_or_find
from creditdesk.credits.packs import grant_pack
from creditdesk.credits.models import Pack
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import LedgerAccount
from creditdesk.ledger.models import LedgerTransfer as LT
from tests.credits.helpers import history, make_shop
from tests.parties.factories import actor_of, make_user

HEADER = ("holder_kind,holder_id,credit_type,quantity,name,price_paid,currency,is_paid,source,external_ref,"
          "relationship_manager_id,project_manager_id,purchased_at,starts_at,expires_at,expiry_months,priority,"
          "product_codes,status_label,notes,idempotency_key")


def run_import(db, actor, text: str, **kw) -> importer.ImportReport:
    return importer.import_stream(db, io.StringIO(text, newline=""), actor=actor, **kw)


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join((header,) + rows) + "\n"


def packs_of(db, ws: str) -> list[SimpleNamespace]:
    with db.read() as s:
        return [SimpleNamespace(**{c.key: getattr(p, c.key) for c in Pack.__table__.columns})
                for p in s.scalars(select(Pack).where(Pack.workspace_id == ws).order_by(Pack.id))]


def verify_ok(db, ws: str) -> None:
    with db.read() as s:
        report = ledger.verify(s, workspace_id=ws)
    assert report.ok, report.problems


def test_rows_are_granted_errors_have_line_numbers_and_a_rerun_grants_nothing(db):
    shop = make_shop(db)
    text = csv_text(
        f"office,{shop.berlin},credits,100,Berlin pack,5000,GBP,,,,,,2026-01-01,,2027-01-01T00:00:00Z,,,a;b,,,",
        f"user,{shop.anna},credits,0,Zero,,,,,,,,,,,,,,,,",  # line 3: quantity must be > 0
        f"office,off_nope,credits,5,Unknown holder,,,,,,,,,,,,,,,,",  # line 4: no such office
        f"workspace,,credits,7,Pool,,,,,,,,,,,,,,,,",
        f"user,{shop.anna},credits,9,Back to front,,,,,,,,2026-05-01,,2026-04-01,,,,,,",  # line 6
        f"customer,{shop.customer},credits,3,Odd date,,,,,,,,20260115,,,,,,,,",  # slow path, still valid
        f"office,{shop.berlin},credits,100,Berlin pack,5000,GBP,,,,,,2026-01-01,,2027-01-01T00:00:00Z,,,a;b,,,",
        f"office,{shop.paris},nosuchtype,1,Bad type,,,,,,,,,,,,,,,,",  # line 9
        f"office,{shop.paris},credits,12,Paid,100,,,,,,,,,,,,,,,",  # line 10: price without currency
    )
    report = run_import(db, shop.actor, text, batch_size=3)
    lines = [line for line, _ in report.errors]
    assert lines == [3, 4, 6, 9, 10]
    messages = dict(report.errors)
    assert messages[3].startswith("quantity:")
    assert "off_nope" in messages[4] and "(not_found)" in messages[4]
    assert "(expiry_before_start)" in messages[6]
    assert "(unknown_credit_type)" in messages[9]
    assert "(currency_required)" in messages[10]
    # Two identical rows are two packs (as before); the slow-path row is granted too.
    assert (report.granted, report.skipped, report.error_count) == (4, 0, 5)
    packs = packs_of(db, shop.ws)
    assert sorted(p.quantity for p in packs) == [3, 7, 100, 100]
    pool = next(p for p in packs if p.holder_kind == "workspace")
    assert pool.holder_id == shop.ws
    berlin = [p for p in packs if p.holder_id == shop.berlin]
    assert all(p.product_codes == ["a", "b"] and p.is_paid and p.currency == "GBP" for p in berlin)
    verify_ok(db, shop.ws)

    again = run_import(db, shop.actor, text, batch_size=4)
    assert (again.granted, again.skipped, again.error_count) == (0, 4, 5)
    assert len(packs_of(db, shop.ws)) == 4
    # A bigger file with the same rows first: only the new row is granted.
    more = run_import(db, shop.actor, text + f"office,{shop.paris},credits,1,New,,,,,,,,,,,,,,,,\n")
    assert (more.granted, more.skipped) == (1, 4)
    verify_ok(db, shop.ws)


def test_header_problems_are_reported_on_line_1(db):
    shop = make_shop(db)
    report = run_import(db, shop.actor, "holder_kind,credit_type,name\noffice,credits,x\n")
    assert report.errors == [(1, "missing column(s): quantity or quantity_minor")]
    report = run_import(db, shop.actor, "holder_kind,credit_type,quantity,name,colour\n")
    assert report.errors == [(1, "unknown column(s): colour")]


def test_own_idempotency_keys_first_line_wins(db):
    shop = make_shop(db)
    text = csv_text(
        f"office,{shop.berlin},credits,5,First,,,,,,,,,,,,,,,,k1",
        f"office,{shop.berlin},credits,6,Second same key,,,,,,,,,,,,,,,,k1",
        # A slow-path row (unusual date form) takes key k2 before a plain row with the same key.
        f"office,{shop.berlin},credits,7,Slow first,,,,,,,,20260115,,,,,,,,k2",
        f"office,{shop.berlin},credits,8,Fast second,,,,,,,,,,,,,,,,k2",
    )
    report = run_import(db, shop.actor, text)
    assert (report.granted, report.skipped, report.error_count) == (2, 2, 0)
    assert sorted(p.name for p in packs_of(db, shop.ws)) == ["First", "Slow first"]


def test_a_derived_key_taken_by_a_user_does_not_swallow_the_row(db):
    """F11: a row without a key of its own gets one derived from its content (predictable); it lives in
    the internal column, so a user who granted a pack under that text first does not make the import skip
    the row (nor receive its credits), on the fast path and on the slow one."""
    shop = make_shop(db)
    rows = (f"office,{shop.berlin},credits,5,Fast row,,,,,,,,,,,,,,,,",
            f"office,{shop.berlin},credits,6,Slow row,,,,,,,,20260115,,,,,,,,")  # unusual date: slow path
    text = csv_text(*rows)
    keys = [row.key for row in importer.read_rows(io.StringIO(text, newline=""))]
    assert all(key.startswith("import:") for key in keys)
    for key in keys:
        credits_ = cs.PackCreate(holder={"kind": "user", "id": shop.anna}, credit_type="credits", quantity=1,
                                 name="squat", idempotency_key=key)
        db.write(lambda s, data=credits_: grant_pack(s, data, actor=shop.actor))
    report = run_import(db, shop.actor, text)
    assert (report.granted, report.skipped, report.error_count) == (2, 0, 0)
    imported = {p.name: p for p in packs_of(db, shop.ws) if p.holder_id == shop.berlin}
    assert {name: (p.idempotency_key, p.internal_key) for name, p in imported.items()} == {
        "Fast row": (None, keys[0]), "Slow row": (None, keys[1])}
    # And a re-run still grants nothing twice.
    assert (run_import(db, shop.actor, text).skipped, len(packs_of(db, shop.ws))) == (2, 4)
    verify_ok(db, shop.ws)


def test_sms_rows_follow_the_sms_rules(db):
    """The import grants like grant_pack (governance.authorize_grant): SMS credits go to the pool or to users
    who may send, from a master; never as a purchase or a transfer."""
    shop = make_shop(db)
    text = csv_text(
        "workspace,,sms,100,Pool SMS,,,,,,,,,,,,,,,,",
        f"user,{shop.anna},sms,10,Anna SMS,,,,,,,,,,,,,,,,",
        f"office,{shop.berlin},sms,10,Office SMS,,,,,,,,,,,,,,,,",
        f"user,{shop.ben},sms,10,Ben SMS (no send_sms),,,,,,,,,,,,,,,,",
        "workspace,,sms,10,Bought?,,,,purchase,smsp_x,,,,,,,,,,,",
        f"office,{shop.berlin},credits,10,Moved?,,,,transfer,,,,,,,,,,,,",
    )
    report = run_import(db, shop.actor, text)
    assert (report.granted, report.error_count) == (2, 4)
    assert [(line, message.rsplit("(", 1)[1]) for line, message in sorted(report.errors)] == [
        (4, "invalid_sms_account)"), (5, "recipient_cannot_send_sms)"), (6, "source_reserved)"),
        (7, "source_reserved)")]
    manager = actor_of(db, make_user(db, actor=shop.actor, name="Mallory", role="manager",
                                     permissions=["send_sms"]))
    report = run_import(db, manager, csv_text(f"user,{manager.user_id},sms,100000,free sms,,,,,,,,,,,,,,,,"))
    assert (report.granted, report.error_count) == (0, 1)
    assert report.errors[0][1].endswith("(credit_type_governed)")
    verify_ok(db, shop.ws)


def test_errors_kept_are_capped_but_all_counted(db, monkeypatch):
    shop = make_shop(db)
    monkeypatch.setattr(importer, "MAX_KEPT_ERRORS", 3)
    text = csv_text(*[f"office,{shop.berlin},credits,-1,Bad,,,,,,,,,,,,,,,," for _ in range(7)])
    report = run_import(db, shop.actor, text, batch_size=2)
    assert report.error_count == 7 and [line for line, _ in report.errors] == [2, 3, 4]


def test_an_imported_pack_is_recorded_like_a_granted_one(db, frozen_clock):
    shop = make_shop(db)
    fields = dict(price_paid=5000, currency="EUR", source="purchase",
                  relationship_manager_id=shop.ben, purchased_at="2026-01-10T08:30:00+02:00",
                  expiry_months=12, priority=50, product_codes=["x", "a"], status_label="drive",
                  notes='quote " and unicode é ✓')
    granted = db.write(lambda s: grant_pack(s, cs.PackCreate(
        holder={"kind": "office", "id": shop.berlin}, credit_type="credits", quantity=40, name="Same pack",
        idempotency_key="the-granted-one", **fields), actor=shop.actor).id)
    row = (f"office,{shop.berlin},credits,40,Same pack,50.00,EUR,,purchase,,{shop.ben},,"
           f"2026-01-10T08:30:00+02:00,,,12,50,x a,drive,\"quote \"\" and unicode é ✓\",the-imported-one")
    report = run_import(db, shop.actor, csv_text(row))
    assert (report.granted, report.error_count) == (1, 0)

    with db.read() as s:
        g = s.scalar(select(Pack).where(Pack.workspace_id == shop.ws, Pack.idempotency_key == "the-granted-one"))
        i = s.scalar(select(Pack).where(Pack.workspace_id == shop.ws, Pack.idempotency_key == "the-imported-one"))
        differ = {"id", "ledger_account_id", "idempotency_key"}
        columns = [c.key for c in Pack.__table__.columns if c.key not in differ]
        assert {c: getattr(i, c) for c in columns} == {c: getattr(g, c) for c in columns}

        ga, ia = s.get(LedgerAccount, g.ledger_account_id), s.get(LedgerAccount, i.ledger_account_id)
        columns = [c.key for c in LedgerAccount.__table__.columns if c.key != "id"]
        assert {c: getattr(ia, c) for c in columns} == {c: getattr(ga, c) for c in columns}

        def transfers(pack):
            rows = s.scalars(select(LT).where(LT.credit_account_id == pack.ledger_account_id)).all()
            assert len(rows) == 1
            t = rows[0]
            assert (t.operation_id, t.reference_id) == (pack.id, pack.id)
            return {c.key: getattr(t, c.key) for c in LT.__table__.columns
                    if c.key not in ("id", "credit_account_id", "operation_id", "reference_id")}
        assert transfers(i) == transfers(g)

        def event(pack):
            e = s.scalar(select(AuditEvent).where(AuditEvent.object_id == pack.id))
            after = dict(e.after)
            for key in differ:
                after.pop(key)
            return {"action": e.action, "actor_id": e.actor_id, "actor_kind": e.actor_kind, "before": e.before,
                    "after": after, "created_at": e.created_at}
        assert event(i) == event(g)
        imported_id, granted_id = i.id, g.id
    assert [(h.kind, h.amount, h.balance_after) for h in history(db, shop.actor, imported_id)] == \
        [(h.kind, h.amount, h.balance_after) for h in history(db, shop.actor, granted_id)]
    verify_ok(db, shop.ws)
    # The imported pack is a pack like any other: it can be consumed.
    from tests.credits.helpers import consume

    out = consume(db, shop.actor, "office", shop.berlin, 60, product_code="a")
    assert out.amount == 60
    verify_ok(db, shop.ws)


def test_column_lists_match_the_models():
    # (The ledger's rows are written by ledger.batch; tests/ledger/test_batch.py checks its column lists.)
    assert importer.PACK_COLUMNS == tuple(c.key for c in Pack.__table__.columns)
    assert importer.EVENT_COLUMNS == tuple(c.key for c in AuditEvent.__table__.columns)


TEXTS = ["plain", 'qu"ote', "back\\slash", "tab\tnew\nline", "é ✓ 漢字 😀", "\x01"]
DATES = ["", "2026-01-02", "2026-01-02T03:04", "2026-01-02 03:04:05", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05.5Z",
         "2026-01-02T03:04:05.000000+00:00", "2026-01-02T03:04:05.123456-00:00", "2026-01-02T03:04:05+02:00",
         "2026-01-02T23:04:05.000100-05:30", "2026-01-02T03:04Z"]


def _fast_path_rows(lines: list[str]):
    """The rows the SQLite fast path writes for these CSV lines, and the same rows as Python values."""
    from datetime import UTC, datetime

    ct = SimpleNamespace(code="credits", id="ct_1", issuance_account_id="la_issue", required_permission=None)
    found = importer._Lookups({"credits": ct}, {("office", "off_1"): "cus_1", ("user", "usr_1"): None},
                              {"usr_1"})
    actor = SimpleNamespace(workspace_id="ws_1", kind="user", user_id="usr_1", api_key_id=None)
    now = importer._rendered(datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC))
    clean = []
    for row in importer.read_rows(io.StringIO(csv_text(*lines), newline="")):
        assert row.values is not None, row
        grant = importer._grantable(row.values, "ws_1", found, now)
        assert grant is not None, row
        clean.append((row, row.values, grant))
    ids = tuple([f"{p}_{i:026d}" for i in range(len(clean))] for p in ("la", "pack", "lt", "evt"))
    return (importer._sqlite_rows(clean, ids, actor=actor, now=now),
            importer._python_rows(clean, ids, actor=actor, now=now.at))


def _stored(table, columns, row):
    """A row of Python values as SQLAlchemy would hand it to SQLite (the columns' bind processors)."""
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    out = []
    for name, value in zip(columns, row):
        process = table.columns[name].type.dialect_impl(dialect).bind_processor(dialect)
        out.append(process(value) if process else value)
    return tuple(out)


def test_the_fast_path_stores_what_the_orm_would_store_text_for_text():
    """Dates in every form the fast path reads (UTC straight from the text, other offsets the long way),
    strings JSON needs to escape, optional columns set and not: each SQLite row the importer writes is
    byte for byte what SQLAlchemy's type processors make of the Python values (json.dumps of the audit
    snapshot included)."""
    lines = []
    for i, text in enumerate(TEXTS):
        for j, date in enumerate(DATES):
            expires = "2031-05-06T07:08:09+01:00" if j % 2 else ""
            months = "" if expires or j % 3 else "7"
            price, currency = ("5000", "EUR") if j % 2 else ("", "")
            codes = f"{text.split()[0] if text.split() else 'x'};a b" if j % 3 == 1 else ""
            lines.append(",".join(f'"{c}"' if any(ch in c for ch in ',"\n') else c for c in (
                "office" if j % 2 else "user", "off_1" if j % 2 else "usr_1", "credits", str(10 + j),
                text.replace('"', '""'), price, currency, "" if j % 4 else "yes",
                # promotion: an external ref that claims no key (a keyed one takes grant_pack's path)
                "promotion" if j % 2 else "",
                text.replace('"', '""') if j % 2 else "", "usr_1" if j % 2 else "", "", date,
                date if j % 5 == 2 else "", expires, months, str(j - 5), codes.replace('"', '""'),
                text.replace('"', '""') if j % 3 else "", text.replace('"', '""') if j % 2 else "",
                f"own-{i}-{j}" if j % 4 == 3 else "")))
    fast, python = _fast_path_rows(lines)
    assert len(fast[0]) == len(TEXTS) * len(DATES)
    for (table, columns), fast_rows, python_rows in zip(importer._TABLES, fast, python):
        for fast_row, python_row in zip(fast_rows, python_rows, strict=True):
            assert fast_row == _stored(table, columns, python_row)
    # And the snapshot is audit.snapshot's own text for the pack.
    for event, pack in zip(python[1], python[0]):
        assert json.loads(_stored(AuditEvent.__table__, importer.EVENT_COLUMNS, event)[9]) == \
            _jsonable(dict(zip(importer.PACK_COLUMNS, pack)))


def test_a_row_for_a_source_and_ref_that_has_a_pack_grants_nothing_twice(db):
    """External refs are keys (credits.packs): the same grant again is skipped, another one is refused with
    external_ref_taken naming the pack, whatever the rows' idempotency keys."""
    shop = make_shop(db)
    first = db.write(lambda s: grant_pack(s, cs.PackCreate(
        holder={"kind": "office", "id": shop.berlin}, credit_type="credits", quantity=40, name="Deal pack",
        source="crm_deal", external_ref="deal-981"), actor=shop.actor).id)
    same = f"office,{shop.berlin},credits,40,Deal pack,,,,crm_deal,deal-981,,,,,,,,,,,key-1"
    other = f"office,{shop.berlin},credits,41,Deal pack,,,,crm_deal,deal-981,,,,,,,,,,,key-2"
    near = f"office,{shop.berlin},credits,40,Deal pack,,,,crm_deal,deal-9810,,,,,,,,,,,key-3"
    report = run_import(db, shop.actor, csv_text(same, other, near))
    assert (report.granted, report.skipped, report.error_count) == (1, 1, 1)
    assert "external_ref_taken" in report.errors[0][1] and first in report.errors[0][1]
    with db.read() as s:
        refs = sorted(s.scalars(select(Pack.external_ref).where(Pack.workspace_id == shop.ws)))
    assert refs == ["deal-981", "deal-9810"]


def test_rows_with_external_refs_take_the_bulk_path_and_keep_one_pack_per_ref(db, monkeypatch):
    """External refs are keys on the bulk path too: a new ref is granted in bulk with its key (no row by row),
    the same ref again in the file or from before is skipped when the grant is the same, refused
    external_ref_taken when it is not; promotions claim no key."""
    shop = make_shop(db)
    before = db.write(lambda s: grant_pack(s, cs.PackCreate(
        holder={"kind": "office", "id": shop.berlin}, credit_type="credits", quantity=40, name="Deal pack",
        source="crm_deal", external_ref="deal-1"), actor=shop.actor).id)
    one_by_one = []
    monkeypatch.setattr(importer, "grant_or_find", lambda *a, **k: one_by_one.append(a[1].external_ref)
                        or real_grant_or_find(*a, **k))
    rows = [f"office,{shop.berlin},credits,40,Deal pack,,,,crm_deal,deal-1,,,,,,,,,,,k1",   # as before: skipped
            f"office,{shop.berlin},credits,41,Deal pack,,,,crm_deal,deal-1,,,,,,,,,,,k2",   # differs: refused
            f"office,{shop.berlin},credits,10,New deal,,,,crm_deal,deal-2,,,,,,,,,,,k3",    # new: bulk
            f"office,{shop.berlin},credits,10,New deal,,,,crm_deal,deal-2,,,,,,,,,,,k4",    # same again: skipped
            f"office,{shop.berlin},credits,12,New deal,,,,crm_deal,deal-2,,,,,,,,,,,k5",    # differs: refused
            f"office,{shop.berlin},credits,5,Promo,,,,promotion,deal-2,,,,,,,,,,,k6",       # no key: bulk
            f"office,{shop.berlin},credits,5,Promo,,,,promotion,deal-2,,,,,,,,,,,k7",       # no key: bulk
            f"office,{shop.berlin},credits,7,Other deal,,,,crm_deal,deal-3,,,,,,,,,,,k8"]   # new: bulk
    report = run_import(db, shop.actor, csv_text(*rows))
    assert (report.granted, report.skipped, report.error_count) == (4, 2, 2)
    assert [line for line, _ in report.errors] == [3, 6]
    assert all("external_ref_taken" in message for _, message in report.errors)
    assert sorted(one_by_one) == ["deal-1", "deal-1", "deal-2", "deal-2"]  # only the rows meeting a taken key
    with db.read() as s:
        made = {(p.source, p.external_ref, p.external_key, p.quantity) for p in s.scalars(
            select(Pack).where(Pack.workspace_id == shop.ws, Pack.id != before))}
    assert made == {("crm_deal", "deal-2", "deal-2", 10), ("crm_deal", "deal-3", "deal-3", 7),
                    ("promotion", "deal-2", None, 5)}
    verify_ok(db, shop.ws)


def test_imported_packs_send_pack_created_like_granted_ones(db):
    from creditdesk.webhooks import schemas as wss
    from creditdesk.webhooks import service as hooks
    from creditdesk.webhooks.models import WebhookDelivery

    shop = make_shop(db)
    db.write(lambda s: hooks.create_endpoint(s, wss.EndpointCreate(
        url="http://127.0.0.1:9/hook", event_types=["pack.created"], enabled=True), actor=shop.actor))
    rows = [f"office,{shop.berlin},credits,10,Bulk {n},,,,,,,,,,,,,,,,b{n}" for n in range(3)]
    report = run_import(db, shop.actor, csv_text(*rows))
    assert report.granted == 3
    with db.read() as s:
        bodies = [json.loads(d.body) for d in s.scalars(select(WebhookDelivery).where(
            WebhookDelivery.workspace_id == shop.ws))]
        ids = set(s.scalars(select(Pack.id).where(Pack.workspace_id == shop.ws)))
    assert sorted(b["data"]["name"] for b in bodies) == ["Bulk 0", "Bulk 1", "Bulk 2"]
    assert {b["data"]["id"] for b in bodies} == ids and {b["type"] for b in bodies} == {"pack.created"}


def test_bulk_ids_keep_the_format_and_order():
    from creditdesk.ids import new_id, new_ids

    before = new_id("pack")
    many = new_ids("pack", 3000)
    after = new_id("pack")
    assert len(set(many)) == 3000 and many == sorted(many)
    assert before < many[0] and many[-1] < after
    assert all(len(i) == len(before) for i in many)


def test_repeated_content_counts_occurrences_in_flat_memory():
    import hashlib

    seen = importer._SeenDigests()
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    assert [seen.occurrence(d) for d in (a, b, a, a, b)] == [1, 1, 2, 3, 2]


def test_keys_derived_from_content_are_what_they_always_were():
    """The derived key of a row is sha256 of its stripped cells in COLUMNS order joined by \\x1f (empty
    for columns the file lacks), numbered by repeats: a file imported by an earlier version maps onto
    the same packs. Short rows, extra cells, spaces, a column order of its own and own keys included."""
    import csv
    import hashlib

    header = "name,quantity,credit_type,holder_kind,holder_id,notes,idempotency_key"
    lines = ["  Pack a ,5,credits,office,off_1,,", "Pack b,6,credits,office", "Pack a,5,credits,office,off_1,,",
             "Pack c,7,credits,office,off_1,n,own-key,extra,cells", "Pack a,5,credits,office,off_1", ""]
    text = header + "\n" + "\n".join(lines) + "\n"
    got = [(row.line, row.key) for row in importer.read_rows(io.StringIO(text, newline=""))]
    expected, counts = [], {}
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for record in reader:
        raw = {c: ((record.get(c) or "").strip() or None) for c in importer.KEYED_COLUMNS}
        content = "\x1f".join(v or "" for v in raw.values())
        digest = hashlib.sha256(content.encode()).hexdigest()[:40]
        counts[digest] = counts.get(digest, 0) + 1
        expected.append((reader.line_num, raw["idempotency_key"] or f"import:{digest}:{counts[digest]}"))
    assert got == expected
    assert [key for _, key in got][:3] == [expected[0][1], expected[1][1], expected[0][1][:-1] + "2"]


def _sqlite_settings(db):
    def read(session):
        raw = session.connection().connection.driver_connection
        return tuple(raw.execute(f"PRAGMA {name}").fetchone()[0] for name in ("cache_size", "wal_autocheckpoint"))
    return db.write(read)


def test_an_import_leaves_the_process_and_the_connection_as_it_found_them(db):
    import gc

    shop = make_shop(db)
    before = _sqlite_settings(db) if db.is_sqlite else None
    text = csv_text(*[f"office,{shop.berlin},credits,{i + 1},Pack {i},,,,,,,,,,,,,,,," for i in range(7)])
    report = run_import(db, shop.actor, text, batch_size=2)
    assert (report.granted, report.error_count) == (7, 0)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    if db.is_sqlite:
        assert _sqlite_settings(db) == before

    # An import that stops half-way (here: its progress callback fails) puts them back too.
    def fail(_rows):
        raise RuntimeError("stop")
    with pytest.raises(RuntimeError):
        run_import(db, shop.actor, text.replace("Pack ", "Other "), batch_size=2, progress=fail)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    if db.is_sqlite:
        assert _sqlite_settings(db) == before
    verify_ok(db, shop.ws)


def test_a_retried_batch_transaction_counts_its_rows_once(db, monkeypatch):
    """Issue 11: the counts of a batch whose transaction is retried (PostgreSQL serialization failure) are
    those of its last attempt (the CLI's `packs import` path; the back office's is tests/web/test_import.py)."""
    from tests.web.test_import import retry_every_write_once

    shop = make_shop(db)
    text = csv_text(
        f"office,{shop.berlin},credits,5,Fast,,,,,,,,,,,,,,,,",
        f"office,{shop.berlin},credits,6,Slow path,,,,,,,,20260115,,,,,,,,",
        "office,off_nope,credits,5,Unknown holder,,,,,,,,,,,,,,,,",
        f"office,{shop.berlin},credits,7,Own key,,,,,,,,,,,,,,,,k1",
        f"office,{shop.berlin},credits,8,Same key,,,,,,,,,,,,,,,,k1",
    )
    attempts = retry_every_write_once(db, monkeypatch)
    report = run_import(db, shop.actor, text, batch_size=3)
    assert 2 in attempts
    assert (report.granted, report.skipped, report.error_count) == (3, 1, 1)
    assert [line for line, _ in report.errors] == [4]
    assert len(packs_of(db, shop.ws)) == 3
    verify_ok(db, shop.ws)


def _interleaved(first, second, pause_at: int):
    """Run first() in a thread stopped before its `pause_at`-th line of importer code, run second() in
    another thread to its end meanwhile, then let first() finish: one exact interleaving of two threads
    (the import's parser and writer), chosen by line. (first's result, second's result or None when
    first() ran fewer lines than that)."""
    import sys
    import threading

    paused, resume, out = threading.Event(), threading.Event(), {}
    lines = 0

    def local(frame, event, _arg):
        nonlocal lines
        if event == "line":
            lines += 1
            if lines == pause_at:
                paused.set()
                assert resume.wait(10)
        return local

    def run_first():
        sys.settrace(lambda frame, _e, _a: local if frame.f_code.co_filename == importer.__file__ else None)
        try:
            out["first"] = first()
        finally:
            sys.settrace(None)
            paused.set()

    thread = threading.Thread(target=run_first)
    thread.start()
    assert paused.wait(10)
    if "first" not in out:
        other = threading.Thread(target=lambda: out.__setitem__("second", second()))
        other.start()
        other.join(10)
    resume.set()
    thread.join(10)
    return out["first"], out.get("second")


def test_dates_rendered_by_two_threads_at_once_are_each_their_own():
    """Issue 11: the stored text of a datetime was memoised in one module-level slot shared by the parser
    thread (dates with offsets) and the writer thread (each batch's `now`, expiry_months): a thread that
    found its own date in the memo could read the text the other thread had just put there. Every point at
    which the writer can be interrupted is tried, with the parser rendering another date there."""
    from datetime import UTC, datetime

    mine = datetime(2026, 1, 15, 12, 0, 0, 1, tzinfo=UTC)
    expected = {"mine": "2026-01-15 12:00:00.000001", "other": "2031-05-06 06:08:09.000000"}
    tried = 0
    for pause_at in range(1, 200):
        first, second = _interleaved(lambda: [importer._rendered(mine).stored for _ in range(2)],
                                     lambda: importer._when("2031-05-06T07:08:09+01:00").stored, pause_at)
        assert first == [expected["mine"]] * 2, pause_at
        if second is None:
            break
        assert second == expected["other"], pause_at
        tried += 1
    assert tried >= 3  # the writer's calls were interrupted at each of their lines


def test_the_tuning_is_put_back_on_every_connection_an_import_used(db):
    """Batches of one import may run on different pooled connections; the last batch puts back only its own,
    and an import that stops early none: restore_all puts back every connection still tuned (the cause of a
    flaky run where a later write found a pooled connection still tuned)."""
    if not db.is_sqlite:
        pytest.skip("the tuning is SQLite's")
    from sqlalchemy.orm import Session

    tuning = importer._SqliteTuning()
    with db.engine.connect() as first, db.engine.connect() as second:
        sessions = [Session(bind=first), Session(bind=second)]
        raws = [s.connection().connection.driver_connection for s in sessions]
        before = [tuple(r.execute(f"PRAGMA {n}").fetchone()[0] for n, _ in importer._TUNED) for r in raws]
        for session in sessions:
            tuning.apply(session)
        assert all(tuple(r.execute(f"PRAGMA {n}").fetchone()[0] for n, _ in importer._TUNED) != b
                   for r, b in zip(raws, before))
        tuning.restore(sessions[1])  # the last batch's connection
        assert tuple(raws[0].execute(f"PRAGMA {n}").fetchone()[0] for n, _ in importer._TUNED) != before[0]
        tuning.restore_all()
        assert [tuple(r.execute(f"PRAGMA {n}").fetchone()[0] for n, _ in importer._TUNED) for r in raws] == before
        assert tuning.saved == {}
        for session in sessions:
            session.close()


def test_a_currency_that_is_not_iso_4217_is_an_error_of_its_line(db):
    shop = make_shop(db)
    text = csv_text(f"office,{shop.berlin},credits,10,Dollars,500,DOL,,,,,,,,,,,,,,",
                    f"office,{shop.berlin},credits,10,Pounds,500,GBP,,,,,,,,,,,,,,")
    report = run_import(db, shop.actor, text)
    assert [line for line, _ in report.errors] == [2] and "ISO 4217" in report.errors[0][1]
    assert [p.currency for p in packs_of(db, shop.ws)] == ["GBP"]


def test_a_date_the_schema_cannot_read_is_said_about_its_column(db):
    shop = make_shop(db)
    report = run_import(db, shop.actor, csv_text(
        f"office,{shop.berlin},credits,100,Bad expiry,,,,,,,,,,2027-13-45T00:00:00Z,,,,,,"))
    [(line, message)] = report.errors
    assert line == 2 and message.startswith("expires_at: not a date"), message
    assert "Input should" not in message and "expires_at.datetime" not in message
