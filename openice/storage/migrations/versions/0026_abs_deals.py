"""Asset-backed deals issued over the book: the deal, its tranches, the loans of its pool and each month's
collections and waterfall

Revision ID: 0026
Revises: 0025
"""
from alembic import op
import sqlalchemy as sa


revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')


def upgrade() -> None:
    op.create_table(
        'abs_deals',
        sa.Column('id', ID, primary_key=True, autoincrement=True),
        sa.Column('name', sa.String(64), nullable=False, unique=True),
        sa.Column('funder', sa.String(64), nullable=False, unique=True),
        sa.Column('currency', sa.String(3), nullable=False),
        sa.Column('definition', sa.Text, nullable=False),
        sa.Column('derecognise', sa.Boolean, nullable=False),
        sa.Column('cut_off_day', sa.Integer, nullable=False),
        sa.Column('pool_balance', sa.BigInteger, nullable=False),
        sa.Column('loans', sa.Integer, nullable=False),
        sa.Column('after_entry', sa.BigInteger, nullable=False),
        sa.Column('created_at', sa.String(32), nullable=False),
    )
    op.create_table(
        'abs_tranches',
        sa.Column('deal_id', sa.BigInteger, sa.ForeignKey('abs_deals.id'), primary_key=True),
        sa.Column('seq', sa.Integer, primary_key=True),
        sa.Column('name', sa.String(64), nullable=False),
        sa.Column('balance', sa.BigInteger, nullable=False),
        sa.Column('coupon', sa.String(24), nullable=True),
    )
    op.create_table(
        'abs_pool_loans',
        sa.Column('loan_id', sa.BigInteger, primary_key=True),
        sa.Column('deal_id', sa.BigInteger, sa.ForeignKey('abs_deals.id'), nullable=False),
        sa.Column('balance', sa.BigInteger, nullable=False),
    )
    op.create_index('ix_abs_pool_loans_deal_id', 'abs_pool_loans', ['deal_id'])
    op.create_table(
        'abs_periods',
        sa.Column('deal_id', sa.BigInteger, sa.ForeignKey('abs_deals.id'), primary_key=True),
        sa.Column('period', sa.Integer, primary_key=True),
        sa.Column('first_day', sa.Integer, nullable=False),
        sa.Column('last_day', sa.Integer, nullable=False),
        sa.Column('through_entry', sa.BigInteger, nullable=False),
        sa.Column('interest', sa.BigInteger, nullable=False),
        sa.Column('principal', sa.BigInteger, nullable=False),
        sa.Column('defaults', sa.BigInteger, nullable=False),
        sa.Column('recoveries', sa.BigInteger, nullable=False),
        sa.Column('waterfall', sa.Text, nullable=False),
        sa.Column('created_at', sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('abs_periods')
    op.drop_index('ix_abs_pool_loans_deal_id', table_name='abs_pool_loans')
    op.drop_table('abs_pool_loans')
    op.drop_table('abs_tranches')
    op.drop_table('abs_deals')
