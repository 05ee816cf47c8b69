"""Tables of the institution gateway: the deliveries of institution events (an outbox with attempts), the dead
letters an operator replays, each institution's signing secrets and circuit breaker, and the signatures of the
callbacks already taken (a replayed callback is refused)."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text

from openice.storage.columns import Id, metadata

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("institution_code", Text, nullable=False),
    Column("event_type", String(32), nullable=False),  # offer | loan.funded | repayment.received | ...
    Column("subject", String(64), nullable=False),  # ordered per subject ("drawdown/7", "loan/12"): oldest first
    Column("idempotency_key", String(128), nullable=False, unique=True),  # the institution dedupes by it
    Column("payload", Text, nullable=False),  # JSON body, sent byte for byte on every attempt
    Column("status", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=False),  # unix seconds
    Column("lease_until", Float, nullable=True),  # a relay holds it until then; past it another relay may take it
    Column("last_error", Text, nullable=True),
    Column("outcome", Text, nullable=True),  # what the institution's answer did (accepted, declined, too late)
    Column("created_at", String(32), nullable=False),
    Column("delivered_at", String(32), nullable=True),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    Index("ix_deliveries_subject", "subject", "status", "id"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", Id, nullable=False, index=True),
    Column("institution_code", Text, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", String(32), nullable=False),
    Column("replayed_at", String(32), nullable=True),  # an operator sent it back to the queue
)

institution_secrets = Table(
    "institution_secrets",
    metadata,
    Column("institution_code", Text, primary_key=True),
    Column("current", Text, nullable=False),  # encrypted under the PII key (`secret_context`), never in clear
    Column("previous", Text, nullable=True),  # still accepted, and signed with, until previous_until; encrypted too
    Column("previous_until", Float, nullable=True),  # unix seconds
    Column("rotated_at", String(32), nullable=False),
)


def secret_context(code: str) -> str:
    """What an institution's encrypted secret is bound to (the associated data): a secret copied into another
    institution's row does not decrypt."""
    return f"institution_secrets:{code}"


institution_circuits = Table(
    "institution_circuits",
    metadata,
    Column("institution_code", Text, primary_key=True),
    Column("state", String(16), nullable=False),  # closed | open | half_open
    Column("failures", Integer, nullable=False),
    Column("since", Float, nullable=True),  # unix seconds
)

callback_signatures = Table(
    "callback_signatures",
    metadata,
    Column("signature", String(64), primary_key=True),
    Column("institution_code", Text, nullable=False),
    Column("signed_at", Float, nullable=False, index=True),  # the callback's timestamp: older than the window, pruned
)
