"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL, and step back down."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

import openice.storage.api_tables
import openice.storage.collections_tables
import openice.storage.decisioning_tables  # noqa: F401  (their tables join the shared metadata)
from openice.storage.engine import alembic_config
from openice.storage.schema import metadata


def schema_drift(engine: Engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)


def test_migrated_schema_equals_the_declared_tables(engine: Engine) -> None:
    assert schema_drift(engine) == []


def revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_the_newest_migration_steps_down_and_up_again(engine: Engine) -> None:
    config = alembic_config(engine)
    head = revision(engine)
    tables = set(inspect(engine).get_table_names())
    command.downgrade(config, "-1")
    assert revision(engine) not in (head, None)
    command.upgrade(config, "head")
    assert revision(engine) == head and set(inspect(engine).get_table_names()) == tables
    assert schema_drift(engine) == []
