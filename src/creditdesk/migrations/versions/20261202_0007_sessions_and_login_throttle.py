"""Back-office sessions that can be ended (per-user session version) and login throttle counters shared by every worker.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 12:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
