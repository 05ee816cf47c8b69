"""Tables of the funding stage: the asset-backed deals issued over the book, their tranches, the loans of each pool,
and each month's collections and waterfall."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Integer, String, Table, Text

from openice.storage.columns import Day, Id, Money, metadata

abs_deals = Table(
    "abs_deals",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),  # a deal is issued once
    Column("funder", String(64), nullable=False, unique=True),  # its loans' funder: ABS:<name>
    Column("currency", String(3), nullable=False),
    Column("definition", Text, nullable=False),  # JSON of the deal file as issued, the residual resized to the pool
    Column("derecognise", Boolean, nullable=False),
    Column("cut_off_day", Day, nullable=False),
    Column("pool_balance", Money, nullable=False),
    Column("loans", Integer, nullable=False),
    # The journal's last entry when the deal was issued: the pool's collections are the entries after it.
    Column("after_entry", BigInteger, nullable=False),
    Column("created_at", String(32), nullable=False),
)

abs_tranches = Table(
    "abs_tranches",
    metadata,
    Column("deal_id", BigInteger, ForeignKey("abs_deals.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),  # 1 the most senior
    Column("name", String(64), nullable=False),
    Column("balance", Money, nullable=False),
    Column("coupon", String(24), nullable=True),  # an annual rate as a decimal string; NULL for the residual tranche
)

abs_pool_loans = Table(
    "abs_pool_loans",
    metadata,
    Column("loan_id", BigInteger, primary_key=True),  # a loan goes to one deal at most
    Column("deal_id", BigInteger, ForeignKey("abs_deals.id"), nullable=False, index=True),
    Column("balance", Money, nullable=False),  # principal at the cut-off (or when a revolving deal bought it)
    # The first day its income and balance are the deal's: NULL for a loan of the pool at issue (the cut-off day),
    # the day after the month-end that bought it for a revolving deal's.
    Column("joined_day", Day, nullable=True),
    Column("left_day", Day, nullable=True),  # the first day it is the platform's again, after a clean-up call
)

# A month of a deal: the pool's collections as the ledger holds them (a reversal can make one negative) and the
# waterfall's period as it was paid (JSON, money in major units).
abs_periods = Table(
    "abs_periods",
    metadata,
    Column("deal_id", BigInteger, ForeignKey("abs_deals.id"), primary_key=True),
    Column("period", Integer, primary_key=True),
    Column("first_day", Day, nullable=False),
    Column("last_day", Day, nullable=False),
    Column("through_entry", BigInteger, nullable=False),  # the journal's last entry the month's collections read
    Column("interest", Money, nullable=False),
    Column("principal", Money, nullable=False),
    Column("defaults", Money, nullable=False),
    Column("recoveries", Money, nullable=False),
    Column("waterfall", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
)
