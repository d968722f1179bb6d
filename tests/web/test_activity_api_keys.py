"""The back-office activity log shows API keys by the rule of GET /v1/api-keys: a manager does not read the
names or prefixes of other users' keys there, nor in its CSV export (F19 of the 2026-12-02 probe)."""

from __future__ import annotations

from sqlalchemy import select

from creditdesk.parties.models import ApiKey
from tests.web.conftest import logged_in


def first_key(db, workspace_id) -> ApiKey:
    with db.read() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.workspace_id == workspace_id))
        session.expunge(key)
        return key


def test_a_manager_sees_other_users_keys_by_id_only(web, db, world):
    key = first_key(db, world.workspace_id)  # the master's "First key"
    manager = logged_in(web, world.manager_email)
    page = manager.get("/activity", params={"object_type": "api_key"})
    assert page.status_code == 200 and key.id in page.text
    assert "First key" not in page.text and key.prefix not in page.text
    export = manager.get("/activity/export.csv", params={"object_type": "api_key"})
    assert export.status_code == 200 and key.id in export.text
    assert "First key" not in export.text and key.prefix not in export.text


def test_a_master_sees_every_key(web, db, world):
    page = logged_in(web, world.master_email).get("/activity", params={"object_type": "api_key"})
    assert "First key" in page.text
