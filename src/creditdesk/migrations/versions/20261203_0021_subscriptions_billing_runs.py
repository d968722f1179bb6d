"""Subscriptions, their services and billing runs (seed 002, billing.subscriptions); bills are invoices
with a subscription and a period.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 06:50:23

New tables (billing.subscription_models); invoices get subscription_id, period_start and period_end (NULL
for every existing invoice); billing settings keep the next subscription number.
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('billing_runs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=True),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('subscriptions_billed', sa.Integer(), nullable=False),
    sa.Column('bills', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('actor_id', sa.String(length=40), nullable=True),
    sa.Column('started_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('finished_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_billing_runs_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_runs'))
    )
    op.create_table('subscriptions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('frequency', sa.String(length=10), nullable=False),
    sa.Column('billing_day', sa.Integer(), nullable=False),
    sa.Column('started_on', sa.Date(), nullable=True),
    sa.Column('billed_through', sa.Date(), nullable=True),
    sa.Column('suspended_on', sa.Date(), nullable=True),
    sa.Column('terminated_on', sa.Date(), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("frequency IN ('monthly', 'quarterly', 'yearly')", name=op.f('ck_subscriptions_frequency_known')),
    sa.CheckConstraint("status IN ('draft', 'active', 'suspended', 'terminated')", name=op.f('ck_subscriptions_status_known')),
    sa.CheckConstraint('billing_day >= 1 AND billing_day <= 28', name=op.f('ck_subscriptions_billing_day_range')),
    sa.ForeignKeyConstraint(['account_id'], ['billing_accounts.id'], name=op.f('fk_subscriptions_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_subscriptions_customer_id_customers')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_subscriptions_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscriptions')),
    sa.UniqueConstraint('workspace_id', 'number', name=op.f('uq_subscriptions_workspace_id_number'))
    )
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_subscriptions_account', ['workspace_id', 'account_id'], unique=False)
        batch_op.create_index('ix_subscriptions_due', ['status', 'billed_through', 'id'], unique=False)

    op.create_table('subscription_services',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('subscription_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.BigInteger(), nullable=True),
    sa.Column('start_on', sa.Date(), nullable=False),
    sa.Column('end_on', sa.Date(), nullable=True),
    sa.Column('billed_through', sa.Date(), nullable=True),
    sa.Column('removed_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('end_on IS NULL OR end_on >= start_on', name=op.f('ck_subscription_services_ends_after_start')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_subscription_services_quantity_positive')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_subscription_services_product_id_products')),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], name=op.f('fk_subscription_services_subscription_id_subscriptions')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_subscription_services_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_services'))
    )
    with op.batch_alter_table('subscription_services', schema=None) as batch_op:
        batch_op.create_index('ix_subscription_services_subscription', ['subscription_id'], unique=False)

    with op.batch_alter_table('billing_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_subscription_number', sa.Integer(), server_default='1', nullable=False))

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subscription_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('period_start', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('period_end', sa.Date(), nullable=True))
        batch_op.create_index(batch_op.f('ix_invoices_subscription_id'), ['subscription_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_subscription_id'))
        batch_op.drop_column('period_end')
        batch_op.drop_column('period_start')
        batch_op.drop_column('subscription_id')

    with op.batch_alter_table('billing_settings', schema=None) as batch_op:
        batch_op.drop_column('next_subscription_number')

    with op.batch_alter_table('subscription_services', schema=None) as batch_op:
        batch_op.drop_index('ix_subscription_services_subscription')

    op.drop_table('subscription_services')
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_subscriptions_due')
        batch_op.drop_index('ix_subscriptions_account')

    op.drop_table('subscriptions')
    op.drop_table('billing_runs')
