"""Decisioning: PII key rotation — the hashing key's fingerprint, and a rotation under way

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('pii_key_check', sa.Column('hash_check_value', sa.String(length=64), nullable=True))
    op.add_column('pii_key_check', sa.Column('rotating_to', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('pii_key_check') as batch:
        batch.drop_column('rotating_to')
        batch.drop_column('hash_check_value')
