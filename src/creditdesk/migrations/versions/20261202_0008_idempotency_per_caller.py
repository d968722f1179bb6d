"""Idempotency keys scoped to the caller (API key or user), not only the workspace.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
