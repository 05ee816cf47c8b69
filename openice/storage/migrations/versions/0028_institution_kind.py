"""What kind of lender an institution is (bank, consumer-finance, trust, microcredit), beside its definition, so the
funding disclosures read a trust's loans as their own source on every analytics engine

Revision ID: 0028
Revises: 0026
"""
from alembic import op
import sqlalchemy as sa


revision = '0028'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Definitions stored before carry no kind: NULL, counted as an institution as they were.
    with op.batch_alter_table('institutions') as batch:
        batch.add_column(sa.Column('kind', sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('institutions') as batch:
        batch.drop_column('kind')
