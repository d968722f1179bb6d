"""sms credits: purchases (receipts) and messages (the outbox)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 10:58:12.127246
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sms_messages',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('sender_user_id', sa.String(length=40), nullable=False),
    sa.Column('on_behalf_of_user_id', sa.String(length=40), nullable=True),
    sa.Column('api_key_id', sa.String(length=40), nullable=True),
    sa.Column('recipient', sa.String(length=32), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('encoding', sa.String(length=8), nullable=False),
    sa.Column('segments', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('backend', sa.String(length=40), nullable=False),
    sa.Column('provider_reference', sa.String(length=200), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('hold_id', sa.String(length=40), nullable=True),
    sa.Column('credits_charged', sa.Integer(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('sent_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint('segments > 0', name=op.f('ck_sms_messages_segments_positive')),
    sa.ForeignKeyConstraint(['hold_id'], ['holds.id'], name=op.f('fk_sms_messages_hold_id_holds')),
    sa.ForeignKeyConstraint(['on_behalf_of_user_id'], ['users.id'], name=op.f('fk_sms_messages_on_behalf_of_user_id_users')),
    sa.ForeignKeyConstraint(['sender_user_id'], ['users.id'], name=op.f('fk_sms_messages_sender_user_id_users')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_sms_messages_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_messages'))
    )
    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.create_index('ix_sms_messages_sender', ['workspace_id', 'sender_user_id', 'id'], unique=False)
        batch_op.create_index('ix_sms_messages_ws_id', ['workspace_id', 'id'], unique=False)

    op.create_table('sms_purchases',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('for_kind', sa.String(length=20), nullable=False),
    sa.Column('for_id', sa.String(length=40), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('unit_price', sa.BigInteger(), nullable=False),
    sa.Column('subtotal', sa.BigInteger(), nullable=False),
    sa.Column('tax_rate_bp', sa.Integer(), nullable=False),
    sa.Column('tax_label', sa.String(length=40), nullable=False),
    sa.Column('tax', sa.BigInteger(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('billing', sa.JSON(), nullable=False),
    sa.Column('seller', sa.JSON(), nullable=False),
    sa.Column('payment_method', sa.String(length=40), nullable=False),
    sa.Column('payment_reference', sa.String(length=200), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('pack_id', sa.String(length=40), nullable=True),
    sa.Column('actor_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('paid_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_sms_purchases_quantity_positive')),
    sa.CheckConstraint('unit_price >= 0 AND subtotal >= 0 AND tax >= 0 AND total >= 0', name=op.f('ck_sms_purchases_amounts_not_negative')),
    sa.ForeignKeyConstraint(['pack_id'], ['packs.id'], name=op.f('fk_sms_purchases_pack_id_packs')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_sms_purchases_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_purchases')),
    sa.UniqueConstraint('workspace_id', 'number', name=op.f('uq_sms_purchases_workspace_id_number'))
    )
    with op.batch_alter_table('sms_purchases', schema=None) as batch_op:
        batch_op.create_index('ix_sms_purchases_for', ['workspace_id', 'for_kind', 'for_id'], unique=False)
        batch_op.create_index('ix_sms_purchases_ws_id', ['workspace_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sms_purchases', schema=None) as batch_op:
        batch_op.drop_index('ix_sms_purchases_ws_id')
        batch_op.drop_index('ix_sms_purchases_for')

    op.drop_table('sms_purchases')
    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_sms_messages_ws_id')
        batch_op.drop_index('ix_sms_messages_sender')

    op.drop_table('sms_messages')
