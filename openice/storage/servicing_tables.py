"""Tables of the servicing stage: the calendar, products, loans, installments, the journal and transactions.

The loan row carries a snapshot of its ledger balances (`bal_*`), kept in the same transaction as the journal lines
it summarises.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from openice.storage.columns import Day, Id, Money, metadata

business_calendar = Table(
    "business_calendar",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("business_day", Day, nullable=False),
    Column("eod_day", Day, nullable=True),  # set while an end of day for that date is under way
)

products = Table(
    "products",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("definition", Text, nullable=False),  # JSON of LoanProduct.to_dict()
    Column("created_at", String(32), nullable=False),
)

loans = Table(
    "loans",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("borrower_id", String(64), nullable=True, index=True),
    Column("product_code", String(64), ForeignKey("products.code"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("principal", Money, nullable=False),
    Column("tenor", Integer, nullable=False),
    Column("rate_ppm", Integer, nullable=False),
    Column("funder_rate_ppm", Integer, nullable=False),  # the funder's part of rate_ppm
    Column("guarantee_share_ppm", Integer, nullable=False),  # the guarantee's part of each fee
    Column("method", String(32), nullable=False),
    Column("day_count", String(16), nullable=False),
    Column("disbursed_day", Day, nullable=False),
    Column("maturity_day", Day, nullable=False),
    Column("funder", String(64), nullable=False, index=True),
    Column("original_funder", String(64), nullable=False),
    Column("business_model", String(32), nullable=False),
    Column("channel", String(32), nullable=False, server_default="direct"),
    Column("upfront_fee", Money, nullable=False),
    Column("monthly_fee", Money, nullable=False),
    Column("grace_days", Integer, nullable=False),
    Column("late_fee_ppm", Integer, nullable=False),
    Column("late_fee_cap", Money, nullable=False),
    Column("write_off_dpd", Integer, nullable=False),
    Column("non_accrual_dpd", Integer, nullable=False, server_default="90"),
    Column("prepayment_allowed", Boolean, nullable=False),
    Column("prepayment_fee_ppm", Integer, nullable=False),
    Column("component_order", String(64), nullable=False),
    Column("allocation", String(32), nullable=False),
    Column("guarantee_payout_dpd", Integer, nullable=True),
    Column("guarantee_paid", Boolean, nullable=False, default=False),
    Column("status", String(16), nullable=False),
    Column("closed_day", Day, nullable=True),
    Column("current_seq", Integer, nullable=True),  # first installment not yet due
    Column("overdue_since", Day, nullable=True),
    Column("dpd", Integer, nullable=False, default=0),
    Column("bucket", String(8), nullable=False, default="C"),
    Column("late_fees_charged", Money, nullable=False, default=0),
    Column("written_off", Money, nullable=False, default=0, server_default="0"),  # owed when written off
    Column("recovered", Money, nullable=False, default=0),
    Column("bal_loan_principal", Money, nullable=False, default=0),
    Column("bal_interest_accrued", Money, nullable=False, default=0),
    Column("bal_interest_receivable", Money, nullable=False, default=0),
    Column("bal_fee_receivable", Money, nullable=False, default=0),
    Column("bal_penalty_receivable", Money, nullable=False, default=0),
    Column("bal_guarantee_contract_asset", Money, nullable=False, default=0),
    Column("bal_guarantee_liability", Money, nullable=False, default=0),
    Column("bal_guarantee_provision", Money, nullable=False, default=0, server_default="0"),
    Column("bal_loan_loss_allowance", Money, nullable=False, default=0, server_default="0"),
    Column("bal_interest_suspense", Money, nullable=False, default=0, server_default="0"),
    Column("bal_fee_suspense", Money, nullable=False, default=0, server_default="0"),
    Column("bal_penalty_suspense", Money, nullable=False, default=0, server_default="0"),
    Column("bal_deferred_origination_fee", Money, nullable=False, default=0, server_default="0"),
    # Provision rates of a guaranteed loan per delinquency bucket, in parts per million (see products.py).
    Column("provision_ppm_c", Integer, nullable=False, server_default="10000"),
    Column("provision_ppm_m1", Integer, nullable=False, server_default="200000"),
    Column("provision_ppm_m2", Integer, nullable=False, server_default="500000"),
    Column("provision_ppm_m3", Integer, nullable=False, server_default="800000"),
    Column("provision_ppm_m4", Integer, nullable=False, server_default="1000000"),
    Column("version", Integer, nullable=False, default=1),
    # Only columns that rarely change are indexed, so PostgreSQL's daily updates of dpd and balances
    # stay heap-only (HOT) and the table does not bloat under end of day.
    Index("ix_loans_overdue_since", "overdue_since"),
)

PROVISION_RATE_COLUMNS = (
    "provision_ppm_c",
    "provision_ppm_m1",
    "provision_ppm_m2",
    "provision_ppm_m3",
    "provision_ppm_m4",
)  # buckets C, M1, M2, M3, M4+

installments = Table(
    "installments",
    metadata,
    Column("loan_id", BigInteger, ForeignKey("loans.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("period_start_day", Day, nullable=False),
    Column("due_day", Day, nullable=False),
    Column("principal", Money, nullable=False),
    Column("interest", Money, nullable=False),
    Column("fee", Money, nullable=False),
    Column("principal_paid", Money, nullable=False, default=0),
    Column("interest_paid", Money, nullable=False, default=0),
    Column("fee_paid", Money, nullable=False, default=0),
    Column("booked", Boolean, nullable=False, default=False),
    # The part of a deferred upfront fee earned as this installment falls due (effective interest method).
    Column("fee_amortisation", Money, nullable=False, default=0, server_default="0"),
    Index("ix_installments_due_day", "due_day"),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("loan_id", BigInteger, ForeignKey("loans.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("value_day", Day, nullable=False),
    Column("amount", Money, nullable=False),
    Column("mode", String(16), nullable=True),
    Column("reversed", Boolean, nullable=False, default=False),
    Column("booked_day", Day, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("reason", String(200), nullable=True),  # why an operator backdated it or wrote the loan off
)

allocations = Table(
    "allocations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("transaction_id", BigInteger, nullable=True, index=True),
    Column("loan_id", BigInteger, nullable=False, index=True),
    Column("seq", Integer, nullable=True),  # the installment paid; NULL for prepaid principal and recoveries
    Column("value_day", Day, nullable=False),
    Column("component", String(24), nullable=False),  # principal|interest|fee|penalty|principal_prepaid|...
    Column("amount", Money, nullable=False),
)

portfolio_snapshots = Table(
    "portfolio_snapshots",
    metadata,
    Column("as_of_day", Day, primary_key=True),  # a month's last day, after its end of day
    Column("loan_id", BigInteger, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("funder", String(64), nullable=False),
    Column("dpd", Integer, nullable=False),
    Column("bucket", String(8), nullable=False),
    Column("principal_outstanding", Money, nullable=False),
    Column("interest_receivable", Money, nullable=False),
)

journal_entries = Table(
    "journal_entries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("loan_id", BigInteger, nullable=True, index=True),  # NULL for an end-of-day batch entry
    Column("business_day", Day, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("transaction_id", BigInteger, nullable=True),
    Column("created_at", String(32), nullable=False),
    Index("ix_journal_entries_business_day", "business_day"),  # the ledger page's journal of one day
)

journal_lines = Table(
    "journal_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entry_id", BigInteger, ForeignKey("journal_entries.id"), nullable=False, index=True),
    Column("loan_id", BigInteger, nullable=False, index=True),
    Column("account", String(40), nullable=False),
    Column("amount", Money, nullable=False),
    Index("ix_journal_lines_account", "account", "id"),  # the ledger page's journal of one account, newest first
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("business_day", Day, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("loan_id", BigInteger, nullable=True),
    # The loan's funder when the event happened: a guarantee payout passes the loan to the platform, and events that
    # came before it are still its institution's when published after it. NULL: no loan's, or written before 0030.
    Column("funder", String(64), nullable=True),
    Column("payload", Text, nullable=False),
    Column("published", Boolean, nullable=False, default=False),
    Index("ix_outbox_unpublished", "published", "id"),
)

eod_progress = Table(
    "eod_progress",
    metadata,
    Column("business_day", Day, primary_key=True),
    Column("step", String(32), primary_key=True),
    Column("rows", BigInteger, nullable=False),
    Column("completed_at", String(32), nullable=False),
)

# The trial balance without reading the whole journal: end of day folds the lines it has not seen into running
# balances per currency and account, and a read adds only the lines written since (`through_line`). Journal lines
# are only ever inserted, so the two parts never overlap and never miss a line.
ledger_balances = Table(
    "ledger_balances",
    metadata,
    Column("currency", String(3), primary_key=True),
    Column("account", String(40), primary_key=True),
    Column("balance", Money, nullable=False),
)

ledger_checkpoint = Table(
    "ledger_checkpoint",
    metadata,
    Column("id", Integer, primary_key=True),  # one row, id 1
    Column("through_line", BigInteger, nullable=False),  # journal_lines.id up to which ledger_balances holds
)

# A statement an institution and the platform settled: its lines as paid (JSON of minor units by line name) and the
# net the platform paid (negative: the institution paid). `settled_days` holds each day it covered, once: a day or
# month already settled cannot be paid again, even by a concurrent request.
settlements = Table(
    "settlements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("institution", String(64), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("period", String(8), nullable=False),
    Column("first_day", Day, nullable=False),
    Column("last_day", Day, nullable=False),
    Column("net", Money, nullable=False),
    Column("lines", Text, nullable=False),
    Column("loans", Integer, nullable=False),
    Column("paid_day", Day, nullable=False),
    Column("created_at", String(32), nullable=False),
)

settled_days = Table(
    "settled_days",
    metadata,
    Column("institution", String(64), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("day", Day, primary_key=True),
    Column("settlement_id", BigInteger, ForeignKey("settlements.id"), nullable=False),
)
