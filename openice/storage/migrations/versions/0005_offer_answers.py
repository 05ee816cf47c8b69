"""Matching: offers that wait for an institution's answer (deadline, time of the answer)

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('offers', sa.Column('expires_at', sa.String(length=32), nullable=True))
    op.add_column('offers', sa.Column('answered_at', sa.String(length=32), nullable=True))
    op.create_index('ix_offers_status_expires', 'offers', ['status', 'expires_at'])


def downgrade() -> None:
    op.drop_index('ix_offers_status_expires', table_name='offers')
    with op.batch_alter_table('offers') as batch:
        batch.drop_column('answered_at')
        batch.drop_column('expires_at')
