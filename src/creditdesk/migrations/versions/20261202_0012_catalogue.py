"""Catalogue: product types and families, products, currencies, price plans and prices, tax classes and rates.

One default price plan per currency per workspace is a partial unique index (uq_price_plans_one_default),
which SQLite, PostgreSQL and the distributed PostgreSQL-compatible engines all support.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 15:20:00
"""
from alembic import op
import sqlalchemy as sa

import creditdesk.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('price_plans',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_price_plans_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_plans')),
    sa.UniqueConstraint('workspace_id', 'code', name=op.f('uq_price_plans_workspace_id_code'))
    )
    op.create_index('uq_price_plans_one_default', 'price_plans', ['workspace_id', 'currency'], unique=True, sqlite_where=sa.text('is_default'), postgresql_where=sa.text('is_default'))
    op.create_table('product_families',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_product_families_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product_families')),
    sa.UniqueConstraint('workspace_id', 'code', name=op.f('uq_product_families_workspace_id_code'))
    )
    op.create_table('product_types',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('physical_good', 'service', 'one_time_service', 'credit_package', 'subscription_service')", name=op.f('ck_product_types_kind_known')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_product_types_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product_types')),
    sa.UniqueConstraint('workspace_id', 'code', name=op.f('uq_product_types_workspace_id_code'))
    )
    op.create_table('tax_classes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_tax_classes_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tax_classes')),
    sa.UniqueConstraint('workspace_id', 'code', name=op.f('uq_tax_classes_workspace_id_code'))
    )
    op.create_table('tax_rates',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('tax_class_id', sa.String(length=40), nullable=False),
    sa.Column('rate_bp', sa.Integer(), nullable=False),
    sa.Column('inclusive', sa.Boolean(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('rate_bp >= 0 AND rate_bp <= 100000', name=op.f('ck_tax_rates_rate_range')),
    sa.ForeignKeyConstraint(['tax_class_id'], ['tax_classes.id'], name=op.f('fk_tax_rates_tax_class_id_tax_classes')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_tax_rates_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tax_rates')),
    sa.UniqueConstraint('tax_class_id', 'valid_from', name=op.f('uq_tax_rates_tax_class_id_valid_from'))
    )
    op.create_index('ix_tax_rates_ws_id', 'tax_rates', ['workspace_id', 'id'], unique=False)
    op.create_table('products',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('product_type_id', sa.String(length=40), nullable=True),
    sa.Column('product_family_id', sa.String(length=40), nullable=True),
    sa.Column('unit', sa.String(length=40), nullable=False),
    sa.Column('tax_class_id', sa.String(length=40), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('credit_type_id', sa.String(length=40), nullable=True),
    sa.Column('credit_quantity', sa.BigInteger(), nullable=True),
    sa.Column('applicable_product_codes', sa.JSON(), nullable=True),
    sa.Column('expiry_policy', sa.String(length=30), nullable=True),
    sa.Column('expiry_month', sa.Integer(), nullable=True),
    sa.Column('expiry_day', sa.Integer(), nullable=True),
    sa.Column('expiry_months', sa.Integer(), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("(expiry_policy = 'fixed_date' AND expiry_month BETWEEN 1 AND 12 AND expiry_day BETWEEN 1 AND 31) OR ((expiry_policy IS NULL OR expiry_policy <> 'fixed_date') AND expiry_month IS NULL AND expiry_day IS NULL)", name=op.f('ck_products_expiry_fixed_date')),
    sa.CheckConstraint("(expiry_policy = 'months_after_purchase' AND expiry_months BETWEEN 1 AND 600) OR ((expiry_policy IS NULL OR expiry_policy <> 'months_after_purchase') AND expiry_months IS NULL)", name=op.f('ck_products_expiry_months_range')),
    sa.CheckConstraint("(kind = 'credit_package' AND credit_type_id IS NOT NULL AND credit_quantity > 0 AND expiry_policy IS NOT NULL) OR (kind <> 'credit_package' AND credit_type_id IS NULL AND credit_quantity IS NULL AND expiry_policy IS NULL)", name=op.f('ck_products_credit_package_fields')),
    sa.CheckConstraint("expiry_policy IS NULL OR expiry_policy IN ('none', 'fixed_date', 'months_after_purchase')", name=op.f('ck_products_expiry_policy_known')),
    sa.CheckConstraint("kind IN ('physical_good', 'service', 'one_time_service', 'credit_package', 'subscription_service')", name=op.f('ck_products_kind_known')),
    sa.ForeignKeyConstraint(['credit_type_id'], ['credit_types.id'], name=op.f('fk_products_credit_type_id_credit_types')),
    sa.ForeignKeyConstraint(['product_family_id'], ['product_families.id'], name=op.f('fk_products_product_family_id_product_families')),
    sa.ForeignKeyConstraint(['product_type_id'], ['product_types.id'], name=op.f('fk_products_product_type_id_product_types')),
    sa.ForeignKeyConstraint(['tax_class_id'], ['tax_classes.id'], name=op.f('fk_products_tax_class_id_tax_classes')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_products_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
    sa.UniqueConstraint('workspace_id', 'code', name=op.f('uq_products_workspace_id_code'))
    )
    op.create_index('ix_products_ws_id', 'products', ['workspace_id', 'id'], unique=False)
    op.create_index('ix_products_ws_kind', 'products', ['workspace_id', 'kind', 'id'], unique=False)
    op.create_table('prices',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('price_plan_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('unit_price', sa.BigInteger(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('unit_price >= 0', name=op.f('ck_prices_unit_price_not_negative')),
    sa.ForeignKeyConstraint(['price_plan_id'], ['price_plans.id'], name=op.f('fk_prices_price_plan_id_price_plans')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_prices_product_id_products')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_prices_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prices')),
    sa.UniqueConstraint('price_plan_id', 'product_id', name=op.f('uq_prices_price_plan_id_product_id'))
    )
    op.create_index(op.f('ix_prices_product_id'), 'prices', ['product_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_prices_product_id'), table_name='prices')
    op.drop_table('prices')
    op.drop_index('ix_products_ws_kind', table_name='products')
    op.drop_index('ix_products_ws_id', table_name='products')
    op.drop_table('products')
    op.drop_index('ix_tax_rates_ws_id', table_name='tax_rates')
    op.drop_table('tax_rates')
    op.drop_table('tax_classes')
    op.drop_table('product_types')
    op.drop_table('product_families')
    op.drop_index('uq_price_plans_one_default', table_name='price_plans', sqlite_where=sa.text('is_default'), postgresql_where=sa.text('is_default'))
    op.drop_table('price_plans')
