"""Packs from CRM deals: a pack's (source, external_ref) becomes a key; HubSpot settings, mappings, webhook
events and the review queue.

packs.external_key is the pack's claim on its (workspace, source, external_ref), unique where set. Packs that
already share a ref with an older pack of the same source (free text until now) do not break the upgrade:
the oldest (created_at, then id) keeps the key and the others are left as they were, without it (their
external_ref unchanged, still found by ?external_ref=). Transfers' and promotions' packs claim no key: their
refs name what they came from, shared by many packs.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03 07:32:38.259659
"""
from alembic import op
import sqlalchemy as sa
import creditdesk.db


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crm_events',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('crm', sa.String(length=20), nullable=False),
    sa.Column('event_id', sa.String(length=100), nullable=False),
    sa.Column('subscription_type', sa.String(length=100), nullable=False),
    sa.Column('deal_id', sa.String(length=100), nullable=True),
    sa.Column('outcome', sa.String(length=40), nullable=False),
    sa.Column('pack_id', sa.String(length=40), nullable=True),
    sa.Column('review_item_id', sa.String(length=40), nullable=True),
    sa.Column('received_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_crm_events_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_events')),
    sa.UniqueConstraint('workspace_id', 'crm', 'event_id', name=op.f('uq_crm_events_workspace_id_crm_event_id'))
    )
    op.create_table('crm_integrations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('crm', sa.String(length=20), nullable=False),
    sa.Column('client_secret', sa.String(length=200), nullable=True),
    sa.Column('won_stage', sa.String(length=100), nullable=False),
    sa.Column('holder_property', sa.String(length=100), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_crm_integrations_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_integrations')),
    sa.UniqueConstraint('workspace_id', 'crm', name=op.f('uq_crm_integrations_workspace_id_crm'))
    )
    op.create_table('crm_review_items',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('crm', sa.String(length=20), nullable=False),
    sa.Column('deal_id', sa.String(length=100), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('deal', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('pack_id', sa.String(length=40), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('dismiss_reason', sa.String(length=2000), nullable=True),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('open', 'resolved', 'dismissed')", name=op.f('ck_crm_review_items_status_known')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_crm_review_items_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_review_items')),
    sa.UniqueConstraint('workspace_id', 'crm', 'deal_id', name=op.f('uq_crm_review_items_workspace_id_crm_deal_id'))
    )
    with op.batch_alter_table('crm_review_items', schema=None) as batch_op:
        batch_op.create_index('ix_crm_review_items_status', ['workspace_id', 'status', 'id'], unique=False)

    op.create_table('crm_mappings',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workspace_id', sa.String(length=40), nullable=False),
    sa.Column('crm', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('holder_kind', sa.String(length=20), nullable=True),
    sa.Column('holder_id', sa.String(length=40), nullable=True),
    sa.Column('product_id', sa.String(length=40), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', creditdesk.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('company', 'product', 'sku')", name=op.f('ck_crm_mappings_kind_known')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_crm_mappings_product_id_products')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_crm_mappings_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_mappings')),
    sa.UniqueConstraint('workspace_id', 'crm', 'kind', 'external_id', name=op.f('uq_crm_mappings_workspace_id_crm_kind_external_id'))
    )
    op.add_column('packs', sa.Column('external_key', sa.String(length=200), nullable=True))
    # The oldest pack of each (workspace, source, external_ref) takes the key; later duplicates stay without.
    op.execute(
        "UPDATE packs SET external_key = external_ref "
        "WHERE external_ref IS NOT NULL AND source NOT IN ('transfer', 'promotion') AND NOT EXISTS ("
        "SELECT 1 FROM packs older WHERE older.workspace_id = packs.workspace_id AND older.source = packs.source "
        "AND older.external_ref = packs.external_ref AND (older.created_at < packs.created_at "
        "OR (older.created_at = packs.created_at AND older.id < packs.id)))")
    op.create_index('ix_packs_external_ref', 'packs', ['workspace_id', 'external_ref'], unique=False)
    op.create_index('uq_packs_external_key', 'packs', ['workspace_id', 'source', 'external_key'], unique=True,
                    sqlite_where=sa.text('external_key IS NOT NULL'),
                    postgresql_where=sa.text('external_key IS NOT NULL'))



def downgrade() -> None:
    op.drop_index('uq_packs_external_key', table_name='packs')
    op.drop_index('ix_packs_external_ref', table_name='packs')
    with op.batch_alter_table('packs', schema=None) as batch_op:
        batch_op.drop_column('external_key')

    op.drop_table('crm_mappings')
    with op.batch_alter_table('crm_review_items', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_review_items_status')

    op.drop_table('crm_review_items')
    op.drop_table('crm_integrations')
    op.drop_table('crm_events')
