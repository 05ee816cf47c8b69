"""Running ledger balances per currency and account, folded in by end of day, so the trial balance reads the lines
written since the last close instead of the whole journal

Revision ID: 0016
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ledger_balances',
        sa.Column('currency', sa.String(3), primary_key=True),
        sa.Column('account', sa.String(40), primary_key=True),
        sa.Column('balance', sa.BigInteger, nullable=False),
    )
    op.create_table(
        'ledger_checkpoint',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('through_line', sa.BigInteger, nullable=False),
    )
    # The journal so far, folded in once now (an upgrade runs with the service stopped: no line is in flight).
    op.execute(
        "INSERT INTO ledger_balances (currency, account, balance) "
        "SELECT l.currency, j.account, SUM(j.amount) FROM journal_lines j JOIN loans l ON l.id = j.loan_id "
        "GROUP BY l.currency, j.account"
    )
    op.execute("INSERT INTO ledger_checkpoint (id, through_line) SELECT 1, COALESCE(MAX(id), 0) FROM journal_lines")


def downgrade() -> None:
    op.drop_table('ledger_checkpoint')
    op.drop_table('ledger_balances')
