"""Subscription services paid with credits (seed 002, usage-style): subscription_services.pay_with_credits.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 07:39:32

False for every existing service.
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscription_services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pay_with_credits', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('subscription_services', schema=None) as batch_op:
        batch_op.drop_column('pay_with_credits')

