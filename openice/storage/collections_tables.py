"""Tables of the collections stage, on the shared `metadata` so Alembic sees them.

A collection case follows one delinquency episode of one loan: it opens when the loan falls overdue,
follows its bucket every end of day, and closes when the loan is cured or repaid. A loan written off
keeps its case open in the recovery stage until its recoveries cover what was written off. Actions
are the case's history and are never changed.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, text

from openice.storage.columns import Day, Id, Money, metadata

collection_cases = Table(
    "collection_cases",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("loan_id", BigInteger, nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),  # open | closed
    Column("resolution", String(16), nullable=True),  # cured | repaid | recovered, once closed
    Column("opened_day", Day, nullable=False),
    Column("closed_day", Day, nullable=True),
    Column("stage", String(8), nullable=False),  # the loan's bucket: M1 | M2 | M3 | M4+ | WO (recovery)
    Column("dpd", Integer, nullable=False),
    Column("overdue_amount", Money, nullable=False),  # unpaid due principal, interest, fees and late fees
    Column("assignee", String(64), nullable=True),  # the agent working the case
    Column("last_contact_day", Day, nullable=True),
    Column("next_contact_day", Day, nullable=False),  # the case is in the work queue from this day
    Column("promise_amount", Money, nullable=True),  # a promise to pay, while it is pending
    Column("promise_day", Day, nullable=True),
    Column("promise_made_day", Day, nullable=True),
    Column("promises_kept", Integer, nullable=False, default=0),
    Column("promises_broken", Integer, nullable=False, default=0),
    Index(
        "ux_collection_cases_open_loan",
        "loan_id",
        unique=True,
        sqlite_where=text("status = 'open'"),
        postgresql_where=text("status = 'open'"),
    ),
    Index("ix_collection_cases_queue", "status", "next_contact_day"),
)

collection_actions = Table(
    "collection_actions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", BigInteger, nullable=False, index=True),
    Column("loan_id", BigInteger, nullable=False),
    Column("business_day", Day, nullable=False),
    # opened | escalated | contact | assigned | promise_kept | promise_broken | closed
    Column("kind", String(16), nullable=False),
    Column("channel", String(16), nullable=True),  # sms | call | email | visit | letter
    Column("outcome", String(16), nullable=True),  # reached | no_answer | wrong_number | refused | promise
    Column("amount", Money, nullable=True),  # promised, or paid against a promise
    Column("promise_day", Day, nullable=True),
    Column("agent", String(64), nullable=True),
    Column("detail", String(64), nullable=True),  # the new stage, or how the case closed
    Column("created_at", String(32), nullable=False),
)
