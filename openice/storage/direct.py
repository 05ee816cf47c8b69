"""The per-request paths' prebuilt statements, run straight on the driver's cursor on PostgreSQL.

Most of a statement's client CPU through `Connection.execute` is SQLAlchemy's own: the compiled-cache lookup, the
execution context, the result metadata and the `Row` objects. `bench/statements.py` measures 159 against 81 us for
the 50-column loan row by key, and a repayment runs fifteen statements. `execute` compiles a statement once per set
of parameter names and hands the SQL and the parameters to a psycopg cursor of the same SQLAlchemy connection: the
same transaction and savepoints, the same prepared statements (psycopg prepares a query after it has run a few
times). Several rows for one INSERT go as one multi-row VALUES statement.

It takes only statements that need nothing of SQLAlchemy at run time but its bind conversions (booleans), which it
applies itself: no Python-side column defaults, no result conversions, no expanding IN lists. Anything else, and
every other dialect (SQLite), runs through `Connection.execute` as before, with the same results. Driver errors
are raised as SQLAlchemy's own exceptions (`IntegrityError`, `OperationalError`, ...), as `Connection.execute`
would raise them, and `before_cursor_execute` listeners still see every statement.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Float, Numeric, exc
from sqlalchemy.sql.selectable import ExecutableReturnsRows

FLOAT8, NUMERIC = 701, 1700  # PostgreSQL's type oids of double precision and numeric
MANY_VALUES_ROWS = 64  # more rows than this (bulk loads) go through executemany


@dataclass(frozen=True)
class _Plan:
    sql: str
    literals: dict[str, Any]  # parameters the statement carries its own values for
    converters: dict[str, Any]  # SQLAlchemy's conversions of parameter values (booleans), by parameter name
    row: type | None  # the class of its result rows; None when it returns none
    values: str | None = None  # an INSERT's "(%(a)s, ...)" row of values, repeated to insert many rows at once


class DirectResult:
    """The part of SQLAlchemy's `CursorResult` the repositories use, over rows with attribute access."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows, self.rowcount = rows, rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise (
                exc.NoResultFound("No row was found when one was required")
                if not self._rows
                else exc.MultipleResultsFound("Multiple rows were found when exactly one was required")
            )
        return self._rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar(self) -> Any:
        """The first column of the first row, None when there is no row."""
        return self._rows[0][0] if self._rows else None


@lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type:
    """A tuple subclass with one property per column and `_mapping`, like SQLAlchemy's `Row`, made once per shape."""

    namespace: dict[str, Any] = {name: property(itemgetter(i)) for i, name in enumerate(names)}
    namespace["__slots__"] = ()
    namespace["_mapping"] = property(lambda row: dict(zip(names, row, strict=True)))
    return type("DirectRow", (tuple,), namespace)


def _processes(column_type: Any, dialect: Any) -> bool:
    """Whether SQLAlchemy converts this column's values after fetching them. Numeric types decide by what the server
    sends; the schema's `Float` columns are double precision and `Numeric` ones numeric."""
    try:
        return column_type._cached_result_processor(dialect, None) is not None
    except (TypeError, exc.SQLAlchemyError):
        sent = FLOAT8 if isinstance(column_type, Float) else NUMERIC if isinstance(column_type, Numeric) else None
        try:
            return sent is None or column_type._cached_result_processor(dialect, sent) is not None
        except (TypeError, exc.SQLAlchemyError):
            return True


@lru_cache(maxsize=20_000)
def _plan(statement: ExecutableReturnsRows, keys: tuple[str, ...], dialect: Any) -> _Plan | None:
    """The statement compiled for these parameter names, or None when it needs SQLAlchemy at run time. Kept per
    statement object: the callers' statements are built once. Compiled as for `executemany`, so an INSERT carries
    no implicit RETURNING of its key (only an explicit `.returning()` returns rows)."""
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
    if (
        compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or any(_processes(entry[3], dialect) for entry in getattr(compiled, "_result_columns", ()))
    ):
        return None
    literals: dict[str, Any] = {}
    for bind, name in compiled.bind_names.items():
        if name in keys:
            continue
        if bind.callable is not None or bind.required:
            return None  # computed per call, or missing: SQLAlchemy computes it or says what is missing
        literals[name] = bind.value
    names = tuple(entry[0] for entry in getattr(compiled, "_result_columns", ()))
    sql, values = compiled.string, None
    if getattr(statement, "is_insert", False) and not names and sql.count(" VALUES (") == 1 and sql.endswith(")"):
        values = sql[sql.index(" VALUES (") + len(" VALUES ") :]
    return _Plan(
        sql,
        literals,
        dict(getattr(compiled, "_bind_processors", None) or {}),
        _row_class(names) if names else None,
        values,
    )


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@lru_cache(maxsize=4096)
def _many_values(sql: str, values: str, rows: int) -> str:
    """One INSERT of `rows` rows: the row of values repeated, each copy's parameters suffixed by its row number. One
    statement and one round trip instead of a pipelined statement per row, as SQLAlchemy's insertmanyvalues does."""
    head = sql[: len(sql) - len(values)]
    return head + ", ".join(_PLACEHOLDER.sub(rf"%(\1__{i})s", values) for i in range(rows))


def _bound(plan: _Plan, given: dict[str, Any]) -> dict[str, Any]:
    """One row of parameters as SQLAlchemy would send it: the literals filled in, the values converted (booleans)."""
    args = {**plan.literals, **given} if plan.literals else given
    if plan.converters:
        args = {
            name: (plan.converters[name](value) if name in plan.converters else value) for name, value in args.items()
        }
    return args


def execute(
    conn: Connection, statement: ExecutableReturnsRows, params: dict[str, Any] | Sequence[dict[str, Any]] | None = None
) -> Any:
    """`conn.execute(statement, params)`, on the driver's cursor where that gives the same result. The statement is a
    SELECT, INSERT, UPDATE or DELETE: SQLAlchemy's common base of those, executable and compilable alike."""
    # Outside a transaction SQLAlchemy would begin one itself (and commit it on `commit`): leave that to it.
    if conn.dialect.name != "postgresql" or not conn.in_transaction():
        return conn.execute(statement, params)
    rows: Sequence[dict[str, Any]] | None
    if params is None or isinstance(params, dict):
        rows, first = None, params or {}
    else:
        rows, first = params, (params[0] if params else {})
    many = rows is not None
    plan = _plan(statement, tuple(sorted(first)), conn.dialect)
    if plan is None or (many and plan.row is not None):
        return conn.execute(statement, params)
    sql, row = plan.sql, plan.row
    args: Any = [_bound(plan, p) for p in rows] if rows is not None else _bound(plan, first)
    if many and plan.values is not None and 0 < len(args) <= MANY_VALUES_ROWS:
        sql, many = _many_values(plan.sql, plan.values, len(args)), False
        args = {f"{name}__{i}": value for i, one in enumerate(args) for name, value in one.items()}
    pooled = conn.connection
    dbapi: Any = pooled.dbapi_connection  # set while the connection is checked out
    # One cursor per driver connection, reused by every statement on it, in the pool's per-connection `info`: a
    # connection serves one request at a time and each statement reads its rows before the next one runs.
    cursor = pooled.info.get("openice_cursor")
    if cursor is None or cursor.closed or cursor.connection is not dbapi:
        cursor = pooled.info["openice_cursor"] = dbapi.cursor()
    for listener in conn.dispatch.before_cursor_execute:
        listener(conn, cursor, sql, args, None, many)
    try:
        if many:
            cursor.executemany(sql, args)
        else:
            cursor.execute(sql, args)
        return DirectResult([row(values) for values in cursor.fetchall()] if row else [], cursor.rowcount)
    except conn.dialect.loaded_dbapi.Error as error:
        invalidated = conn.dialect.is_disconnect(error, dbapi, cursor)
        if invalidated:
            conn.invalidate(error)
        raise exc.DBAPIError.instance(
            sql,
            args,
            error,
            conn.dialect.loaded_dbapi.Error,
            connection_invalidated=invalidated,
            dialect=conn.dialect,
            ismulti=many,
        ) from error
