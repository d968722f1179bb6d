"""Packs from CRM deals below the API: the same deal at once (two threads: one pack; on PostgreSQL two real
transactions racing on the key), the same unmapped deal at once (one review item), the CLI import through
the same code, and migration crm1 on packs that already shared an external ref."""

from __future__ import annotations

import threading

from sqlalchemy import func, select, text
from typer.testing import CliRunner

from creditdesk import migrate
from creditdesk.audit import Actor
from creditdesk.credits import credit_types, packs
from creditdesk.credits import schemas as cs
from creditdesk.credits.models import Pack
from creditdesk.db import get_database
from creditdesk.errors import Conflict
from creditdesk.integrations import deals, hubspot
from creditdesk.integrations.models import CrmEvent, CrmReviewItem
from creditdesk.parties import service as parties
from tests.api.test_billing_accounts import Api
from tests.api.test_integrations import setup_crm
from tests.integrations.signing import body_of, deal_event


def _race(db, settings_id: str, bodies: list[bytes]) -> list:
    """Each body received by its own thread, all released at once."""
    from creditdesk.integrations.models import CrmIntegration

    barrier = threading.Barrier(len(bodies))
    results: list = [None] * len(bodies)

    def work(n: int) -> None:
        def write(session):
            settings = session.get(CrmIntegration, settings_id)
            barrier.wait(timeout=10)
            return hubspot.receive(session, settings, bodies[n])
        try:
            results[n] = db.write(write)
        except Exception as exc:  # shown by the assertion below
            results[n] = exc

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def _settings_id(db, workspace_id: str) -> str:
    with db.read() as session:
        return deals.settings_row(session, workspace_id).id


def test_the_same_deal_at_once_makes_one_pack(db, client, workspace):
    setup_crm(Api(client, workspace.headers))
    bodies = [body_of(deal_event(4242, event_id=f"race-{n}")) for n in range(2)]
    results = _race(db, _settings_id(db, workspace.id), bodies) if db.dialect == "postgresql" else \
        [db.write(lambda s, b=b: hubspot.receive(s, deals.settings_row(s, workspace.id), b)) for b in bodies]
    assert not [r for r in results if isinstance(r, Exception)], results
    outcomes = sorted(r.events[0].outcome for r in results)
    assert outcomes == ["pack_created", "pack_exists"]
    assert len({r.events[0].pack_id for r in results}) == 1
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Pack).where(
            Pack.workspace_id == workspace.id, Pack.external_ref == "hubspot:deal:4242")) == 1
        assert s.scalar(select(func.count()).select_from(CrmEvent).where(CrmEvent.workspace_id == workspace.id)) == 2


def test_the_same_event_and_an_unmapped_deal_at_once(db, client, workspace):
    """Two deliveries of one event: it is recorded once. Two events of one unmapped deal: one review item."""
    setup_crm(Api(client, workspace.headers))
    sid = _settings_id(db, workspace.id)
    same = body_of(deal_event(7, event_id="twice"))
    unmapped = [body_of(deal_event(8, event_id=f"u-{n}", company="404")) for n in range(2)]
    if db.dialect == "postgresql":
        first, second = _race(db, sid, [same, same]), _race(db, sid, unmapped)
    else:
        receive = lambda b: db.write(lambda s: hubspot.receive(s, deals.settings_row(s, workspace.id), b))  # noqa
        first, second = [receive(same), receive(same)], [receive(b) for b in unmapped]
    assert not [r for r in first + second if isinstance(r, Exception)], first + second
    assert sorted(r.events[0].outcome for r in first) == ["duplicate_event", "pack_created"]
    assert [r.events[0].outcome for r in second] == ["review", "review"]
    with db.read() as s:
        items = s.scalars(select(CrmReviewItem).where(CrmReviewItem.workspace_id == workspace.id)).all()
        assert [(i.deal_id, i.reason, i.attempts) for i in items] == [("8", "unknown_company", 2)]
        assert s.scalar(select(func.count()).select_from(CrmEvent).where(
            CrmEvent.workspace_id == workspace.id, CrmEvent.event_id == "twice")) == 1


def test_cli_deals_import_through_the_same_code(tmp_path, monkeypatch):
    from creditdesk.cli import app
    from creditdesk.config import get_settings

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CREDITDESK_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        db = get_database(url)
        migrate.upgrade(db)

        def seed(session):
            ws, _master, _key, _secret = parties.create_workspace(session, name="CLI deals", master_name="M",
                                                                  master_email="m@example.com")
            return ws.id
        ws_id = db.write(seed)
        from fastapi.testclient import TestClient

        from creditdesk.api.app import create_app
        with db.read() as session:
            from creditdesk.parties.models import User
            master_id = session.scalar(select(User.id).where(User.workspace_id == ws_id))
        key = db.write(lambda s: parties.create_api_key(s, parties_key_body(master_id),
                                                        actor=Actor.system(ws_id))[1])
        with TestClient(create_app(db=db)) as client:
            crm = setup_crm(Api(client, {"Authorization": f"Bearer {key}"}))
        path = tmp_path / "deals.csv"
        path.write_text("deal_id,name,holder_kind,holder_id,product_id,quantity\n"
                        f"D-1,First,customer,{crm['customer']},1234,2\n"
                        "D-2,Unmapped,,,1234,1\n")
        runner = CliRunner()
        first = runner.invoke(app, ["deals", "import", str(path), "--workspace", ws_id])
        assert first.exit_code == 0, first.output
        assert "1 pack(s) made, 0 made before, 1 to review" in first.output
        again = runner.invoke(app, ["deals", "import", str(path), "--workspace", ws_id])
        assert "0 pack(s) made, 1 made before, 1 to review" in again.output
        with db.read() as s:
            made = s.scalars(select(Pack).where(Pack.workspace_id == ws_id, Pack.source == "crm_deal")).all()
            assert [(p.external_ref, p.quantity) for p in made] == [("import:deal:D-1", 20)]
        bad = tmp_path / "bad.csv"
        bad.write_text("deal_id,quantity,colour\nX,1,red\n")
        refused = runner.invoke(app, ["deals", "import", str(bad), "--workspace", ws_id])
        assert refused.exit_code == 1 and "csv_header_invalid" in refused.output
    finally:
        get_settings.cache_clear()


def parties_key_body(user_id: str):
    from creditdesk.parties import schemas as ps

    return ps.ApiKeyCreate(name="cli test", user_id=user_id)


def test_migration_crm1_keeps_the_oldest_pack_as_the_owner_of_a_shared_ref(empty_db):
    db = empty_db
    migrate.upgrade(db)

    def seed(session):
        ws, _m, _k, _s = parties.create_workspace(session, name="M", master_name="M", master_email="m@example.com")
        actor = Actor.system(ws.id)
        credit_types.create_credit_type(session, cs.CreditTypeCreate(code="credits", name="Credits"), actor=actor)
        for name, source, ref in (("oldest", "crm_deal", "deal-981"), ("second", "crm_deal", "r2"),
                                  ("third", "crm_deal", "r3"), ("manual", "manual", "deal-981"),
                                  ("promo", "promotion", "product:x"), ("promo2", "promotion", "product:y")):
            packs.grant_pack(session, cs.PackCreate(holder={"kind": "workspace"}, credit_type="credits", quantity=1,
                                                    name=name, source=source, external_ref=ref), actor=actor)
        return ws.id
    ws_id = db.write(seed)
    migrate.downgrade(db, "0022")
    with db.engine.begin() as conn:
        # Free text before crm1: three deal packs and a manual one share a ref, and so do two promotions.
        conn.execute(text("UPDATE packs SET external_ref = 'deal-981' WHERE name IN ('second', 'third')"))
        conn.execute(text("UPDATE packs SET external_ref = 'product:x' WHERE name = 'promo2'"))
        conn.execute(text("UPDATE packs SET created_at = (SELECT created_at FROM packs WHERE name = 'second') "
                          "WHERE name = 'third'"))  # a tie on created_at: the smaller id wins
    migrate.upgrade(db)
    migrate.check(db)
    with db.engine.connect() as conn:
        keys = dict(conn.execute(text("SELECT name, external_key FROM packs")).all())
    assert keys == {"oldest": "deal-981", "second": None, "third": None, "manual": "deal-981", "promo": None,
                    "promo2": None}
    # The key holds from now on: the oldest answers, another grant is refused naming it.
    actor = Actor.system(ws_id)
    grant = dict(holder={"kind": "workspace"}, credit_type="credits", quantity=1, name="oldest", source="crm_deal",
                 external_ref="deal-981")
    with db.read() as s:
        oldest = s.scalar(select(Pack.id).where(Pack.name == "oldest"))
    assert db.write(lambda s: packs.grant_pack(s, cs.PackCreate(**grant), actor=actor).id) == oldest
    try:
        db.write(lambda s: packs.grant_pack(s, cs.PackCreate(**{**grant, "quantity": 2}), actor=actor))
    except Conflict as exc:
        assert (exc.code, exc.details["pack_id"]) == ("external_ref_taken", oldest)
    else:
        raise AssertionError("a second grant for the ref was made")
