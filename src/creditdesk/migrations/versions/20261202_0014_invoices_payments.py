"""Invoices, invoice lines, credit notes, payments and their allocations; invoice and credit note numbers.

The numbers (INV-000001, CN-000001) are counters on the workspace's billing settings row, taken under
its lock in the posting transaction, like account numbers: gap-free per workspace.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 16:00:00
"""
from alembic import op
import sqlalchemy as sa

import creditdesk.db

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('billing_settings') as batch:
        batch.add_column(sa.Column('next_invoice_number', sa.Integer(), server_default='1', nullable=False))
        batch.add_column(sa.Column('next_credit_note_number', sa.Integer(), server_default='1', nullable=False))
    op.create_table('invoices',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('price_plan_id', sa.String(length=40), nullable=True),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('subtotal', sa.BigInteger(), nullable=False),
    sa.Column('tax_total', sa.BigInteger(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('credits_value', sa.BigInteger(), nullable=False),
    sa.Column('amount_paid', sa.BigInteger(), nullable=False),
    sa.Column('amount_credited', sa.BigInteger(), nullable=False),
    sa.Column('amount_due', sa.BigInteger(), nullable=False),
    sa.Column('posted_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.Column('settled_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.Column('voided_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.Column('created_by', sa.String(length=40), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("(status IN ('draft', 'void') AND number IS NULL) OR (status IN ('posted', 'settled') AND number IS NOT NULL)", name=op.f('ck_invoices_numbered_when_posted')),
    sa.CheckConstraint("status IN ('draft', 'posted', 'settled', 'void')", name=op.f('ck_invoices_status_known')),
    sa.CheckConstraint('amount_due = total - amount_paid - amount_credited', name=op.f('ck_invoices_due_is_what_is_left')),
    sa.CheckConstraint('amount_due >= 0 AND amount_paid >= 0 AND amount_credited >= 0', name=op.f('ck_invoices_amounts_not_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['billing_accounts.id'], name=op.f('fk_invoices_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_invoices_customer_id_customers')),
    sa.ForeignKeyConstraint(['price_plan_id'], ['price_plans.id'], name=op.f('fk_invoices_price_plan_id_price_plans')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_invoices_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('workspace_id', 'number', name=op.f('uq_invoices_workspace_id_number'))
    )
    op.create_index('ix_invoices_account_due', 'invoices', ['account_id', 'status', 'due_date'], unique=False)
    op.create_index('ix_invoices_ws_id', 'invoices', ['workspace_id', 'id'], unique=False)
    op.create_table('payments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('unallocated', sa.BigInteger(), nullable=False),
    sa.Column('created_by', sa.String(length=40), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("method IN ('cash', 'bank_transfer', 'card', 'other')", name=op.f('ck_payments_method_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payments_amount_positive')),
    sa.CheckConstraint('unallocated >= 0 AND unallocated <= amount', name=op.f('ck_payments_unallocated_in_range')),
    sa.ForeignKeyConstraint(['account_id'], ['billing_accounts.id'], name=op.f('fk_payments_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_payments_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments'))
    )
    op.create_index('ix_payments_account', 'payments', ['account_id', 'id'], unique=False)
    op.create_index('ix_payments_ws_id', 'payments', ['workspace_id', 'id'], unique=False)
    op.create_table('credit_notes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('invoice_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('tax', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('created_by', sa.String(length=40), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('amount > 0 AND tax >= 0 AND tax <= amount', name=op.f('ck_credit_notes_amounts_valid')),
    sa.ForeignKeyConstraint(['account_id'], ['billing_accounts.id'], name=op.f('fk_credit_notes_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_credit_notes_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_credit_notes_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_notes')),
    sa.UniqueConstraint('workspace_id', 'number', name=op.f('uq_credit_notes_workspace_id_number'))
    )
    op.create_index('ix_credit_notes_invoice', 'credit_notes', ['invoice_id', 'id'], unique=False)
    op.create_index('ix_credit_notes_ws_id', 'credit_notes', ['workspace_id', 'id'], unique=False)
    op.create_table('invoice_lines',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('invoice_id', sa.String(length=40), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('product_code', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('quantity_milli', sa.BigInteger(), nullable=False),
    sa.Column('unit_price', sa.BigInteger(), nullable=False),
    sa.Column('discount_kind', sa.String(length=10), nullable=True),
    sa.Column('discount_value', sa.BigInteger(), nullable=True),
    sa.Column('tax_rate_id', sa.String(length=40), nullable=True),
    sa.Column('tax_rate_bp', sa.Integer(), nullable=False),
    sa.Column('tax_inclusive', sa.Boolean(), nullable=False),
    sa.Column('net', sa.BigInteger(), nullable=False),
    sa.Column('tax', sa.BigInteger(), nullable=False),
    sa.Column('gross', sa.BigInteger(), nullable=False),
    sa.Column('discount_amount', sa.BigInteger(), nullable=False),
    sa.Column('credit_quantity_milli', sa.BigInteger(), nullable=False),
    sa.Column('credits_value', sa.BigInteger(), nullable=False),
    sa.Column('consumption_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('credit_quantity_milli >= 0 AND credit_quantity_milli <= quantity_milli', name=op.f('ck_invoice_lines_credits_within_quantity')),
    sa.CheckConstraint('net + tax = gross', name=op.f('ck_invoice_lines_net_plus_tax_is_gross')),
    sa.CheckConstraint('quantity_milli > 0', name=op.f('ck_invoice_lines_quantity_positive')),
    sa.CheckConstraint('unit_price >= 0', name=op.f('ck_invoice_lines_unit_price_not_negative')),
    sa.ForeignKeyConstraint(['consumption_id'], ['consumptions.id'], name=op.f('fk_invoice_lines_consumption_id_consumptions')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_lines_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_invoice_lines_product_id_products')),
    sa.ForeignKeyConstraint(['tax_rate_id'], ['tax_rates.id'], name=op.f('fk_invoice_lines_tax_rate_id_tax_rates')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_invoice_lines_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_lines'))
    )
    op.create_index('ix_invoice_lines_invoice', 'invoice_lines', ['invoice_id', 'position'], unique=False)
    op.create_table('payment_allocations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('invoice_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payment_allocations_amount_positive')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_payment_allocations_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_payment_allocations_payment_id_payments')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_payment_allocations_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_allocations'))
    )
    op.create_index('ix_payment_allocations_invoice', 'payment_allocations', ['invoice_id', 'id'], unique=False)
    op.create_index('ix_payment_allocations_payment', 'payment_allocations', ['payment_id', 'id'], unique=False)

def downgrade() -> None:
    op.drop_index('ix_payment_allocations_payment', table_name='payment_allocations')
    op.drop_index('ix_payment_allocations_invoice', table_name='payment_allocations')
    op.drop_table('payment_allocations')
    op.drop_index('ix_invoice_lines_invoice', table_name='invoice_lines')
    op.drop_table('invoice_lines')
    op.drop_index('ix_credit_notes_ws_id', table_name='credit_notes')
    op.drop_index('ix_credit_notes_invoice', table_name='credit_notes')
    op.drop_table('credit_notes')
    op.drop_index('ix_payments_ws_id', table_name='payments')
    op.drop_index('ix_payments_account', table_name='payments')
    op.drop_table('payments')
    op.drop_index('ix_invoices_ws_id', table_name='invoices')
    op.drop_index('ix_invoices_account_due', table_name='invoices')
    op.drop_table('invoices')
    with op.batch_alter_table('billing_settings') as batch:
        batch.drop_column('next_credit_note_number')
        batch.drop_column('next_invoice_number')
