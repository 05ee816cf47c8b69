"""The ledger's journal filtered by account or by business day reads an index instead of the whole journal: lines by
account (newest first, as the page lists them) and entries by business day

Revision ID: 0021
Revises: 0017
"""
from alembic import op


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_journal_lines_account', 'journal_lines', ['account', 'id'])
    op.create_index('ix_journal_entries_business_day', 'journal_entries', ['business_day'])


def downgrade() -> None:
    op.drop_index('ix_journal_entries_business_day', table_name='journal_entries')
    op.drop_index('ix_journal_lines_account', table_name='journal_lines')
