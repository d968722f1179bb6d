"""Activities and activity types (seed 002, creditdesk.activities).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 07:00:00

Three new tables (activities.models); nothing else changes.
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('activity_types',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('service_product_ids', sa.JSON(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_activity_types_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_types')),
    sa.UniqueConstraint('workspace_id', 'code', name=op.f('uq_activity_types_workspace_id_code'))
    )
    op.create_table('activities',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=True),
    sa.Column('type_id', sa.String(length=40), nullable=False),
    sa.Column('contact_name', sa.String(length=200), nullable=False),
    sa.Column('contact_phone', sa.String(length=50), nullable=True),
    sa.Column('contact_email', sa.String(length=320), nullable=True),
    sa.Column('link_kind', sa.String(length=20), nullable=True),
    sa.Column('link_id', sa.String(length=40), nullable=True),
    sa.Column('details', sa.String(length=4000), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('starts_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('estimated_completion_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.Column('expected_completion_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.Column('unit_kind', sa.String(length=10), nullable=True),
    sa.Column('unit_id', sa.String(length=40), nullable=True),
    sa.Column('assignee_user_id', sa.String(length=40), nullable=True),
    sa.Column('invoice_id', sa.String(length=40), nullable=True),
    sa.Column('started_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.Column('completed_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.Column('cancelled_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.Column('cancel_reason', sa.String(length=2000), nullable=True),
    sa.Column('created_by', sa.String(length=40), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("(link_kind IS NULL AND link_id IS NULL) OR (link_kind IN ('subscription', 'invoice', 'pack') AND link_id IS NOT NULL)", name=op.f('ck_activities_link_known')),
    sa.CheckConstraint("(unit_kind IS NULL AND unit_id IS NULL) OR (unit_kind IN ('office', 'team') AND unit_id IS NOT NULL)", name=op.f('ck_activities_unit_known')),
    sa.CheckConstraint("status IN ('open', 'in_progress', 'completed', 'cancelled')", name=op.f('ck_activities_status_known')),
    sa.ForeignKeyConstraint(['account_id'], ['billing_accounts.id'], name=op.f('fk_activities_account_id_billing_accounts')),
    sa.ForeignKeyConstraint(['assignee_user_id'], ['users.id'], name=op.f('fk_activities_assignee_user_id_users')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_activities_customer_id_customers')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_activities_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['type_id'], ['activity_types.id'], name=op.f('fk_activities_type_id_activity_types')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_activities_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activities'))
    )
    op.create_index('ix_activities_assignee', 'activities', ['workspace_id', 'assignee_user_id', 'id'], unique=False)
    op.create_index('ix_activities_customer', 'activities', ['workspace_id', 'customer_id', 'id'], unique=False)
    op.create_index('ix_activities_status', 'activities', ['workspace_id', 'status', 'id'], unique=False)
    op.create_table('activity_services',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('activity_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('quantity_milli', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.CheckConstraint('quantity_milli > 0', name=op.f('ck_activity_services_quantity_positive')),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name=op.f('fk_activity_services_activity_id_activities')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_activity_services_product_id_products')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_activity_services_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_services')),
    sa.UniqueConstraint('activity_id', 'position', name=op.f('uq_activity_services_activity_id_position'))
    )


def downgrade() -> None:
    op.drop_table('activity_services')
    op.drop_index('ix_activities_status', table_name='activities')
    op.drop_index('ix_activities_customer', table_name='activities')
    op.drop_index('ix_activities_assignee', table_name='activities')
    op.drop_table('activities')
    op.drop_table('activity_types')
