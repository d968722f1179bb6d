"""Low-balance thresholds and their crossings (issue 16, credits.low_balance).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 07:42:17

Two new tables (credits.low_balance_models); credit_types.low_balance_watched (false for every existing type).
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('credit_types', schema=None) as batch_op:
        batch_op.add_column(sa.Column('low_balance_watched', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table('balance_thresholds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('credit_type_id', sa.String(length=40), nullable=False),
    sa.Column('holder_kind', sa.String(length=20), nullable=False),
    sa.Column('holder_id', sa.String(length=40), nullable=False),
    sa.Column('threshold', sa.BigInteger(), nullable=False),
    sa.Column('top_up_product_id', sa.String(length=40), nullable=True),
    sa.Column('top_up_count', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('threshold > 0', name=op.f('ck_balance_thresholds_threshold_positive')),
    sa.CheckConstraint('top_up_count >= 1 AND top_up_count <= 100', name=op.f('ck_balance_thresholds_top_up_count_range')),
    sa.ForeignKeyConstraint(['credit_type_id'], ['credit_types.id'], name=op.f('fk_balance_thresholds_credit_type_id_credit_types')),
    sa.ForeignKeyConstraint(['top_up_product_id'], ['products.id'], name=op.f('fk_balance_thresholds_top_up_product_id_products')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_balance_thresholds_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_balance_thresholds')),
    sa.UniqueConstraint('workspace_id', 'credit_type_id', 'holder_kind', 'holder_id', name=op.f('uq_balance_thresholds_workspace_id_credit_type_id_holder_kind_holder_id'))
    )
    op.create_table('balance_crossings',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('threshold_id', sa.String(length=40), nullable=False),
    sa.Column('credit_type_id', sa.String(length=40), nullable=False),
    sa.Column('holder_kind', sa.String(length=20), nullable=False),
    sa.Column('holder_id', sa.String(length=40), nullable=False),
    sa.Column('threshold', sa.BigInteger(), nullable=False),
    sa.Column('balance_before', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('consumption_id', sa.String(length=40), nullable=False),
    sa.Column('top_up_invoice_id', sa.String(length=40), nullable=True),
    sa.Column('top_up_note', sa.String(length=500), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['credit_type_id'], ['credit_types.id'], name=op.f('fk_balance_crossings_credit_type_id_credit_types')),
    sa.ForeignKeyConstraint(['threshold_id'], ['balance_thresholds.id'], name=op.f('fk_balance_crossings_threshold_id_balance_thresholds')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_balance_crossings_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_balance_crossings')),
    sa.UniqueConstraint('consumption_id', 'holder_kind', 'holder_id', name=op.f('uq_balance_crossings_consumption_id_holder_kind_holder_id'))
    )
    with op.batch_alter_table('balance_crossings', schema=None) as batch_op:
        batch_op.create_index('ix_balance_crossings_holder', ['workspace_id', 'holder_kind', 'holder_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('credit_types', schema=None) as batch_op:
        batch_op.drop_column('low_balance_watched')
    with op.batch_alter_table('balance_crossings', schema=None) as batch_op:
        batch_op.drop_index('ix_balance_crossings_holder')

    op.drop_table('balance_crossings')
    op.drop_table('balance_thresholds')
