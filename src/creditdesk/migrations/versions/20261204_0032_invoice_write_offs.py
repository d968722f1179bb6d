"""Invoices written off (seed 004's write-off closes the debt, and with it the invoices it was made of):
invoices.amount_written_off, and amount due = total - paid - credited - written off.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-04 01:40:00

0 on every existing invoice, so every amount due stays what it was.
"""
from alembic import op
import sqlalchemy as sa


revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount_written_off', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.drop_constraint(op.f('ck_invoices_due_is_what_is_left'), type_='check')
        batch_op.drop_constraint(op.f('ck_invoices_amounts_not_negative'), type_='check')
        batch_op.create_check_constraint(
            'due_is_what_is_left', 'amount_due = total - amount_paid - amount_credited - amount_written_off')
        batch_op.create_check_constraint(
            'amounts_not_negative',
            'amount_due >= 0 AND amount_paid >= 0 AND amount_credited >= 0 AND amount_written_off >= 0')


def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_invoices_due_is_what_is_left'), type_='check')
        batch_op.drop_constraint(op.f('ck_invoices_amounts_not_negative'), type_='check')
        batch_op.create_check_constraint('due_is_what_is_left', 'amount_due = total - amount_paid - amount_credited')
        batch_op.create_check_constraint('amounts_not_negative',
                                         'amount_due >= 0 AND amount_paid >= 0 AND amount_credited >= 0')
        batch_op.drop_column('amount_written_off')
