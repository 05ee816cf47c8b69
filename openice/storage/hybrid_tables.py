"""Tables of the hybrid deployment: on the platform, the decisions and outcomes an institution that decides on its own
premises pushes back for monitoring (figures only, never the applicant's data); on the institution's side, what it
has already pushed, so a push resumes where the last one stopped."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text, UniqueConstraint

from openice.storage.columns import Day, Id, metadata

hybrid_decisions = Table(
    "hybrid_decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("institution_code", Text, nullable=False),
    Column("reference", String(64), nullable=False),  # the institution's own id of the decision
    Column("decided_day", Day, nullable=False),
    Column("outcome", String(16), nullable=False),  # approved | declined | review
    Column("score", Float, nullable=True),  # None where the policy or fraud checks decided before scoring
    Column("pd", Float, nullable=True),
    Column("grade", String(8), nullable=True),
    Column("reasons", Text, nullable=False),  # JSON list of reason codes
    Column("model_hash", String(64), nullable=False),  # the package that scored it
    Column("policy_hash", String(64), nullable=True),
    Column("received_at", String(32), nullable=False),
    UniqueConstraint("institution_code", "reference", name="uq_hybrid_decisions_reference"),
    Index("ix_hybrid_decisions_model", "institution_code", "model_hash", "decided_day"),
)

hybrid_outcomes = Table(
    "hybrid_outcomes",
    metadata,
    Column("institution_code", Text, primary_key=True),
    Column("reference", String(64), primary_key=True),
    Column("months_on_book", Integer, primary_key=True),
    Column("bad", Integer, nullable=False),  # 1 bad, 0 good at that month on book
    Column("received_at", String(32), nullable=False),
)

hybrid_pushed = Table(
    "hybrid_pushed",
    metadata,
    Column("kind", String(16), primary_key=True),  # decision | outcome
    Column("reference", String(64), primary_key=True),
    Column("months_on_book", Integer, primary_key=True),  # 0 for a decision
    Column("pushed_at", String(32), nullable=False),
)
