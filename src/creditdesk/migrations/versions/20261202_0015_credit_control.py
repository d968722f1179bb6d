"""Credit control: credit ratings and limits, override rules, account lifecycle.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 16:10:00

Three tables (credit_ratings, credit_rating_limits, credit_override_rules), the account's rating, own
credit limit and suspension reason on billing_accounts, and the customer's KYC profile on customers
(a condition of override rules). Depends on nothing of 0014 (invoices and payments).
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credit_ratings',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_credit_ratings_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_ratings')),
    sa.UniqueConstraint('workspace_id', 'code', name=op.f('uq_credit_ratings_workspace_id_code'))
    )
    op.create_index('ix_credit_ratings_ws_id', 'credit_ratings', ['workspace_id', 'id'], unique=False)
    op.create_table('credit_rating_limits',
    sa.Column('rating_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_credit_rating_limits_amount_not_negative')),
    sa.ForeignKeyConstraint(['rating_id'], ['credit_ratings.id'], name=op.f('fk_credit_rating_limits_rating_id_credit_ratings')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_credit_rating_limits_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('rating_id', 'currency', name=op.f('pk_credit_rating_limits'))
    )
    op.create_table('credit_override_rules',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('classifications', sa.JSON(), nullable=False),
    sa.Column('credit_rating_ids', sa.JSON(), nullable=False),
    sa.Column('kyc_profiles', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_credit_override_rules_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_override_rules')),
    sa.UniqueConstraint('workspace_id', 'name', name=op.f('uq_credit_override_rules_workspace_id_name'))
    )
    op.create_index('ix_credit_override_rules_ws_id', 'credit_override_rules', ['workspace_id', 'id'], unique=False)
    with op.batch_alter_table('billing_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credit_rating_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('credit_limit', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('suspension_reason', sa.String(length=20), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_billing_accounts_credit_rating_id_credit_ratings'),
                                    'credit_ratings', ['credit_rating_id'], ['id'])
        batch_op.create_check_constraint(batch_op.f('ck_billing_accounts_credit_limit_not_negative'),
                                         'credit_limit IS NULL OR credit_limit >= 0')
        batch_op.create_check_constraint(
            batch_op.f('ck_billing_accounts_suspension_reason_known'),
            "(status = 'suspended' AND suspension_reason IN ('dispute', 'credit_check')) OR "
            "(status <> 'suspended' AND suspension_reason IS NULL)")
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kyc_profile', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('kyc_profile')
    with op.batch_alter_table('billing_accounts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_billing_accounts_suspension_reason_known'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_billing_accounts_credit_limit_not_negative'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_billing_accounts_credit_rating_id_credit_ratings'),
                                 type_='foreignkey')
        batch_op.drop_column('suspension_reason')
        batch_op.drop_column('credit_limit')
        batch_op.drop_column('credit_rating_id')
    op.drop_index('ix_credit_override_rules_ws_id', table_name='credit_override_rules')
    op.drop_table('credit_override_rules')
    op.drop_table('credit_rating_limits')
    op.drop_index('ix_credit_ratings_ws_id', table_name='credit_ratings')
    op.drop_table('credit_ratings')
