"""Settlement statements an institution and the platform paid, and the days each covered (each day once)

Revision ID: 0018
Revises: 0017
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')


def upgrade() -> None:
    op.create_table(
        'settlements',
        sa.Column('id', ID, primary_key=True, autoincrement=True),
        sa.Column('institution', sa.String(64), nullable=False),
        sa.Column('currency', sa.String(3), nullable=False),
        sa.Column('period', sa.String(8), nullable=False),
        sa.Column('first_day', sa.Integer, nullable=False),
        sa.Column('last_day', sa.Integer, nullable=False),
        sa.Column('net', sa.BigInteger, nullable=False),
        sa.Column('lines', sa.Text, nullable=False),
        sa.Column('loans', sa.Integer, nullable=False),
        sa.Column('paid_day', sa.Integer, nullable=False),
        sa.Column('created_at', sa.String(32), nullable=False),
    )
    op.create_index('ix_settlements_institution', 'settlements', ['institution'])
    op.create_table(
        'settled_days',
        sa.Column('institution', sa.String(64), primary_key=True),
        sa.Column('currency', sa.String(3), primary_key=True),
        sa.Column('day', sa.Integer, primary_key=True),
        sa.Column('settlement_id', sa.BigInteger, sa.ForeignKey('settlements.id'), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('settled_days')
    op.drop_table('settlements')
