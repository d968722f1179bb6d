"""The schema comes from the migrations, on both backends, and matches the models (alembic check)."""

from __future__ import annotations

import os

from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from creditdesk import migrate
from creditdesk.db import NAMING_CONVENTION, Base

PG_URL = os.environ.get("CREDITDESK_TEST_DATABASE_URL")


def head() -> str:
    return ScriptDirectory(str(migrate.MIGRATIONS)).get_current_head()


def test_upgrade_from_empty_then_check(empty_db):
    assert migrate.is_empty(empty_db)
    assert migrate.current_revision(empty_db) is None
    migrate.upgrade(empty_db)
    assert not migrate.is_empty(empty_db)
    assert migrate.current_revision(empty_db) == head()
    migrate.check(empty_db)  # raises if models and migrations disagree
    tables = set(inspect(empty_db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_upgrade_is_idempotent_and_downgrade_round_trips(empty_db):
    migrate.upgrade(empty_db)
    migrate.upgrade(empty_db)  # nothing to do the second time
    assert migrate.current_revision(empty_db) == head()
    cfg = migrate.alembic_config(empty_db)
    from alembic import command

    with empty_db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(empty_db.engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(empty_db)
    migrate.check(empty_db)


def test_the_test_database_was_built_by_the_migrations(db):
    assert migrate.current_revision(db) == head()
    migrate.check(db)


def test_naming_convention_is_applied(db):
    assert NAMING_CONVENTION["pk"] == "pk_%(table_name)s"
    insp = inspect(db.engine)
    assert insp.get_pk_constraint("workspaces")["name"] == "pk_workspaces"
    assert insp.get_pk_constraint("users")["name"] == "pk_users"
    fks = {fk["name"] for fk in insp.get_foreign_keys("users")}
    assert {"fk_users_workspace_id_workspaces", "fk_users_primary_office_id_offices"} <= fks
    uniques = {uq["name"] for uq in insp.get_unique_constraints("users")}
    assert "uq_users_workspace_id_email" in uniques
    indexes = {ix["name"] for ix in insp.get_indexes("customers")}
    assert "ix_customers_workspace_id" in indexes


def test_every_model_constraint_has_a_conventional_name():
    """Unnamed constraints differ between backends and cannot be dropped portably by later migrations."""
    for table in Base.metadata.tables.values():
        assert table.primary_key.name == f"pk_{table.name}"
        for fk in table.foreign_key_constraints:
            assert fk.name is not None and str(fk.name).startswith("fk_"), (table.name, fk)


def test_db_check_command_agrees(db):
    from typer.testing import CliRunner

    from creditdesk.cli import app

    if db.is_sqlite:
        url = db.url
    else:
        url = db.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["db", "check", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "agree" in result.output
