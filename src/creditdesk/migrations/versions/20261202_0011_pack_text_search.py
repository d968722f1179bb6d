"""Pack text search: the report's `q` (name, notes, status label, external reference) off an index.

A search matching nothing read every pack (3.3-4.9 s over 1M packs). `q` is a case-insensitive substring
search, so both databases index trigrams: any substring of three characters or more is found from the
index.

SQLite: an FTS5 table with the trigram tokenizer, external content on `packs` (it stores no copy of the
text), keyed by the packs' rowid. Triggers keep it current in the same transaction as every pack write, on
every path (services, the importer's executemany, raw SQL), with no change to the writing code. Two
things lose it, and whoever does them must rebuild it (`INSERT INTO packs_fts(packs_fts) VALUES('rebuild')`,
then create the triggers again): a batch migration that copies `packs` into a new table (it drops the
triggers and renumbers the rowids), and a VACUUM that renumbers rowids (SQLite keeps them in practice but
does not promise it for a table without an INTEGER PRIMARY KEY). tests/credits/test_reads_search.py checks
the triggers exist at head and that the index agrees with the packs.

PostgreSQL: pg_trgm GIN indexes on lower(column), the expressions `lower(col) LIKE '%q%'` uses; PostgreSQL
keeps them current itself. pg_trgm ships with PostgreSQL (contrib) and is a trusted extension (13+), so
the database owner can create it. Where it cannot be created the migration goes on without these indexes
and a text search scans the packs as before (correct, slower), and says so in the migration log.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 13:00:00
"""
from alembic import op
from sqlalchemy import text

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

SEARCHED = ("name", "notes", "status_label", "external_ref")


def _values(prefix: str) -> str:
    return ", ".join(f"{prefix}.{c}" for c in SEARCHED)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        cols = ", ".join(SEARCHED)
        # columnsize=0: no per-pack row of token counts (only ranking uses it; the report sorts by its own
        # columns), a b-tree write less per pack.
        op.execute(f"CREATE VIRTUAL TABLE packs_fts USING fts5({cols}, content='packs', content_rowid='rowid', "
                   "columnsize=0, tokenize='trigram')")
        op.execute(f"CREATE TRIGGER packs_fts_insert AFTER INSERT ON packs BEGIN "
                   f"INSERT INTO packs_fts(rowid, {cols}) VALUES (new.rowid, {_values('new')}); END")
        op.execute(f"CREATE TRIGGER packs_fts_delete AFTER DELETE ON packs BEGIN "
                   f"INSERT INTO packs_fts(packs_fts, rowid, {cols}) VALUES ('delete', old.rowid, {_values('old')}); "
                   f"END")
        # Only a change of a searched column re-indexes the pack: consumption and expiry update packs often.
        changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in SEARCHED)
        op.execute(f"CREATE TRIGGER packs_fts_update AFTER UPDATE OF {cols} ON packs WHEN {changed} BEGIN "
                   f"INSERT INTO packs_fts(packs_fts, rowid, {cols}) VALUES ('delete', old.rowid, {_values('old')}); "
                   f"INSERT INTO packs_fts(rowid, {cols}) VALUES (new.rowid, {_values('new')}); END")
        op.execute("INSERT INTO packs_fts(packs_fts) VALUES ('rebuild')")
        return
    if not _trigram_extension(bind):
        return
    for column in SEARCHED:
        op.execute(f"CREATE INDEX ix_packs_search_{column} ON packs USING gin (lower({column}) gin_trgm_ops)")


def _trigram_extension(bind) -> bool:
    """Create pg_trgm if it can be; False (and a warning) where it cannot."""
    if bind.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar():
        return True
    if not bind.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar():
        reason = "it is not installed on this server (PostgreSQL contrib)"
    else:
        # In a savepoint: a refused CREATE EXTENSION must not abort the migration's transaction.
        savepoint = bind.begin_nested()
        try:
            bind.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        except Exception as exc:  # noqa: BLE001 - any refusal (privileges) leaves the search unindexed
            savepoint.rollback()
            reason = f"it could not be created ({str(exc).splitlines()[0]})"
        else:
            savepoint.commit()
            return True
    import logging

    logging.getLogger("alembic.runtime.migration").warning(
        "pg_trgm is not available: %s. Pack text search works without it but scans the packs; "
        "create the extension and run this migration again (downgrade 0010, upgrade head) to index it.", reason)
    return False


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trigger in ("packs_fts_insert", "packs_fts_delete", "packs_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS packs_fts")
        return
    for column in SEARCHED:
        op.execute(f"DROP INDEX IF EXISTS ix_packs_search_{column}")
    # The extension stays: other objects of the database may use it.
