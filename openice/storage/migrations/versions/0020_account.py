"""Accounts: API keys rotate with an overlap (the previous secret's hash and until when it works), one-time codes
serve password resets too (their purpose), staff's password-reset links; codes sent before this revision were
hashed without a key and are dropped (they lived five minutes)

Revision ID: 0020
Revises: 0017
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys') as batch:
        batch.add_column(sa.Column('previous_hash', sa.String(64), nullable=True))
        batch.add_column(sa.Column('previous_until', sa.String(32), nullable=True))
        batch.add_column(sa.Column('rotated_at', sa.String(32), nullable=True))
    op.create_index('ix_api_keys_previous_hash', 'api_keys', ['previous_hash'])
    op.execute('DELETE FROM sign_up_codes')
    with op.batch_alter_table('sign_up_codes') as batch:
        batch.add_column(sa.Column('purpose', sa.String(16), nullable=False, server_default=sa.text("'sign_up'")))
    op.create_table(
        'password_resets',
        sa.Column('token_hash', sa.String(64), primary_key=True),
        sa.Column('user_id', sa.String(32), nullable=False),
        sa.Column('created_by', sa.String(32), nullable=True),
        sa.Column('created_at', sa.String(32), nullable=False),
        sa.Column('expires_at', sa.String(32), nullable=False),
        sa.Column('used_at', sa.String(32), nullable=True),
    )
    op.create_index('ix_password_resets_user', 'password_resets', ['user_id'])


def downgrade() -> None:
    op.drop_table('password_resets')
    with op.batch_alter_table('sign_up_codes') as batch:
        batch.drop_column('purpose')
    op.drop_index('ix_api_keys_previous_hash', 'api_keys')
    with op.batch_alter_table('api_keys') as batch:
        batch.drop_column('rotated_at')
        batch.drop_column('previous_until')
        batch.drop_column('previous_hash')
