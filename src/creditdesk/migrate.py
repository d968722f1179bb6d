"""Apply and check the Alembic migrations shipped inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from creditdesk.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    _migrate(db, command.upgrade, revision)


def downgrade(db: Database, revision: str) -> None:
    _migrate(db, command.downgrade, revision)


def _migrate(db: Database, step, revision: str) -> None:
    """Run migrations in one transaction. On SQLite a migration that changes a constraint rebuilds the table
    (alembic's batch mode: copy, DROP, rename), and with foreign keys enforced the DROP of a table other rows
    point to fails. SQLite's own procedure for such changes: foreign keys off outside the transaction, the
    change, `PRAGMA foreign_key_check` (any row it reports refuses the migration), foreign keys back on."""
    cfg = alembic_config(db)
    with db.engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.dbapi_connection if sqlite else None
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")  # no transaction is open yet: the pragma takes effect
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                step(cfg, revision)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def check(db: Database) -> None:
    """Raise if the models and the migrations disagree (alembic check)."""
    cfg = alembic_config(db)
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.check(cfg)


def is_empty(db: Database) -> bool:
    return not inspect(db.engine).has_table("alembic_version")


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
