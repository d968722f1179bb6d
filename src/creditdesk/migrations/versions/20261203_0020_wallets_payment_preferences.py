"""Wallets, payment preferences, cards and gateway charges of accounts (seed 004, billing.wallets and
billing.payment_preferences).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 06:37:26

New tables (billing.wallet_models); credit_types.wallet_currency marks wallet money types; packs.wallet_id
ties a pack to its wallet. Existing rows are not wallets: NULL.
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('payment_preferences',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('gateway', sa.String(length=20), nullable=True),
    sa.Column('opt_in_subscriptions', sa.Boolean(), nullable=False),
    sa.Column('opt_in_purchases', sa.Boolean(), nullable=False),
    sa.Column('use_billing_address', sa.Boolean(), nullable=False),
    sa.Column('default_card_id', sa.String(length=40), nullable=True),
    sa.Column('gateway_customer_ref', sa.String(length=100), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('card', 'wallet') OR (NOT opt_in_subscriptions AND NOT opt_in_purchases)", name=op.f('ck_payment_preferences_opt_in_card_or_wallet')),
    sa.CheckConstraint("kind IN ('manual', 'bank_transfer', 'card', 'wallet')", name=op.f('ck_payment_preferences_kind_known')),
    sa.ForeignKeyConstraint(['account_id'], ['billing_accounts.id'], name=op.f('fk_payment_preferences_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_payment_preferences_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_preferences'))
    )
    with op.batch_alter_table('payment_preferences', schema=None) as batch_op:
        batch_op.create_index('ix_payment_preferences_account', ['workspace_id', 'account_id'], unique=False)

    op.create_table('wallets',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('credit_type_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['billing_accounts.id'], name=op.f('fk_wallets_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['credit_type_id'], ['credit_types.id'], name=op.f('fk_wallets_credit_type_id_credit_types')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_wallets_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wallets')),
    sa.UniqueConstraint('account_id', name=op.f('uq_wallets_account_id'))
    )
    op.create_table('payment_cards',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('preference_id', sa.String(length=40), nullable=False),
    sa.Column('gateway', sa.String(length=20), nullable=False),
    sa.Column('card_ref', sa.String(length=100), nullable=False),
    sa.Column('brand', sa.String(length=20), nullable=False),
    sa.Column('last4', sa.String(length=4), nullable=False),
    sa.Column('exp_month', sa.Integer(), nullable=False),
    sa.Column('exp_year', sa.Integer(), nullable=False),
    sa.Column('removed', sa.Boolean(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('length(last4) = 4', name=op.f('ck_payment_cards_last4_four')),
    sa.ForeignKeyConstraint(['preference_id'], ['payment_preferences.id'], name=op.f('fk_payment_cards_preference_id_payment_preferences')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_payment_cards_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_cards'))
    )
    with op.batch_alter_table('payment_cards', schema=None) as batch_op:
        batch_op.create_index('ix_payment_cards_preference', ['preference_id'], unique=False)

    op.create_table('wallet_transactions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('wallet_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=True),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('payment_id', sa.String(length=40), nullable=True),
    sa.Column('pack_id', sa.String(length=40), nullable=True),
    sa.Column('actor_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('top_up', 'payment', 'refund')", name=op.f('ck_wallet_transactions_kind_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_wallet_transactions_amount_positive')),
    sa.ForeignKeyConstraint(['pack_id'], ['packs.id'], name=op.f('fk_wallet_transactions_pack_id_packs')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_wallet_transactions_payment_id_payments')),
    sa.ForeignKeyConstraint(['wallet_id'], ['wallets.id'], name=op.f('fk_wallet_transactions_wallet_id_wallets')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_wallet_transactions_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wallet_transactions'))
    )
    with op.batch_alter_table('wallet_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_wallet_transactions_wallet', ['wallet_id', 'id'], unique=False)

    op.create_table('gateway_charges',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('preference_id', sa.String(length=40), nullable=False),
    sa.Column('card_id', sa.String(length=40), nullable=False),
    sa.Column('invoice_id', sa.String(length=40), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('gateway_ref', sa.String(length=100), nullable=True),
    sa.Column('error_code', sa.String(length=60), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('payment_id', sa.String(length=40), nullable=True),
    sa.Column('outcome', sa.String(length=500), nullable=False),
    sa.Column('actor_id', sa.String(length=40), nullable=True),
    sa.Column('charge_due_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.Column('charge_attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name=op.f('ck_gateway_charges_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_gateway_charges_amount_positive')),
    sa.ForeignKeyConstraint(['account_id'], ['billing_accounts.id'], name=op.f('fk_gateway_charges_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['card_id'], ['payment_cards.id'], name=op.f('fk_gateway_charges_card_id_payment_cards')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_gateway_charges_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_gateway_charges_payment_id_payments')),
    sa.ForeignKeyConstraint(['preference_id'], ['payment_preferences.id'], name=op.f('fk_gateway_charges_preference_id_payment_preferences')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_gateway_charges_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gateway_charges'))
    )
    with op.batch_alter_table('gateway_charges', schema=None) as batch_op:
        batch_op.create_index('ix_gateway_charges_due', ['charge_due_at'], unique=False)
        batch_op.create_index('ix_gateway_charges_invoice', ['invoice_id'], unique=False)

    with op.batch_alter_table('credit_types', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wallet_currency', sa.String(length=3), nullable=True))

    # A payment from a wallet (billing.wallets) has the method wallet.
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payments_method_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payments_method_known'),
                                         "method IN ('cash', 'bank_transfer', 'card', 'other', 'wallet')")
    with op.batch_alter_table('packs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wallet_id', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_packs_wallet_id'), ['wallet_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payments_method_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payments_method_known'),
                                         "method IN ('cash', 'bank_transfer', 'card', 'other')")
    with op.batch_alter_table('packs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_packs_wallet_id'))
        batch_op.drop_column('wallet_id')

    with op.batch_alter_table('credit_types', schema=None) as batch_op:
        batch_op.drop_column('wallet_currency')

    with op.batch_alter_table('gateway_charges', schema=None) as batch_op:
        batch_op.drop_index('ix_gateway_charges_invoice')
        batch_op.drop_index('ix_gateway_charges_due')

    op.drop_table('gateway_charges')
    with op.batch_alter_table('wallet_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_wallet_transactions_wallet')

    op.drop_table('wallet_transactions')
    with op.batch_alter_table('payment_cards', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_cards_preference')

    op.drop_table('payment_cards')
    op.drop_table('wallets')
    with op.batch_alter_table('payment_preferences', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_preferences_account')

    op.drop_table('payment_preferences')
