"""People sign in: users (argon2id password hashes, optional TOTP), their web sessions and the sign-in attempts
that throttle guessing

Revision ID: 0015
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'users',
        sa.Column('id', sa.String(32), primary_key=True),
        sa.Column('username', sa.String(64), nullable=False, unique=True),
        sa.Column('password_hash', sa.Text, nullable=False),
        sa.Column('role', sa.String(16), nullable=False),
        sa.Column('tenant', sa.Text, nullable=True),
        sa.Column('display_name', sa.Text, nullable=False),
        sa.Column('locale', sa.String(8), nullable=False),
        sa.Column('totp_secret', sa.String(64), nullable=True),
        sa.Column('created_at', sa.String(32), nullable=False),
        sa.Column('created_by', sa.String(32), nullable=True),
        sa.Column('disabled_at', sa.String(32), nullable=True),
    )
    op.create_table(
        'web_sessions',
        sa.Column('token_hash', sa.String(64), primary_key=True),
        sa.Column('user_id', sa.String(32), nullable=False),
        sa.Column('csrf', sa.String(64), nullable=False),
        sa.Column('second_factor_due', sa.Boolean, nullable=False),
        sa.Column('created_at', sa.String(32), nullable=False),
        sa.Column('expires_at', sa.String(32), nullable=False),
        sa.Column('ended_at', sa.String(32), nullable=True),
    )
    op.create_index('ix_web_sessions_user', 'web_sessions', ['user_id'])
    op.create_table(
        'sign_in_attempts',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer, 'sqlite'), primary_key=True, autoincrement=True),
        sa.Column('username', sa.String(64), nullable=False),
        sa.Column('client', sa.String(64), nullable=False),
        sa.Column('at', sa.String(32), nullable=False),
        sa.Column('succeeded', sa.Boolean, nullable=False),
    )
    op.create_index('ix_sign_in_attempts_username_at', 'sign_in_attempts', ['username', 'at'])
    op.create_index('ix_sign_in_attempts_client_at', 'sign_in_attempts', ['client', 'at'])


def downgrade() -> None:
    op.drop_table('sign_in_attempts')
    op.drop_table('web_sessions')
    op.drop_table('users')
