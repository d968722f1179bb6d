"""remaining of pack accounts indexed; the due-pack index carries the id tie-breaker

The credit report filters and sorts packs by remaining credits: posted credits less posted and
pending debits of the pack's ledger account. Without an index on that expression a filter on it
("remaining <= 10") or a sort by it read every active pack (seconds over 1M packs); with
(workspace, remaining) a narrow range is an index range and a page in remaining order is read off the
index (credits/reads.py). Every change of an account's cached totals now also moves its entry here.

The expiry sweep picks due packs by expiry, then id (service.due_pack_ids). Packs made due together
share an expiry (a credit drive, an import), and without the id in the index each batch sorted all of
them again (100k due packs: 150 ms per batch of 2,000); with it a batch is a range read.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_ledger_accounts_available', 'ledger_accounts',
                    ['workspace_id', sa.text('(credits_posted - (debits_posted + debits_pending))')], unique=False)
    op.drop_index('ix_packs_due', table_name='packs')
    op.create_index('ix_packs_due', 'packs', ['status', 'expires_at', 'id'], unique=False)
    # Planner statistics for the two new indexes only (SQLite can analyze one index; the others keep
    # theirs), read in full: sampled (analysis_limit) they claimed ~1,000 accounts per workspace where
    # there were 1M, which made the new index look better than the workspace index for every
    # workspace-wide read. An index-only pass, about a second per million rows. PostgreSQL keeps
    # statistics on an index expression from ANALYZE of its table.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("PRAGMA analysis_limit=0")
        op.execute("ANALYZE ix_ledger_accounts_available")
        op.execute("ANALYZE ix_packs_due")
    else:
        op.execute("ANALYZE ledger_accounts")


def downgrade() -> None:
    op.drop_index('ix_packs_due', table_name='packs')
    op.create_index('ix_packs_due', 'packs', ['status', 'expires_at'], unique=False)
    op.drop_index('ix_ledger_accounts_available', table_name='ledger_accounts')
