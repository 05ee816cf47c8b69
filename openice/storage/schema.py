"""The whole schema: every stage's table module, on one metadata, for Alembic and for creating a test database."""

from __future__ import annotations

from openice.storage import (
    api_tables,
    collections_tables,
    decisioning_tables,
    deployment_tables,
    funding_tables,
    gateway_tables,
    hybrid_tables,
    idempotency_tables,
    servicing_tables,
)
from openice.storage.columns import metadata

TABLE_MODULES = (
    servicing_tables,
    decisioning_tables,
    collections_tables,
    api_tables,
    idempotency_tables,
    gateway_tables,
    deployment_tables,
    hybrid_tables,
    funding_tables,
)

__all__ = ["TABLE_MODULES", "metadata"]
