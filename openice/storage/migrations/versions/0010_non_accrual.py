"""Servicing: non-accrual — the DPD beyond which a loan's interest and fees wait in suspense until collected

Loans booked before this revision take the default, 90 days.

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

SUSPENSE = ('bal_interest_suspense', 'bal_fee_suspense', 'bal_penalty_suspense')


def upgrade() -> None:
    op.add_column('loans', sa.Column('non_accrual_dpd', sa.Integer(), nullable=False, server_default='90'))
    for name in SUSPENSE:
        op.add_column('loans', sa.Column(name, sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('loans') as batch:
        for name in reversed(SUSPENSE):
            batch.drop_column(name)
        batch.drop_column('non_accrual_dpd')
