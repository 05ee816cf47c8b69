"""The one idempotency store's table: every money-moving or creating request's key, whoever makes it (servicing's
money calls, the API's creates, drawdowns), with the response it got.

On the shared `metadata` so Alembic sees it; migration 0014 moved `api_requests` and the drawdowns' own keys here.
"""

from __future__ import annotations

from sqlalchemy import Column, String, Table, Text

from openice.storage.columns import metadata

KEY_LENGTH = 400  # a caller's scope and its key

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(KEY_LENGTH), primary_key=True),  # scope/key: an API caller's role/tenant, "cli", ...
    Column("operation", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("response", Text, nullable=True),  # NULL only inside the transaction that claimed the key
    Column("created_at", String(32), nullable=False),
)
