"""The hybrid deployment: the decisions and outcomes institutions deciding on their own premises push back to the
platform for monitoring, and, on an institution's side, what it has pushed already

Revision ID: 0023
Revises: 0022
"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')


def upgrade() -> None:
    op.create_table(
        'hybrid_decisions',
        sa.Column('id', ID, primary_key=True, autoincrement=True),
        sa.Column('institution_code', sa.Text, nullable=False),
        sa.Column('reference', sa.String(64), nullable=False),
        sa.Column('decided_day', sa.Integer, nullable=False),
        sa.Column('outcome', sa.String(16), nullable=False),
        sa.Column('score', sa.Float, nullable=True),
        sa.Column('pd', sa.Float, nullable=True),
        sa.Column('grade', sa.String(8), nullable=True),
        sa.Column('reasons', sa.Text, nullable=False),
        sa.Column('model_hash', sa.String(64), nullable=False),
        sa.Column('policy_hash', sa.String(64), nullable=True),
        sa.Column('received_at', sa.String(32), nullable=False),
        sa.UniqueConstraint('institution_code', 'reference', name='uq_hybrid_decisions_reference'),
    )
    op.create_index('ix_hybrid_decisions_model', 'hybrid_decisions', ['institution_code', 'model_hash', 'decided_day'])
    op.create_table(
        'hybrid_outcomes',
        sa.Column('institution_code', sa.Text, primary_key=True),
        sa.Column('reference', sa.String(64), primary_key=True),
        sa.Column('months_on_book', sa.Integer, primary_key=True),
        sa.Column('bad', sa.Integer, nullable=False),
        sa.Column('received_at', sa.String(32), nullable=False),
    )
    op.create_table(
        'hybrid_pushed',
        sa.Column('kind', sa.String(16), primary_key=True),
        sa.Column('reference', sa.String(64), primary_key=True),
        sa.Column('months_on_book', sa.Integer, primary_key=True),
        sa.Column('pushed_at', sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('hybrid_pushed')
    op.drop_table('hybrid_outcomes')
    op.drop_index('ix_hybrid_decisions_model', table_name='hybrid_decisions')
    op.drop_table('hybrid_decisions')
