"""Refunds of account credit: money given back out of what the account's payments left unallocated (an
overpayment, or what a credit note on a paid invoice released). `refunds` is the refund, `refund_parts` the
payments it was taken from.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-04 09:00:00

New tables only: nothing existing changes.
"""
from alembic import op
import sqlalchemy as sa

import creditdesk.db

revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('refunds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('refunded_on', sa.Date(), nullable=False),
    sa.Column('created_by', sa.String(length=40), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_refunds_amount_positive')),
    sa.CheckConstraint("method IN ('cash', 'bank_transfer', 'card', 'other')", name=op.f('ck_refunds_method_known')),
    sa.ForeignKeyConstraint(['account_id'], ['billing_accounts.id'], name=op.f('fk_refunds_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_refunds_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds'))
    )
    op.create_index('ix_refunds_account', 'refunds', ['account_id', 'id'], unique=False)
    op.create_index('ix_refunds_ws_id', 'refunds', ['workspace_id', 'id'], unique=False)
    op.create_table('refund_parts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('refund_id', sa.String(length=40), nullable=False),
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_refund_parts_amount_positive')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_refund_parts_payment_id_payments')),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'], name=op.f('fk_refund_parts_refund_id_refunds')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_refund_parts_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_parts'))
    )
    op.create_index('ix_refund_parts_payment', 'refund_parts', ['payment_id', 'id'], unique=False)
    op.create_index('ix_refund_parts_refund', 'refund_parts', ['refund_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_refund_parts_refund', table_name='refund_parts')
    op.drop_index('ix_refund_parts_payment', table_name='refund_parts')
    op.drop_table('refund_parts')
    op.drop_index('ix_refunds_ws_id', table_name='refunds')
    op.drop_index('ix_refunds_account', table_name='refunds')
    op.drop_table('refunds')
