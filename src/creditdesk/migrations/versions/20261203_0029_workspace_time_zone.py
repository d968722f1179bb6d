"""Workspace time zone (issue 17): workspaces.time_zone, an IANA name; UTC for every existing workspace
(bare dates kept meaning what they meant until a master sets the zone).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03 09:10:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), server_default='UTC', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
