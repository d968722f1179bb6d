"""Communicating a bill (seed 002): communication templates and the communications sent to customers
(notify.communication_models).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 07:23:37

New tables only; nothing existing changes.
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db


revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('communication_templates',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('archived', sa.Boolean(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_communication_templates_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_communication_templates')),
    sa.UniqueConstraint('workspace_id', 'name', name=op.f('uq_communication_templates_workspace_id_name'))
    )
    with op.batch_alter_table('communication_templates', schema=None) as batch_op:
        batch_op.create_index('ix_communication_templates_ws_id', ['workspace_id', 'id'], unique=False)

    op.create_table('communications',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('invoice_id', sa.String(length=40), nullable=False),
    sa.Column('template_id', sa.String(length=40), nullable=True),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('attachments', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=40), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('sent_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.Column('send_due_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.Column('send_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint("status IN ('queued', 'sent', 'failed')", name=op.f('ck_communications_status_known')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_communications_customer_id_customers')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_communications_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['template_id'], ['communication_templates.id'], name=op.f('fk_communications_template_id_communication_templates')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_communications_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_communications'))
    )
    with op.batch_alter_table('communications', schema=None) as batch_op:
        batch_op.create_index('ix_communications_customer', ['workspace_id', 'customer_id', 'id'], unique=False)
        batch_op.create_index('ix_communications_invoice', ['workspace_id', 'invoice_id', 'id'], unique=False)
        batch_op.create_index('ix_communications_send_due', ['send_due_at'], unique=False)
        batch_op.create_index('ix_communications_ws_id', ['workspace_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('communications', schema=None) as batch_op:
        batch_op.drop_index('ix_communications_ws_id')
        batch_op.drop_index('ix_communications_send_due')
        batch_op.drop_index('ix_communications_invoice')
        batch_op.drop_index('ix_communications_customer')

    op.drop_table('communications')
    with op.batch_alter_table('communication_templates', schema=None) as batch_op:
        batch_op.drop_index('ix_communication_templates_ws_id')

    op.drop_table('communication_templates')
