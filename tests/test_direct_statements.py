"""The per-request statements run on the driver's cursor (PostgreSQL) give what `Connection.execute` gives: the same
rows, row counts and returned ids, SQLAlchemy's own exceptions, and every statement seen by cursor listeners."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, event, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, NoResultFound

from openice.servicing import repository
from openice.servicing.service import Servicing
from openice.storage import direct, idempotency_tables, servicing_tables
from openice.storage.engine import migrate
from tests.conftest import START, pg_schema_engine


def loan_id(servicing: Servicing) -> int:
    return servicing.originate(
        product_code="CASH-EI",
        principal=1_200_000,
        tenor=12,
        funder="BANK-A",
        business_model="capital-light",
        idempotency_key="o-1",
        borrower_id="b-1",
    )["loan_id"]


def test_reads_match_sqlalchemy_row_for_row(engine: Engine, servicing: Servicing) -> None:
    ident = loan_id(servicing)
    with engine.connect() as conn, conn.begin():
        for statement, params in (
            (repository._LOAN, {"loan_id": ident}),
            (repository._INSTALLMENTS, {"loan_id": ident}),
            (repository._CALENDAR, None),
            (repository._PRODUCT, {"code": "CASH-EI"}),
        ):
            expected = conn.execute(statement, params).all()
            got = direct.execute(conn, statement, params).all()
            assert [tuple(r) for r in got] == [tuple(r) for r in expected] and got
            assert [r._mapping for r in got] == [dict(r._mapping) for r in expected]
            assert got[0].id == expected[0].id if hasattr(expected[0], "id") else True
        assert direct.execute(conn, repository._LOAN, {"loan_id": ident + 1000}).first() is None
        with pytest.raises(NoResultFound):
            direct.execute(conn, repository._LOAN, {"loan_id": ident + 1000}).one()


def test_writes_return_ids_and_counts_and_roll_back_with_the_transaction(engine: Engine, servicing: Servicing) -> None:
    ident = loan_id(servicing)
    with engine.connect() as conn:
        with conn.begin():
            new = direct.execute(
                conn,
                repository._INSERT_TRANSACTION,
                dict(
                    loan_id=ident,
                    kind="repayment",
                    value_day=1,
                    amount=5,
                    mode=None,
                    reversed=False,
                    booked_day=1,
                    created_at="x",
                ),
            ).scalar_one()
            assert isinstance(new, int)
            rows = [dict(entry_id=None, loan_id=ident, account=a, amount=v) for a, v in (("x", 5), ("y", -5))]
            entry = direct.execute(
                conn,
                repository._INSERT_ENTRY,
                dict(loan_id=ident, business_day=1, kind="k", transaction_id=new, created_at="x"),
            ).scalar_one()
            written = direct.execute(conn, repository._INSERT_LINES, [{**r, "entry_id": entry} for r in rows])
            assert written.rowcount == 2  # one INSERT of both rows on PostgreSQL
            lines = conn.execute(
                select(servicing_tables.journal_lines.c.account, servicing_tables.journal_lines.c.amount)
                .where(servicing_tables.journal_lines.c.entry_id == entry)
                .order_by(servicing_tables.journal_lines.c.id)
            ).all()
            assert [tuple(r) for r in lines] == [("x", 5), ("y", -5)]
            changed = direct.execute(
                conn,
                update(servicing_tables.transactions)
                .where(servicing_tables.transactions.c.id == bindparam("ident"))
                .values(reversed=True),
                {"ident": new},
            )
            assert changed.rowcount == 1
            conn.rollback()
        with conn.begin():
            assert (
                conn.execute(
                    select(servicing_tables.transactions).where(servicing_tables.transactions.c.id == new)
                ).first()
                is None
            )
            assert (
                conn.execute(
                    select(servicing_tables.journal_lines).where(servicing_tables.journal_lines.c.entry_id == entry)
                ).first()
                is None
            )


def test_a_constraint_violation_is_sqlalchemys_integrity_error(engine: Engine) -> None:
    row = dict(key="k-1", operation="repay", request_hash="h", response="{}", created_at="x")
    keys = idempotency_tables.idempotency_keys
    with engine.connect() as conn, conn.begin():
        direct.execute(conn, insert(keys), row)
        with pytest.raises(IntegrityError), conn.begin_nested():
            direct.execute(conn, insert(keys), row)
        stored = select(keys).where(keys.c.key == bindparam("k"))
        assert direct.execute(conn, stored, {"k": "k-1"}).one().operation == "repay"


def test_listeners_see_every_statement_and_sqlalchemy_keeps_what_it_must_do(engine: Engine) -> None:
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split()[0])

    with engine.connect() as conn:
        with conn.begin():
            direct.execute(conn, repository._CALENDAR)
            direct.execute(
                conn, insert(servicing_tables.products), dict(code="P", currency="CNY", definition="{}", created_at="x")
            )
        assert [s for s in seen if s != "BEGIN"] == ["SELECT", "INSERT"]  # SQLite says BEGIN too
        # outside a transaction SQLAlchemy begins one itself
        assert direct.execute(conn, repository._CALENDAR).one().id == 1
        conn.rollback()
    if engine.dialect.name == "postgresql":
        # column defaults computed in Python (loans.dpd, .bucket, ...) and expanding IN lists need SQLAlchemy
        assert direct._plan(insert(servicing_tables.loans), ("id",), engine.dialect) is None
        listed = select(servicing_tables.loans.c.id).where(
            servicing_tables.loans.c.id.in_(bindparam("ids", expanding=True))
        )
        assert direct._plan(listed, ("ids",), engine.dialect) is None
        assert direct._plan(repository._LOAN, ("loan_id",), engine.dialect) is not None


@pytest.fixture
def pg_engine(pg_ok: bool) -> Iterator[Engine]:
    """PostgreSQL only: SQLite has no server connection to lose."""
    if not pg_ok:
        pytest.skip("PostgreSQL not reachable (set OPENICE_REQUIRE_PG=1 to make this a failure)")
    for engine in pg_schema_engine():
        migrate(engine, START)
        yield engine


def test_a_lost_server_connection_is_invalidated_and_the_next_one_works(pg_engine: Engine) -> None:
    engine = pg_engine
    with engine.connect() as conn:
        conn.begin()
        direct.execute(conn, repository._CALENDAR)
        pid = conn.connection.dbapi_connection.info.backend_pid
        with engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as lost:
            direct.execute(conn, repository._CALENDAR)
        assert lost.value.connection_invalidated
    with engine.connect() as conn, conn.begin():  # a new driver connection, with a cursor of its own
        assert direct.execute(conn, repository._CALENDAR).one().id == 1
        assert conn.connection.dbapi_connection.info.backend_pid != pid
