"""The trial balance read from the balances end of day folds in plus the lines written since equals the sum of the
whole journal, by currency and account, before any close, after closes, and with money moved between closes."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, func, select

from openice.close_of_day import run_until
from openice.servicing import queries
from openice.servicing.service import Servicing
from openice.storage import servicing_tables
from openice.tenancy import PLATFORM, Principal, Role, Scope
from tests.api.conftest import build_world

OPERATOR = Principal("test", Role.OPERATOR, PLATFORM)


def whole_journal(engine: Engine) -> dict[tuple[str, str], int]:
    lines, loans = servicing_tables.journal_lines, servicing_tables.loans
    with engine.connect() as conn:
        rows = conn.execute(
            select(loans.c.currency, lines.c.account, func.sum(lines.c.amount))
            .join(loans, loans.c.id == lines.c.loan_id)
            .group_by(loans.c.currency, lines.c.account)
        )
        return {(r[0], r[1]): int(r[2]) for r in rows if int(r[2]) != 0}


def read(engine: Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        return {(r.currency, r.account): r.balance for r in queries.trial_balance(Scope(conn, OPERATOR)) if r.balance}


def test_checkpoint_and_the_lines_since_equal_the_whole_journal(engine: Engine, servicing: Servicing) -> None:
    world = build_world(engine)
    assert read(engine) == whole_journal(engine)  # nothing folded yet: every line is "since"
    run_until(engine, date(2026, 2, 16))
    with engine.connect() as conn:
        through = conn.execute(select(servicing_tables.ledger_checkpoint.c.through_line)).scalar_one()
        total = conn.execute(select(func.max(servicing_tables.journal_lines.c.id))).scalar_one()
    assert through == total  # the last close folded every line
    assert read(engine) == whole_journal(engine)
    loan = world.ids[1]["loan"]
    paid = world.call(
        "borrower1", "POST", f"/v1/loans/{loan}/prepayments", key="p1", json={"amount": "700.00", "currency": "CNY"}
    )
    assert paid.status_code == 201, paid.text
    assert read(engine) == whole_journal(engine)  # a payment after the close is read from the lines since
    run_until(engine, date(2026, 3, 2))  # across a month end
    assert read(engine) == whole_journal(engine)
    assert sum(read(engine).values()) == 0
