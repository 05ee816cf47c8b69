"""The disclosure metrics of the live book, as the service answers them: on PostgreSQL itself, or on DuckDB over a
snapshot of the embedded database."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import Engine

from openice.analytics import metrics
from openice.analytics.backends import Backend, DuckDBBackend, PostgresBackend, snapshot
from openice.analytics.definitions import CollectionWindow


def book_backend(engine: Engine) -> Backend:
    """PostgreSQL answers on the database itself; SQLite's book is read once into DuckDB, which does the work."""
    if engine.dialect.name == "postgresql":
        return PostgresBackend(engine)
    return DuckDBBackend.from_arrow(snapshot(engine))


def portfolio_metrics(
    engine: Engine,
    period: metrics.Period,
    as_of: date,
    by_institution: bool,
    window: CollectionWindow,
    last_closed_day: date,
) -> dict[str, Any]:
    """The quarter's metric set as plain JSON values (split by institution when asked), through a backend of its
    own that is closed afterwards."""
    backend = book_backend(engine)
    try:
        result = metrics.compute(
            backend,
            period,
            as_of,
            ("institution",) if by_institution else (),
            collection_window=window,
            last_closed_day=last_closed_day,
        ).to_dict()
    finally:
        backend.close()
    plain: dict[str, Any] = json.loads(json.dumps(result, default=str))
    return plain
