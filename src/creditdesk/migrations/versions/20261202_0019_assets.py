"""Account assets and their history (seed 004, billing.assets).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 20:00:00

Two new tables (billing.asset_models); nothing else changes.
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('assets',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('serial_number', sa.String(length=200), nullable=True),
    sa.Column('ownership', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('warranty_ends_on', sa.Date(), nullable=True),
    sa.Column('invoice_line_id', sa.String(length=40), nullable=True),
    sa.Column('unit_index', sa.Integer(), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("ownership IN ('company_sold', 'customer_owned')", name=op.f('ck_assets_ownership_known')),
    sa.CheckConstraint("status IN ('active', 'returned')", name=op.f('ck_assets_status_known')),
    sa.ForeignKeyConstraint(['account_id'], ['billing_accounts.id'], name=op.f('fk_assets_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_assets_product_id_products')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_assets_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assets')),
    sa.UniqueConstraint('invoice_line_id', 'unit_index', name=op.f('uq_assets_invoice_line_id_unit_index'))
    )
    op.create_index('ix_assets_account', 'assets', ['workspace_id', 'account_id', 'id'], unique=False)
    op.create_table('asset_events',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('asset_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('from_account_id', sa.String(length=40), nullable=True),
    sa.Column('to_account_id', sa.String(length=40), nullable=True),
    sa.Column('stock_in_number', sa.String(length=40), nullable=True),
    sa.Column('note', sa.String(length=2000), nullable=False),
    sa.Column('actor_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('acquired', 'imported', 'transferred', 'returned')", name=op.f('ck_asset_events_kind_known')),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_asset_events_asset_id_assets')),
    sa.ForeignKeyConstraint(['from_account_id'], ['billing_accounts.id'], name=op.f('fk_asset_events_from_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['to_account_id'], ['billing_accounts.id'], name=op.f('fk_asset_events_to_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_asset_events_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_asset_events'))
    )
    op.create_index('ix_asset_events_asset', 'asset_events', ['asset_id', 'id'], unique=False)
    op.create_index('ix_asset_events_from', 'asset_events', ['workspace_id', 'from_account_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_asset_events_from', table_name='asset_events')
    op.drop_index('ix_asset_events_asset', table_name='asset_events')
    op.drop_table('asset_events')
    op.drop_index('ix_assets_account', table_name='assets')
    op.drop_table('assets')
