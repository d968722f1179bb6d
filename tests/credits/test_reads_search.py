"""The pack report's text search (`q` of GET /v1/packs and /credits): indexed on both databases (migration
0011), current in the same transaction as every pack write, and a literal, case-insensitive substring
search of name, notes, status label and external reference."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select, text

from creditdesk.credits import importer, reads
from creditdesk.credits import schemas as cs
from creditdesk.credits import packs, transfers
from creditdesk.credits.models import Pack
from tests.credits.helpers import grant, make_shop
from tests.credits.test_importer import csv_text


@pytest.fixture(params=["few", "many"])
def matching(request, db, monkeypatch):
    """Both ways SQLite reads a search: off the FTS table (few matches) and pack by pack in page order,
    each checked (many). PostgreSQL has one way; its "many" run repeats it."""
    if request.param == "many":
        monkeypatch.setattr(reads, "SELECTIVE_MATCHES", 1)
    return request.param


def found(db, actor, q: str, **filters) -> list[str]:
    with db.read() as s:
        return [p.id for p, _ in reads.list_packs(s, actor=actor, q=q, limit=200, **filters).items]


def update(db, actor, pack_id: str, **changes) -> None:
    db.write(lambda s: packs.update_pack(s, pack_id, cs.PackUpdate(**changes), actor=actor))


def test_each_searched_field_is_found_after_create_and_after_update(db, matching):
    shop = make_shop(db)
    by_name = grant(db, shop.actor, "office", shop.berlin, 10, name="Hank bonus hours")
    by_notes = grant(db, shop.actor, "office", shop.berlin, 10, name="Plain", notes="renewal agreed by phone")
    by_label = grant(db, shop.actor, "office", shop.berlin, 10, name="Plain", status_label="drive-winter")
    by_ref = grant(db, shop.actor, "office", shop.berlin, 10, name="Plain", external_ref="DEAL-4711")
    assert found(db, shop.actor, "Hank") == [by_name]
    assert found(db, shop.actor, "bon") == [by_name]  # a part of a word, in the middle of the name
    assert found(db, shop.actor, "onus ho") == [by_name]  # across words
    assert found(db, shop.actor, "AGREED") == [by_notes]  # case does not matter, either way
    assert found(db, shop.actor, "Drive-Winter") == [by_label]
    assert found(db, shop.actor, "deal-47") == [by_ref]
    assert found(db, shop.actor, "plain") == [by_notes, by_label, by_ref]

    update(db, shop.actor, by_notes, notes="called back in March")
    update(db, shop.actor, by_label, status_label="drive-spring")
    update(db, shop.actor, by_name, name="Hank overtime")
    assert found(db, shop.actor, "renewal") == []  # the old text is gone from the index
    assert found(db, shop.actor, "winter") == []
    assert found(db, shop.actor, "bonus") == []
    assert found(db, shop.actor, "back in march") == [by_notes]
    assert found(db, shop.actor, "spring") == [by_label]
    assert found(db, shop.actor, "overtime") == [by_name]
    assert found(db, shop.actor, "hank") == [by_name]


def test_a_search_is_combined_with_the_other_filters_and_pages(db, matching):
    shop = make_shop(db)
    berlin = [grant(db, shop.actor, "office", shop.berlin, 10, name=f"Bonus {i}") for i in range(3)]
    paris = grant(db, shop.actor, "office", shop.paris, 10, name="Bonus paris")
    grant(db, shop.actor, "office", shop.berlin, 10, name="Other")
    assert found(db, shop.actor, "bonus", office_id=shop.berlin) == berlin
    assert found(db, shop.actor, "bonus", office_id=shop.paris) == [paris]
    assert found(db, shop.actor, "bonus", sort="name", descending=True) == [paris, *reversed(berlin)]
    assert found(db, shop.actor, "bonus", sort="remaining", status=["active"]) == [*berlin, paris]
    with db.read() as s:
        first = reads.list_packs(s, actor=shop.actor, q="bonus", limit=2)
        rest = reads.list_packs(s, actor=shop.actor, q="bonus", limit=2, cursor=first.next_cursor)
        assert [p.id for p, _ in first.items + rest.items] == [*berlin, paris] and rest.next_cursor is None


def test_unicode_quotes_and_search_syntax_are_searched_literally(db, matching):
    shop = make_shop(db)
    accented = grant(db, shop.actor, "office", shop.berlin, 10, name="Crédit école")
    quoted = grant(db, shop.actor, "office", shop.berlin, 10, name='The "gold" plan')
    syntax = grant(db, shop.actor, "office", shop.berlin, 10, name="a*b NEAR(c d) -e f:g ^h (x OR y)")
    percent = grant(db, shop.actor, "office", shop.berlin, 10, name="50% off_season")
    assert found(db, shop.actor, "crédit") == [accented]
    assert found(db, shop.actor, "ÉCOLE") == [accented]
    assert found(db, shop.actor, "ole") == [accented]
    assert found(db, shop.actor, '"gold"') == [quoted]
    assert found(db, shop.actor, '"gold" plan') == [quoted]
    assert found(db, shop.actor, 'd" p') == [quoted]
    assert found(db, shop.actor, '"plan') == []
    for q in ("a*b", "NEAR(c d)", "-e f", "f:g", "^h", "(x OR y)", "NEAR(c d) -e f:g"):
        assert found(db, shop.actor, q) == [syntax], q
    for q in ('"', '""', "*", "-", ":", "NEAR", "NOT", "AND", "(", ")", "'", "\\", "^", '"a', "x OR", "a* b"):
        assert syntax not in found(db, shop.actor, q + "zzz")  # never an error, never everything
        found(db, shop.actor, q)
    # LIKE's wildcards are characters like the others.
    assert found(db, shop.actor, "0%") == [percent]
    assert found(db, shop.actor, "0% o") == [percent]
    assert found(db, shop.actor, "f_s") == [percent]
    assert found(db, shop.actor, "%") == [percent]
    assert found(db, shop.actor, "_") == [percent]
    assert found(db, shop.actor, "%%%") == []
    assert found(db, shop.actor, "f%s") == []


def test_short_queries_are_substring_searches_too(db, matching):
    shop = make_shop(db)
    hank = grant(db, shop.actor, "office", shop.berlin, 10, name="Hank bonus hours")
    other = grant(db, shop.actor, "office", shop.berlin, 10, name="Other", notes="ab")
    assert found(db, shop.actor, "k") == [hank]
    assert found(db, shop.actor, "NK") == [hank]
    assert found(db, shop.actor, "AB") == [other]
    assert found(db, shop.actor, "zz") == []


def test_packs_written_by_the_bulk_importer_are_searchable(db, matching):
    shop = make_shop(db)
    report = importer.import_stream(db, io.StringIO(csv_text(
        f"office,{shop.berlin},credits,5,Imported alpha,,,,,ERP-991,,,,,,,,,batch-7,from the old system,",
        f"office,{shop.paris},credits,5,Imported beta,,,,,,,,,,,,,,,,",
    ), newline=""), actor=shop.actor)
    assert report.granted == 2, report
    with db.read() as s:
        alpha, beta = s.scalars(select(Pack.id).where(Pack.workspace_id == shop.ws).order_by(Pack.name)).all()
    assert found(db, shop.actor, "imported") == [alpha, beta] or found(db, shop.actor, "imported") == [beta, alpha]
    assert found(db, shop.actor, "erp-99") == [alpha]
    assert found(db, shop.actor, "batch-7") == [alpha]
    assert found(db, shop.actor, "old sys") == [alpha]
    assert found(db, shop.actor, "ed bet") == [beta]


def test_a_match_in_another_workspace_never_shows(db, matching):
    shop = make_shop(db, name="Shop one")
    other = make_shop(db, name="Shop two")
    mine = grant(db, shop.actor, "office", shop.berlin, 10, name="Quarterly retainer")
    theirs = grant(db, other.actor, "office", other.berlin, 10, name="Quarterly retainer")
    assert found(db, shop.actor, "retainer") == [mine]
    assert found(db, other.actor, "retainer") == [theirs]
    assert found(db, shop.actor, "re") == [mine]


def test_changing_the_holder_and_voiding_keep_the_index_right(db):
    shop = make_shop(db)
    pack = grant(db, shop.actor, "office", shop.berlin, 10, name="Movable hours")
    moved = db.write(lambda s: transfers.change_holder(s, pack, cs.ChangeHolder(
        holder={"kind": "office", "id": shop.paris}), actor=shop.actor))
    hits = found(db, shop.actor, "movable")
    assert pack in hits and (moved.id == pack or moved.id in hits)
    _index_agrees_with_packs(db)


def _index_agrees_with_packs(db) -> None:
    if db.engine.dialect.name != "sqlite":
        return
    with db.engine.connect() as conn:
        # FTS5 compares its index with the external content (the packs) and raises if they differ.
        conn.execute(text("INSERT INTO packs_fts(packs_fts, rank) VALUES ('integrity-check', 1)"))


def test_the_index_exists_at_head_and_agrees_with_the_packs(db):
    make_shop(db)
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "sqlite":
            triggers = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                             "AND tbl_name = 'packs'")))
            # A later batch migration of packs drops these triggers: it must create them again.
            assert {"packs_fts_insert", "packs_fts_update", "packs_fts_delete"} <= triggers
        else:
            indexes = set(conn.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'packs'")))
            assert {f"ix_packs_search_{c}" for c in ("name", "notes", "status_label", "external_ref")} <= indexes
    _index_agrees_with_packs(db)


def _plan(session, stmt) -> str:
    compiled = stmt.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    if session.get_bind().dialect.name == "sqlite":
        return "\n".join(str(r[-1]) for r in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all())
    session.execute(text("SET LOCAL enable_seqscan = off"))
    return "\n".join(r[0] for r in session.execute(text(f"EXPLAIN {compiled}")).all())


def test_a_text_search_reads_the_index(db, monkeypatch):
    shop = make_shop(db)
    grant(db, shop.actor, "office", shop.berlin, 10, name="Indexed search")
    sqlite = db.engine.dialect.name == "sqlite"
    with db.read() as s:
        search = select(Pack.id).where(Pack.workspace_id != "ws_none",
                                       reads.text_search_clause(s, "dexed sea", sqlite))
        plan = _plan(s, search)
        if not sqlite:
            assert "ix_packs_search_name" in plan and "ix_packs_search_notes" in plan, plan
            return
        # The matches come off the FTS index (M: a MATCH constraint), the packs by rowid.
        assert "VIRTUAL TABLE INDEX 0:M" in _plan(s, reads.fts_matches("dexed sea"))
        assert "SEARCH packs USING INTEGER PRIMARY KEY (rowid=?)" in plan.splitlines(), plan
        # Many matches: the packs in page order, each checked; with a letter LIKE cannot fold, each asks
        # the index about its own rowid (=M).
        monkeypatch.setattr(reads, "SELECTIVE_MATCHES", 0)
        plan = _plan(s, select(Pack.id).where(Pack.workspace_id == shop.ws,
                                              reads.text_search_clause(s, "dexed sea", sqlite)))
        assert "packs_fts" not in plan, plan
        plan = _plan(s, select(Pack.id).where(Pack.workspace_id == shop.ws,
                                              reads.text_search_clause(s, "dexéd", sqlite)))
        assert "VIRTUAL TABLE INDEX 0:=M" in plan, plan
