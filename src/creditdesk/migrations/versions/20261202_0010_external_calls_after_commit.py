"""External calls after commit: the payment charge and the SMS hand-over are due until their outcome is recorded.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 12:00:00
"""
import sqlalchemy as sa
from alembic import op

import creditdesk.db


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows already have their outcome recorded (the old code called inside the transaction): NULL.
    with op.batch_alter_table('sms_purchases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('charge_due_at', creditdesk.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('charge_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index('ix_sms_purchases_charge_due', ['charge_due_at'], unique=False)
    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_due_at', creditdesk.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('send_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index('ix_sms_messages_send_due', ['send_due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_sms_messages_send_due')
        batch_op.drop_column('send_attempts')
        batch_op.drop_column('send_due_at')
    with op.batch_alter_table('sms_purchases', schema=None) as batch_op:
        batch_op.drop_index('ix_sms_purchases_charge_due')
        batch_op.drop_column('charge_attempts')
        batch_op.drop_column('charge_due_at')
