"""Migration 0009 (F11): internal pack keys leave the users' key column, and only they do."""

from __future__ import annotations

import os

from sqlalchemy import text

from creditdesk import migrate
from creditdesk.audit import Actor
from creditdesk.credits import schemas as cs
from creditdesk.credits import credit_types, packs
from creditdesk.db import Database
from creditdesk.parties import service as parties

PG_URL = os.environ.get("CREDITDESK_TEST_DATABASE_URL")


def _keys(db: Database, with_internal: bool) -> dict[str, tuple]:
    columns = "name, idempotency_key" + (", internal_key" if with_internal else "")
    with db.engine.connect() as conn:
        return {row[0]: tuple(row[1:]) for row in conn.execute(text(f"SELECT {columns} FROM packs"))}


def test_internal_keys_move_to_their_column_and_users_keys_stay(empty_db):
    db = empty_db
    migrate.upgrade(db)

    def seed(session):
        ws, master, _key, _secret = parties.create_workspace(session, name="M", master_name="M",
                                                             master_email="m@example.com")
        actor = Actor.system(ws.id)
        credit_types.create_credit_type(session, cs.CreditTypeCreate(code="credits", name="Credits"), actor=actor)

        def grant(name, **kw):
            fields = {k: kw.pop(k) for k in ("source", "external_ref", "idempotency_key") if k in kw}
            return packs.grant_pack(session, cs.PackCreate(holder={"kind": "workspace"}, credit_type="credits",
                                                           quantity=1, name=name, **fields), actor=actor, **kw)
        grant("bought", source="purchase", external_ref="smsp_x", purchase_id="smsp_x")
        grant("squatted", idempotency_key="sms_purchase:smsp_y")
        grant("claimed", idempotency_key="sms_purchase:smsp_w")  # made a false purchase below
        grant("imported", internal_key="import:abc:1")
        grant("own key", idempotency_key="k1")
    db.write(seed)
    migrate.downgrade(db, "0008")
    with db.engine.begin() as conn:
        # A pack claiming to be a purchase under another purchase's key (possible before 0009).
        conn.execute(text("UPDATE packs SET source = 'purchase', external_ref = 'smsp_z' WHERE name = 'claimed'"))
    # Before 0009 every key was in the one column.
    assert _keys(db, with_internal=False) == {
        "bought": ("sms_purchase:smsp_x",), "squatted": ("sms_purchase:smsp_y",),
        "claimed": ("sms_purchase:smsp_w",), "imported": ("import:abc:1",), "own key": ("k1",)}
    migrate.upgrade(db)
    assert _keys(db, with_internal=True) == {
        "bought": (None, "sms_purchase:smsp_x"),  # the purchase's own pack
        "squatted": ("sms_purchase:smsp_y", None),  # a user's key of that form stays a user's
        "claimed": ("sms_purchase:smsp_w", None),  # not the key of its own external_ref: a user's
        "imported": (None, "import:abc:1"),
        "own key": ("k1", None)}
    migrate.check(db)
