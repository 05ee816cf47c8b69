"""The migrations build exactly the schema the code declares (every stage's tables, their types and server
defaults), on SQLite and PostgreSQL, and step back down."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from openice.storage import schema
from openice.storage.engine import alembic_config
from openice.storage.schema import metadata


def schema_drift(engine: Engine) -> list:
    with engine.connect() as conn:
        options = {"compare_type": True, "compare_server_default": True}
        return compare_metadata(MigrationContext.configure(conn, opts=options), metadata)


def test_migrated_schema_equals_the_declared_tables(engine: Engine) -> None:
    assert schema_drift(engine) == []
    assert set(inspect(engine).get_table_names()) - {"alembic_version"} == set(metadata.tables)


def test_the_schema_holds_every_table_module() -> None:
    """Alembic's env reads `schema.metadata`: a table module it does not import would be invisible to it."""
    modules = {path.stem for path in Path(schema.__file__).parent.glob("*_tables.py")}
    assert {module.__name__.rsplit(".", 1)[1] for module in schema.TABLE_MODULES} == modules


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
