"""Decisioning: the fingerprint of the key personal data is encrypted with, checked when the service starts

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pii_key_check',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('check_value', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('pii_key_check')
