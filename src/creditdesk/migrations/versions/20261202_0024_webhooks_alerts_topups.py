"""webhooks alerts topups (fill in: what this migration adds).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 20:00:00
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
