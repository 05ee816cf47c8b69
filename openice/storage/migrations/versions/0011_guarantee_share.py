"""Servicing: a guaranteed loan's fees split between the guarantee (its fair value) and servicing

Loans booked before this revision keep the guarantee priced at all of their fees, as they were booked.

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('loans', sa.Column('guarantee_share_ppm', sa.Integer(), nullable=False, server_default='1000000'))
    with op.batch_alter_table('loans') as batch:  # no default from now on: every loan states its share
        batch.alter_column('guarantee_share_ppm', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('loans') as batch:
        batch.drop_column('guarantee_share_ppm')
