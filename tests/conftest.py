"""Fixtures: every storage test runs on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text

from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits

PG_URL = os.environ.get("OPENICE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START = date(2026, 1, 15)


def postgres_available() -> bool:
    try:
        with create_engine(PG_URL).connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_ok() -> bool:
    ok = postgres_available()
    if not ok and os.environ.get("OPENICE_REQUIRE_PG"):
        pytest.fail(f"PostgreSQL is required (OPENICE_REQUIRE_PG=1) but {PG_URL} is unreachable")
    return ok


def pg_schema_engine() -> Iterator[Engine]:
    """A fresh schema on the real server, dropped afterwards, so parallel tests never meet."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(PG_URL)
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _search_path(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET search_path TO {schema}")
        dbapi_conn.commit()

    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'openice.db'}")
        migrate(eng, START)
        yield eng
        eng.dispose()
    else:
        if not request.getfixturevalue("pg_ok"):
            pytest.skip("PostgreSQL not reachable (set OPENICE_REQUIRE_PG=1 to make this a failure)")
        gen = pg_schema_engine()
        eng = next(gen)
        migrate(eng, START)
        yield eng
        next(gen, None)


@pytest.fixture
def servicing(engine: Engine) -> Servicing:
    service = Servicing(EngineUnits(engine))
    for product in demo_products():
        service.create_product(product)
    return service
