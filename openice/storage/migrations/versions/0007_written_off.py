"""Servicing: what a loan's borrower owed when it was written off (the cap on its recoveries), and the reason an
operator gave for a backdated payment or a write-off

Loans written off before this revision take it from their write-off journal entry: the receivables it cleared.

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

RECEIVABLES = "('loan_principal', 'interest_accrued', 'interest_receivable', 'fee_receivable', 'penalty_receivable')"


def upgrade() -> None:
    op.add_column('loans', sa.Column('written_off', sa.BigInteger(), nullable=False, server_default='0'))
    op.add_column('transactions', sa.Column('reason', sa.String(length=200), nullable=True))
    op.execute(f"""
        UPDATE loans SET written_off = COALESCE((
            SELECT -SUM(jl.amount) FROM journal_lines jl JOIN journal_entries je ON je.id = jl.entry_id
            WHERE je.kind = 'write_off' AND jl.loan_id = loans.id AND jl.account IN {RECEIVABLES}), 0)
        WHERE status = 'written_off'""")


def downgrade() -> None:
    with op.batch_alter_table('transactions') as batch:
        batch.drop_column('reason')
    with op.batch_alter_table('loans') as batch:
        batch.drop_column('written_off')
