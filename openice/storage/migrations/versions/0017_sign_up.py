"""A borrower signs up with a one-time code: the codes (hashed, with expiry and attempts) and the development
SMS outbox

Revision ID: 0017
Revises: 0016
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')


def upgrade() -> None:
    op.create_table(
        'sign_up_codes',
        sa.Column('id', ID, primary_key=True, autoincrement=True),
        sa.Column('mobile_hash', sa.String(64), nullable=False),
        sa.Column('client', sa.String(64), nullable=False),
        sa.Column('salt', sa.String(32), nullable=False),
        sa.Column('code_hash', sa.String(64), nullable=False),
        sa.Column('created_at', sa.String(32), nullable=False),
        sa.Column('expires_at', sa.String(32), nullable=False),
        sa.Column('attempts', sa.Integer, nullable=False),
        sa.Column('used_at', sa.String(32), nullable=True),
    )
    op.create_index('ix_sign_up_codes_mobile_created', 'sign_up_codes', ['mobile_hash', 'created_at'])
    op.create_index('ix_sign_up_codes_client_created', 'sign_up_codes', ['client', 'created_at'])
    op.create_table(
        'sms_outbox',
        sa.Column('id', ID, primary_key=True, autoincrement=True),
        sa.Column('mobile', sa.String(16), nullable=False),
        sa.Column('text', sa.Text, nullable=False),
        sa.Column('created_at', sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('sms_outbox')
    op.drop_table('sign_up_codes')
