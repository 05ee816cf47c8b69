"""The ledger's journal filtered by account or by business day: the lines it returns are those of the whole journal
that match, newest first, and the database finds them through an index instead of reading the journal from its end
(which on a year's book meant every line for a rare account or an early day)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from openice.close_of_day import run_until
from openice.servicing import queries
from openice.servicing.service import Servicing
from openice.storage import servicing_tables
from openice.storage.days import to_day
from openice.tenancy import PLATFORM, Principal, Role, Scope
from tests.api.conftest import build_world

OPERATOR = Principal("test", Role.OPERATOR, PLATFORM)


def journal(engine: Engine, account: str | None, day: int | None) -> tuple[list[Any], str, Any]:
    """The page's lines, and the statement and parameters the database was given for them."""
    seen: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "journal_lines" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        with engine.connect() as conn:
            lines = queries.journal(Scope(conn, OPERATOR), None, account, day)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    (statement, parameters), *_ = seen
    return lines, statement, parameters


def plan(engine: Engine, statement: str, parameters: Any) -> str:
    """How the database would run the statement, as text; PostgreSQL is told to avoid reading whole tables so a
    small test book is planned as a large one would be."""
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        if engine.dialect.name == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return " ".join(str(row[-1]) for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(f"EXPLAIN {statement}", parameters)
        return " ".join(str(row[0]) for row in cursor.fetchall())


@pytest.mark.parametrize("by", ["account", "day"])
def test_a_filtered_journal_is_every_matching_line_newest_first_found_through_an_index(
    engine: Engine, servicing: Servicing, by: str
) -> None:
    build_world(engine)
    run_until(engine, date(2026, 2, 16))
    lines, entries = servicing_tables.journal_lines, servicing_tables.journal_entries
    with engine.connect() as conn:
        first_day = conn.execute(select(entries.c.business_day).order_by(entries.c.id)).scalars().first()
        rare = conn.execute(select(lines.c.account).order_by(lines.c.id)).scalars().first()
        condition = lines.c.account == rare if by == "account" else entries.c.business_day == first_day
        expected = list(
            conn.execute(
                select(lines.c.id)
                .join(entries, entries.c.id == lines.c.entry_id)
                .where(condition)
                .order_by(lines.c.id.desc())
                .limit(200)
            ).scalars()
        )
    assert expected and first_day is not None and first_day < to_day(date(2026, 2, 16))
    found, statement, parameters = journal(
        engine, rare if by == "account" else None, first_day if by == "day" else None
    )
    assert [line.id for line in found] == expected
    index = "ix_journal_lines_account" if by == "account" else "ix_journal_entries_business_day"
    assert index in plan(engine, statement, parameters)
