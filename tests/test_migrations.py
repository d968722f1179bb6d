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
    migrate.downgrade(empty_db, "base")
    assert set(inspect(empty_db.engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(empty_db)
    migrate.check(empty_db)


def test_a_table_other_rows_point_to_is_rebuilt_with_its_rows(empty_db):
    """0020 rebuilds `payments` on SQLite (its method check takes `wallet`) while allocations point to it, and
    `packs` and `credit_types` lose a column on the way down: down to 0019 and up again keeps every row."""
    from creditdesk.billing import invoices, payments
    from creditdesk.billing import invoice_schemas as ins
    from creditdesk.billing.invoice_models import PaymentAllocation
    from sqlalchemy import func, select
    from tests.billing.factories import configure, make_account
    from tests.conftest import make_workspace
    from tests.parties.factories import make_customer, master_actor

    migrate.upgrade(empty_db)
    ws = make_workspace(empty_db)
    actor = master_actor(empty_db, ws.id)
    configure(empty_db, actor=actor)
    account = make_account(empty_db, actor=actor, customer_id=make_customer(empty_db, actor=actor))

    def bill_and_pay(session):
        from creditdesk.catalog import schemas as cs
        from creditdesk.catalog import service as catalog

        catalog.create_product(session, cs.ProductCreate(code="p", name="P", kind="service", unit="each"), actor=actor)
        inv = invoices.create_invoice(session, ins.InvoiceCreate(account_id=account.id, lines=[
            ins.LineCreate(product="p", quantity=1, unit_price=500)]), actor=actor)
        invoices.post_invoice(session, inv.id, actor=actor)
        payments.record_payment(session, ins.PaymentCreate(account_id=account.id, amount=500), actor=actor)
    empty_db.write(bill_and_pay)

    def allocations() -> int:
        with empty_db.read() as session:
            return session.scalar(select(func.count()).select_from(PaymentAllocation))
    assert allocations() == 1
    migrate.downgrade(empty_db, "0019")
    assert allocations() == 1
    migrate.upgrade(empty_db)
    assert allocations() == 1 and migrate.current_revision(empty_db) == head()


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
