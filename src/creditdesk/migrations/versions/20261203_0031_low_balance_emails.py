"""Low-balance emails (issue 16): the send log also holds one row per balance crossing.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03 09:10:00

- email_sends.pack_id becomes optional and email_sends.crossing_id (a balance_crossings row) is added, unique
  with the event: the claim-before-send row of a `balance_low` email (notify.low_balance_emails). Existing rows
  keep their pack and no crossing (NULLs never collide in a unique constraint, on SQLite and PostgreSQL alike).
- email_settings.send_balance_low: the workspace's switch for these emails (on by default, like the others).
"""
from alembic import op
import sqlalchemy as sa

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('email_sends', schema=None) as batch_op:
        batch_op.alter_column('pack_id', existing_type=sa.String(length=40), nullable=True)
        batch_op.add_column(sa.Column('crossing_id', sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_email_sends_crossing_id_balance_crossings'),
                                    'balance_crossings', ['crossing_id'], ['id'])
        batch_op.create_unique_constraint(batch_op.f('uq_email_sends_crossing_id_event'), ['crossing_id', 'event'])
    with op.batch_alter_table('email_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_balance_low', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table('email_settings', schema=None) as batch_op:
        batch_op.drop_column('send_balance_low')
    op.execute("DELETE FROM email_sends WHERE pack_id IS NULL")
    with op.batch_alter_table('email_sends', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_email_sends_crossing_id_event'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_email_sends_crossing_id_balance_crossings'), type_='foreignkey')
        batch_op.drop_column('crossing_id')
        batch_op.alter_column('pack_id', existing_type=sa.String(length=40), nullable=False)
