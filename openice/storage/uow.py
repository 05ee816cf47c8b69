"""Units of work: each one database transaction, handed out by a factory that services take.

A service takes `UnitsOfWork` and opens every unit through it. `EngineUnits` gives each unit a connection and a
transaction of its own (commit on success, rollback on any error); `JoinedUnits` makes each unit a savepoint of a
transaction its caller already holds. On PostgreSQL a row read `FOR UPDATE` makes two operations on it queue up;
SQLite takes its write lock when the transaction begins (not for read-only units).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from sqlalchemy import Connection, Engine


class UnitsOfWork(Protocol):
    """Opens units of work: a connection inside a transaction for the length of the `with` block."""

    def begin(self, readonly: bool = False, savepoint: bool = True) -> AbstractContextManager[Connection]:
        """`readonly` units write nothing (SQLite then takes no write lock). `savepoint=False` declares that no
        caller goes on after an error inside this unit: when the unit joins an enclosing transaction (an API
        request's), it then needs no savepoint to roll back to."""
        ...


class EngineUnits:
    """Each unit a new connection and transaction of its own: committed when the block ends, rolled back on any
    error. For callers that hold an engine (the CLI, the simulation, tests)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def begin(self, readonly: bool = False, savepoint: bool = True) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if readonly:
                conn = conn.execution_options(openice_readonly=True)
            with conn.begin():
                yield conn


class JoinedUnits:
    """Each unit a savepoint of the transaction an open connection holds. An API request hands its one connection
    to every service (a write request commits once, with the idempotency record, the change, the audit row and the
    stored response together, and a failure anywhere rolls all of it back); matching books a loan in the unit that
    takes the funder's quota. Read-only units need no savepoint, nor do units no caller goes on from after an
    error (`savepoint=False`): those run straight in the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @contextmanager
    def begin(self, readonly: bool = False, savepoint: bool = True) -> Iterator[Connection]:
        if readonly or not savepoint:
            yield self.conn
            return
        with self.conn.begin_nested():
            yield self.conn
