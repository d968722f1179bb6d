"""Idempotency keys scoped to the caller (API key or user), not only the workspace.

The key becomes (workspace_id, caller, key), the caller being the user the request acted as. Rows
stored before cannot be given their caller (they did not record who sent them), so they are deleted:
they are at most `idempotency_retention_hours` (48 h) of replays, and a row kept under a caller that
matches nobody would replay nothing anyway. A retry sent across the upgrade of a request answered
before it runs again: let clients' retries drain before upgrading.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM idempotency_keys")
    # SQLite cannot change a primary key in place: batch mode copies the table; PostgreSQL alters it.
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('caller', sa.String(length=64), nullable=False))
        batch_op.drop_constraint('pk_idempotency_keys', type_='primary')
        batch_op.create_primary_key('pk_idempotency_keys', ['workspace_id', 'caller', 'key'])


def downgrade() -> None:
    # Two callers' rows may share a key, which the old primary key cannot hold.
    op.execute("DELETE FROM idempotency_keys")
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_constraint('pk_idempotency_keys', type_='primary')
        batch_op.create_primary_key('pk_idempotency_keys', ['workspace_id', 'key'])
        batch_op.drop_column('caller')
