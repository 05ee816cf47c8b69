"""Servicing: the annual rate a loan's funder earns, so the platform's interest spread is booked apart

Loans booked before this revision keep all their interest with the funder, as they were booked.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('loans', sa.Column('funder_rate_ppm', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE loans SET funder_rate_ppm = rate_ppm")
    # No default from now on: a loan written without its funder's rate is refused, never booked as all spread.
    with op.batch_alter_table('loans') as batch:
        batch.alter_column('funder_rate_ppm', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('loans') as batch:
        batch.drop_column('funder_rate_ppm')
