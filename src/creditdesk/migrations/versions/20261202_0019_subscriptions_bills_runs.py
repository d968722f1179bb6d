"""subscriptions bills runs (fill in: what this migration adds).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 20:00:00
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
