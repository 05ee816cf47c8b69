"""Tables of the HTTP service: API keys (hashes only) and the audit trail (stored responses are in
`idempotency_tables`).

On the shared `metadata` so Alembic sees them. The audit trail is append-only; migration 0003 adds triggers
that refuse UPDATE and DELETE on it, as for decisions.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table, Text

from openice.storage.columns import Id, metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 of the secret; the secret is never stored
    Column("role", String(16), nullable=False),  # operator | institution | borrower | collections
    Column("tenant", Text, nullable=False),  # 'platform', an institution code or a borrower id
    Column("label", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(32), nullable=True),
    Column("revoked_at", String(32), nullable=True),
    Column("replaced_by", String(32), nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", String(32), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("key_id", String(32), nullable=True),
    Column("role", String(16), nullable=False),
    Column("tenant", Text, nullable=False),
    Column("action", String(64), nullable=False),
    Column("resource", Text, nullable=False),
    Column("detail", Text, nullable=False),  # JSON, never a secret or personal data
    Index("ix_audit_log_action", "action"),
)
