"""Servicing: provision for contingent liabilities (balances and per-bucket rates on the loan)

Referral fees need no schema: they are journal lines on accounts of their own.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

RATES = (('provision_ppm_c', '10000'), ('provision_ppm_m1', '200000'), ('provision_ppm_m2', '500000'),
         ('provision_ppm_m3', '800000'), ('provision_ppm_m4', '1000000'))


def upgrade() -> None:
    op.add_column('loans', sa.Column('bal_guarantee_provision', sa.BigInteger(), nullable=False, server_default='0'))
    op.add_column('loans', sa.Column('bal_loan_loss_allowance', sa.BigInteger(), nullable=False, server_default='0'))
    for name, default in RATES:
        op.add_column('loans', sa.Column(name, sa.Integer(), nullable=False, server_default=default))


def downgrade() -> None:
    with op.batch_alter_table('loans') as batch:
        for name, _ in reversed(RATES):
            batch.drop_column(name)
        batch.drop_column('bal_loan_loss_allowance')
        batch.drop_column('bal_guarantee_provision')
