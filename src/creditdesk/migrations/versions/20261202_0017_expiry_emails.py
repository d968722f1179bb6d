"""Expiry emails: templates, per-workspace settings, the send log (exactly once per pack and event).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 16:30:00

Three tables (email_settings, email_templates, email_sends) and the customer's language. Depends on
nothing of 0016.
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('email_settings',
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('send_warning', sa.Boolean(), nullable=False),
    sa.Column('warning_days', sa.Integer(), nullable=False),
    sa.Column('send_expired', sa.Boolean(), nullable=False),
    sa.Column('default_language', sa.String(length=16), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('warning_days >= 1 AND warning_days <= 365', name=op.f('ck_email_settings_warning_days_range')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_email_settings_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('workspace_id', name=op.f('pk_email_settings'))
    )
    op.create_table('email_templates',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('event', sa.String(length=20), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('text_body', sa.Text(), nullable=False),
    sa.Column('html_body', sa.Text(), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_email_templates_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_templates')),
    sa.UniqueConstraint('workspace_id', 'event', 'language', name=op.f('uq_email_templates_workspace_id_event_language'))
    )
    op.create_table('email_sends',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('pack_id', sa.String(length=40), nullable=False),
    sa.Column('event', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('text_body', sa.Text(), nullable=True),
    sa.Column('html_body', sa.Text(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('sent_at', creditdesk.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['pack_id'], ['packs.id'], name=op.f('fk_email_sends_pack_id_packs')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_email_sends_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_sends')),
    sa.UniqueConstraint('pack_id', 'event', name=op.f('uq_email_sends_pack_id_event'))
    )
    op.create_index('ix_email_sends_due', 'email_sends', ['state', 'next_attempt_at'], unique=False)
    op.create_index('ix_email_sends_ws_id', 'email_sends', ['workspace_id', 'id'], unique=False)
    with op.batch_alter_table('customers') as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customers') as batch_op:
        batch_op.drop_column('language')
    op.drop_index('ix_email_sends_ws_id', table_name='email_sends')
    op.drop_index('ix_email_sends_due', table_name='email_sends')
    op.drop_table('email_sends')
    op.drop_table('email_templates')
    op.drop_table('email_settings')
