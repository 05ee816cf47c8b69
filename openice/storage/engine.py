"""Engines for the embedded default (SQLite in WAL mode) and production (PostgreSQL via psycopg 3)."""

from __future__ import annotations

import os
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, make_url, select
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import OperationalError

from openice.errors import NotFound
from openice.storage import servicing_tables
from openice.storage.days import to_day

if TYPE_CHECKING:  # Alembic loads when the schema is migrated, not with every command
    from alembic.config import Config

DEFAULT_URL = "sqlite:///openice.db"


def database_url(url: str | None = None) -> str:
    return url or os.environ.get("OPENICE_DB") or DEFAULT_URL


class DatabaseUnavailable(OperationalError):
    """The database cannot be opened or holds no openice tables: the message names it and says what to do. An
    OperationalError still, so whoever answers those (the API's 503) answers this one too."""

    def __init__(self, message: str, orig: BaseException) -> None:
        super().__init__(None, None, orig)
        self.message = message

    def __str__(self) -> str:
        return self.message


def make_engine(url: str | None = None, *, create: bool = True) -> Engine:
    """An engine whose transactions take the write lock up front on SQLite (no upgrade deadlocks). With
    `create=False` a SQLite file that does not exist is refused (NotFound, field `--db`) instead of created empty:
    a command that reads or books on an existing database must not leave a new file behind."""
    url = database_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if not create and path and path != ":memory:" and not path.startswith("file:") and not Path(path).exists():
            raise NotFound(f"{url} does not exist; create it with `openice db init --db {url}`", field="--db")
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        _explain_failures(engine, url)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "foreign_keys=ON",
                "busy_timeout=60000",
                "temp_store=MEMORY",
                "cache_size=-200000",
            ):
                cur.execute(f"PRAGMA {pragma}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            readonly = conn.get_execution_options().get("openice_readonly")
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    engine = create_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args={"cursor_factory": _lean_cursor()}
    )
    _explain_failures(engine, make_url(url).render_as_string(hide_password=True))
    return engine


def _explain_failures(engine: Engine, shown: str) -> None:
    """A database that cannot be reached, or has no openice tables, fails with one sentence naming it and what to
    do (DatabaseUnavailable) instead of the driver's error and the statement."""

    @event.listens_for(engine, "handle_error")
    def _explain(context: ExceptionContext) -> None:
        error = context.original_exception
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if context.connection is None and not context.is_pre_ping:
            raise DatabaseUnavailable(f"cannot open {shown}: {reason}; check the URL and that the server runs", error)
        if getattr(error, "sqlstate", None) == "42P01" or reason.startswith("no such table"):
            raise DatabaseUnavailable(
                f"{shown} has no openice tables ({reason}); create or upgrade it with `openice db init --db {shown}`",
                error,
            )


@lru_cache(maxsize=1)
def _lean_cursor() -> type:
    """A psycopg cursor whose `description` is plain PEP 249 tuples. psycopg builds a `Column` object per column
    each time `description` is read, and SQLAlchemy reads it once per statement: about 5 us a column here, so
    describing one 50-column loan row cost more CPU than fetching it. SQLAlchemy reads the tuples by position."""
    import psycopg
    from psycopg import pq

    returns_rows = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.SINGLE_TUPLE, pq.ExecStatus.TUPLES_CHUNK)

    class LeanCursor(psycopg.Cursor):
        @property
        def description(self) -> list[tuple[str, int, None, None, None, None, None]] | None:  # type: ignore[override]
            res = self.pgresult
            if res is None or not (res.nfields or res.status in returns_rows):
                return None
            encoding = self.connection.info.encoding
            return [
                ((res.fname(i) or b"").decode(encoding), res.ftype(i), None, None, None, None, None)
                for i in range(res.nfields)
            ]

    return LeanCursor


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["engine"] = engine
    return config


def schema_behind(engine: Engine) -> str | None:
    """The database's schema revision when it is not this code's newest ("none" for an empty database), None when
    it is current: a command that only reads checks this instead of migrating."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return None if current == head else current or "none"


def migrate(engine: Engine, business_date: date | None = None) -> None:
    """Bring the schema to the newest migration and make sure a business date exists."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")
    with engine.begin() as conn:
        if conn.execute(select(servicing_tables.business_calendar.c.id)).first() is None:
            conn.execute(
                insert(servicing_tables.business_calendar).values(
                    id=1, business_day=to_day(business_date or date.today()), eod_day=None
                )
            )
