"""pack.expiring webhook events (issue 16): which packs had theirs.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03 09:10:00

One new table, pack_expiring_events (webhooks.models.PackExpiringEvent): a row per pack whose pack.expiring
event was emitted, its primary key the pack, so the event goes out once per pack whatever runs the job.
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pack_expiring_events',
    sa.Column('pack_id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('event_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['pack_id'], ['packs.id'], name=op.f('fk_pack_expiring_events_pack_id_packs')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'],
                            name=op.f('fk_pack_expiring_events_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('pack_id', name=op.f('pk_pack_expiring_events'))
    )


def downgrade() -> None:
    op.drop_table('pack_expiring_events')
