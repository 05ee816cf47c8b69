"""Collections: one case per delinquency episode of a loan, and the case's actions

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.create_table('collection_cases',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('loan_id', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('resolution', sa.String(length=16), nullable=True),
    sa.Column('opened_day', sa.Integer(), nullable=False),
    sa.Column('closed_day', sa.Integer(), nullable=True),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('dpd', sa.Integer(), nullable=False),
    sa.Column('overdue_amount', sa.BigInteger(), nullable=False),
    sa.Column('assignee', sa.String(length=64), nullable=True),
    sa.Column('last_contact_day', sa.Integer(), nullable=True),
    sa.Column('next_contact_day', sa.Integer(), nullable=False),
    sa.Column('promise_amount', sa.BigInteger(), nullable=True),
    sa.Column('promise_day', sa.Integer(), nullable=True),
    sa.Column('promise_made_day', sa.Integer(), nullable=True),
    sa.Column('promises_kept', sa.Integer(), nullable=False),
    sa.Column('promises_broken', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_collection_cases_loan_id', 'collection_cases', ['loan_id'])
    op.create_index('ux_collection_cases_open_loan', 'collection_cases', ['loan_id'], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index('ix_collection_cases_queue', 'collection_cases', ['status', 'next_contact_day'])
    op.create_table('collection_actions',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger(), nullable=False),
    sa.Column('loan_id', sa.BigInteger(), nullable=False),
    sa.Column('business_day', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('promise_day', sa.Integer(), nullable=True),
    sa.Column('agent', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_collection_actions_case_id', 'collection_actions', ['case_id'])


def downgrade() -> None:
    op.drop_table('collection_actions')
    op.drop_table('collection_cases')
