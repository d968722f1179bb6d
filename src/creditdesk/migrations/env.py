"""Alembic environment. The URL comes from the caller (creditdesk db upgrade) or from the settings."""

from alembic import context
from sqlalchemy import create_engine

from creditdesk.config import get_settings
from creditdesk.db import normalize_url
from creditdesk.models import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()


# Pack text search (migration 0011) lives outside the models: SQLite's FTS5 table and its shadow tables,
# PostgreSQL's trigram indexes. alembic check must neither ask to drop them nor to create them.
_SEARCH_OBJECTS = ("packs_fts", "ix_packs_search_")


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    return not (reflected and compare_to is None and name and name.startswith(_SEARCH_OBJECTS))


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
