"""Servicing: an on-balance-sheet loan's upfront fee deferred and earned over its life (effective interest)

Loans booked before this revision recognised their fee at disbursement; they keep nothing deferred.

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('loans', sa.Column('bal_deferred_origination_fee', sa.BigInteger(), nullable=False,
                                     server_default='0'))
    op.add_column('installments', sa.Column('fee_amortisation', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('installments') as batch:
        batch.drop_column('fee_amortisation')
    with op.batch_alter_table('loans') as batch:
        batch.drop_column('bal_deferred_origination_fee')
