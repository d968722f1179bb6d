"""Credit packages sold on invoices: the pack made when its invoice is paid.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 16:30:00
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('invoice_lines') as batch:
        batch.add_column(sa.Column('package_holder_kind', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('package_holder_id', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('invoice_lines') as batch:
        batch.drop_column('package_holder_id')
        batch.drop_column('package_holder_kind')
