"""The deployment this database serves (SaaS or on-premise with its one institution): one row, none until
`openice db init --mode` stores one (a database without it is SaaS, as every database was before)

Revision ID: 0022
Revises: 0021
"""
from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'deployment',
        sa.Column('id', sa.Integer, primary_key=True, autoincrement=False),
        sa.Column('mode', sa.String(16), nullable=False),
        sa.Column('institution_code', sa.Text, nullable=True),
        sa.Column('set_at', sa.String(32), nullable=False),
        sa.CheckConstraint('id = 1', name='ck_deployment_one_row'),
    )


def downgrade() -> None:
    op.drop_table('deployment')
