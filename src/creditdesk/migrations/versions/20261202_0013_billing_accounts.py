"""Billing accounts: addresses, billing settings, conversion rates, credit terms, accounts, accounting periods.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 15:20:00

Depends on nothing of 0012 (the catalogue): only on workspaces, customers and the ledger.
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounting_periods',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('accounts_closed', sa.Integer(), nullable=False),
    sa.Column('closed_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('closed_by', sa.String(length=40), nullable=True),
    sa.CheckConstraint('end_date >= start_date', name=op.f('ck_accounting_periods_dates_ordered')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_accounting_periods_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounting_periods')),
    sa.UniqueConstraint('workspace_id', 'start_date', name=op.f('uq_accounting_periods_workspace_id_start_date'))
    )
    op.create_table('billing_settings',
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('default_currency', sa.String(length=3), nullable=False),
    sa.Column('multi_currency', sa.Boolean(), nullable=False),
    sa.Column('enabled_currencies', sa.JSON(), nullable=False),
    sa.Column('credit_period_days', sa.Integer(), nullable=False),
    sa.Column('credit_period_min_days', sa.Integer(), nullable=False),
    sa.Column('credit_period_max_days', sa.Integer(), nullable=False),
    sa.Column('next_account_number', sa.Integer(), nullable=False),
    sa.Column('period_frequency', sa.String(length=12), nullable=True),
    sa.Column('period_start', sa.Date(), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('credit_period_min_days >= 0 AND credit_period_min_days <= credit_period_days AND credit_period_days <= credit_period_max_days', name=op.f('ck_billing_settings_credit_period_in_range')),
    sa.CheckConstraint('next_account_number >= 1', name=op.f('ck_billing_settings_next_number_positive')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_billing_settings_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('workspace_id', name=op.f('pk_billing_settings'))
    )
    op.create_table('conversion_rates',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('from_currency', sa.String(length=3), nullable=False),
    sa.Column('to_currency', sa.String(length=3), nullable=False),
    sa.Column('rate_scaled', sa.BigInteger(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('from_currency <> to_currency', name=op.f('ck_conversion_rates_distinct_currencies')),
    sa.CheckConstraint('rate_scaled > 0', name=op.f('ck_conversion_rates_rate_positive')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_conversion_rates_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversion_rates')),
    sa.UniqueConstraint('workspace_id', 'from_currency', 'to_currency', 'valid_from', name=op.f('uq_conversion_rates_workspace_id_from_currency_to_currency_valid_from'))
    )
    op.create_table('customer_addresses',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('line1', sa.String(length=200), nullable=False),
    sa.Column('line2', sa.String(length=200), nullable=True),
    sa.Column('city', sa.String(length=100), nullable=False),
    sa.Column('region', sa.String(length=100), nullable=True),
    sa.Column('postcode', sa.String(length=20), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('is_primary', sa.Boolean(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('length(country) = 2', name=op.f('ck_customer_addresses_country_alpha2')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_addresses_customer_id_customers')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_customer_addresses_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_addresses'))
    )
    with op.batch_alter_table('customer_addresses', schema=None) as batch_op:
        batch_op.create_index('ix_customer_addresses_customer', ['workspace_id', 'customer_id', 'id'], unique=False)

    op.create_table('billing_accounts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('classification', sa.String(length=100), nullable=True),
    sa.Column('billing_address_id', sa.String(length=40), nullable=True),
    sa.Column('credit_period_days', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('ledger_account_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('active', 'suspended', 'terminated')", name=op.f('ck_billing_accounts_status_known')),
    sa.CheckConstraint('credit_period_days >= 0', name=op.f('ck_billing_accounts_credit_period_not_negative')),
    sa.ForeignKeyConstraint(['billing_address_id'], ['customer_addresses.id'], name=op.f('fk_billing_accounts_billing_address_id_customer_addresses')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_billing_accounts_customer_id_customers')),
    sa.ForeignKeyConstraint(['ledger_account_id'], ['ledger_accounts.id'], name=op.f('fk_billing_accounts_ledger_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_billing_accounts_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_accounts')),
    sa.UniqueConstraint('ledger_account_id', name=op.f('uq_billing_accounts_ledger_account_id')),
    sa.UniqueConstraint('workspace_id', 'number', name=op.f('uq_billing_accounts_workspace_id_number'))
    )
    with op.batch_alter_table('billing_accounts', schema=None) as batch_op:
        batch_op.create_index('ix_billing_accounts_customer', ['workspace_id', 'customer_id', 'id'], unique=False)
        batch_op.create_index('ix_billing_accounts_ws_id', ['workspace_id', 'id'], unique=False)

    op.create_table('account_period_balances',
    sa.Column('period_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('debits', sa.BigInteger(), nullable=False),
    sa.Column('credits', sa.BigInteger(), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['billing_accounts.id'], name=op.f('fk_account_period_balances_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['period_id'], ['accounting_periods.id'], name=op.f('fk_account_period_balances_period_id_accounting_periods')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_account_period_balances_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('period_id', 'account_id', name=op.f('pk_account_period_balances'))
    )
    with op.batch_alter_table('account_period_balances', schema=None) as batch_op:
        batch_op.create_index('ix_account_period_balances_account', ['account_id', 'period_id'], unique=False)

    op.create_table('billing_account_entries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('transfer_id', sa.String(length=40), nullable=False),
    sa.Column('direction', sa.String(length=6), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('source_amount', sa.BigInteger(), nullable=True),
    sa.Column('source_currency', sa.String(length=3), nullable=True),
    sa.Column('rate_id', sa.String(length=40), nullable=True),
    sa.Column('rate_scaled', sa.BigInteger(), nullable=True),
    sa.Column('rate_valid_from', sa.Date(), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("direction IN ('debit', 'credit')", name=op.f('ck_billing_account_entries_direction_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_billing_account_entries_amount_positive')),
    sa.ForeignKeyConstraint(['account_id'], ['billing_accounts.id'], name=op.f('fk_billing_account_entries_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['rate_id'], ['conversion_rates.id'], name=op.f('fk_billing_account_entries_rate_id_conversion_rates')),
    sa.ForeignKeyConstraint(['transfer_id'], ['ledger_transfers.id'], name=op.f('fk_billing_account_entries_transfer_id_ledger_transfers')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_billing_account_entries_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_account_entries')),
    sa.UniqueConstraint('transfer_id', name=op.f('uq_billing_account_entries_transfer_id'))
    )
    with op.batch_alter_table('billing_account_entries', schema=None) as batch_op:
        batch_op.create_index('ix_billing_account_entries_account', ['account_id', 'id'], unique=False)




def downgrade() -> None:
    with op.batch_alter_table('billing_account_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_billing_account_entries_account')

    op.drop_table('billing_account_entries')
    with op.batch_alter_table('account_period_balances', schema=None) as batch_op:
        batch_op.drop_index('ix_account_period_balances_account')

    op.drop_table('account_period_balances')
    with op.batch_alter_table('billing_accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_billing_accounts_ws_id')
        batch_op.drop_index('ix_billing_accounts_customer')

    op.drop_table('billing_accounts')
    with op.batch_alter_table('customer_addresses', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_addresses_customer')

    op.drop_table('customer_addresses')
    op.drop_table('conversion_rates')
    op.drop_table('billing_settings')
    op.drop_table('accounting_periods')
