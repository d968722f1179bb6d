"""pack report indexes: the status label filter, and active packs in creation order

The back office's credit report and GET /v1/packs filter active packs by status label (set on packs
during credit drives) and sort them by expiry, then id. Without an index of its own that is a scan over
every active pack in expiry order; with (workspace, label, status, expiry, id) it is a range read in
the page's order. GET /v1/packs?status=active sorts by id: (workspace, status, id) reads a page in
that order instead of sorting every active pack. (Putting the id into the expiry index instead made SQLite's planner prefer that
index for every filter, offices and labels included: measured, and reverted.)

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
    op.create_index('ix_packs_label', 'packs', ['workspace_id', 'status_label', 'status', 'expires_at', 'id'],
                    unique=False)
    op.create_index('ix_packs_ws_status_id', 'packs', ['workspace_id', 'status', 'id'], unique=False)
    # Planner statistics for the new indexes: SQLite would otherwise judge them with the old ones' numbers
    # (measured: an office filter went from an index lookup to a scan of every active pack).
    if op.get_bind().dialect.name == "sqlite":
        op.execute("PRAGMA analysis_limit=1000")
    op.execute("ANALYZE packs")


def downgrade() -> None:
    op.drop_index('ix_packs_ws_status_id', table_name='packs')
    op.drop_index('ix_packs_label', table_name='packs')
