"""The days a loan joined and left its deal's pool: a revolving deal buys loans after its cut-off day and a clean-up
call returns them to the platform

Revision ID: 0029
Revises: 0028
"""
from alembic import op
import sqlalchemy as sa


revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('abs_pool_loans', sa.Column('joined_day', sa.Integer, nullable=True))
    op.add_column('abs_pool_loans', sa.Column('left_day', sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('abs_pool_loans') as batch:
        batch.drop_column('left_day')
        batch.drop_column('joined_day')
