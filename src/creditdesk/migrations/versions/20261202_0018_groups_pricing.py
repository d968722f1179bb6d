"""Group accounts with funding scopes, and pricing agreements (an account's own price plan).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 16:30:00

Two new tables (billing.group_models); billing_accounts is not changed.
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account_group_members',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('parent_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('funding_scope', sa.String(length=10), nullable=False),
    sa.Column('funded_products', sa.JSON(), nullable=False),
    sa.Column('funded_product_types', sa.JSON(), nullable=False),
    sa.Column('funded_product_families', sa.JSON(), nullable=False),
    sa.Column('suspended_with_parent', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=40), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("funding_scope IN ('full', 'partial')", name=op.f('ck_account_group_members_funding_scope_known')),
    sa.CheckConstraint('parent_id <> member_id', name=op.f('ck_account_group_members_not_own_member')),
    sa.ForeignKeyConstraint(['member_id'], ['billing_accounts.id'], name=op.f('fk_account_group_members_member_id_billing_accounts')),
    sa.ForeignKeyConstraint(['parent_id'], ['billing_accounts.id'], name=op.f('fk_account_group_members_parent_id_billing_accounts')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_account_group_members_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_group_members')),
    sa.UniqueConstraint('member_id', name=op.f('uq_account_group_members_member_id'))
    )
    op.create_index('ix_account_group_members_parent', 'account_group_members',
                    ['workspace_id', 'parent_id', 'id'], unique=False)
    op.create_table('account_pricing_agreements',
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('price_plan_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['billing_accounts.id'], name=op.f('fk_account_pricing_agreements_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['price_plan_id'], ['price_plans.id'], name=op.f('fk_account_pricing_agreements_price_plan_id_price_plans')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_account_pricing_agreements_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_account_pricing_agreements'))
    )


def downgrade() -> None:
    op.drop_table('account_pricing_agreements')
    op.drop_index('ix_account_group_members_parent', table_name='account_group_members')
    op.drop_table('account_group_members')
