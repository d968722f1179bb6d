"""the expiry index carries the id tie-breaker

The credit report sorts active packs by expiry, then id. Packs often share an expiry (a credit drive,
an import with one date for all): without the id in the index the first page had to sort every pack of
that date (2,000 ties: 66 ms; 100k ties: seconds). The filters that must not follow this index now
have their own (0004) or are hinted as selective (office, customer: credits/reads.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 19:40:00
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_packs_status_expiry', table_name='packs')
    op.create_index('ix_packs_status_expiry', 'packs', ['workspace_id', 'status', 'expires_at', 'id'], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("PRAGMA analysis_limit=1000")
    op.execute("ANALYZE packs")


def downgrade() -> None:
    op.drop_index('ix_packs_status_expiry', table_name='packs')
    op.create_index('ix_packs_status_expiry', 'packs', ['workspace_id', 'status', 'expires_at'], unique=False)
