"""pack report indexes: expiry order with its id tie-breaker; status label filter

The back office's credit report and GET /v1/packs sort active packs by expiry, then id: with the id in
the index, SQLite and PostgreSQL read a page straight off the index instead of sorting every pack
that shares an expiry. A status label (set on packs during credit drives) is filtered and listed by
its own index instead of a scan over every pack.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 19:20:00
"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_packs_status_expiry', table_name='packs')
    op.create_index('ix_packs_status_expiry', 'packs', ['workspace_id', 'status', 'expires_at', 'id'], unique=False)
    op.create_index('ix_packs_label', 'packs', ['workspace_id', 'status_label', 'status', 'expires_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_packs_label', table_name='packs')
    op.drop_index('ix_packs_status_expiry', table_name='packs')
    op.create_index('ix_packs_status_expiry', 'packs', ['workspace_id', 'status', 'expires_at'], unique=False)
