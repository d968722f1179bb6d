"""Internal pack keys apart from user keys; what SMS-governed credit types need on every path.

A pack's `idempotency_key` was one namespace for the keys users give their grants and for the keys
internal grants derive (`sms_purchase:<purchase id>` for a paid SMS purchase's pack, `import:<sha>:<n>`
for a CSV row without a key of its own), so a user could take an internal key first: a paid purchase
then granted nothing. Internal keys now live in their own column, `internal_key`, that no request can
write (unique per workspace, as user keys are).

Existing internal keys move there: the purchase packs whose key is exactly their own purchase's (a key
of that form on any other pack was a user's, and stays one), and the content-derived keys of CSV rows
(so that re-running an old file still skips the rows it granted).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 12:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('packs', sa.Column('internal_key', sa.String(length=255), nullable=True))
    op.execute("UPDATE packs SET internal_key = idempotency_key, idempotency_key = NULL "
               "WHERE source = 'purchase' AND external_ref IS NOT NULL "
               "AND idempotency_key = 'sms_purchase:' || external_ref")
    op.execute("UPDATE packs SET internal_key = idempotency_key, idempotency_key = NULL "
               "WHERE idempotency_key LIKE 'import:%'")
    op.create_index('uq_packs_workspace_id_internal_key', 'packs', ['workspace_id', 'internal_key'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_packs_workspace_id_internal_key', table_name='packs')
    # Back into the one namespace, except where a user has taken the same key since (theirs stays).
    op.execute("UPDATE packs SET idempotency_key = internal_key WHERE internal_key IS NOT NULL "
               "AND idempotency_key IS NULL AND NOT EXISTS (SELECT 1 FROM packs AS taken "
               "WHERE taken.workspace_id = packs.workspace_id AND taken.idempotency_key = packs.internal_key)")
    op.drop_column('packs', 'internal_key')
