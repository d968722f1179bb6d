"""Products carry a warranty (physical goods): an asset bought on an invoice gets its end date (billing.assets).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 07:30:49

products.warranty_months, NULL (no warranty) for every existing product.
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('warranty_months', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_column('warranty_months')

