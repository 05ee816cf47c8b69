"""Alembic environment: runs against the engine the caller hands over (no ini file, no URL guessing)."""

from alembic import context

from openice.storage.schema import metadata

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
