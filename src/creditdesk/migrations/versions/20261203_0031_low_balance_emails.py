"""Low-balance emails (issue 16) (fill in: what this migration adds; an empty revision is dropped at merge time).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03 09:10:00
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
