"""Settlement statements between the platform and an institution, on SQLite and PostgreSQL: a hand-worked book, the
statement against the ledger to the cent on a mixed book, paying once, and what is still owed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, func, select

from openice.close_of_day import run_until
from openice.errors import Conflict, NotFound, ValidationError
from openice.servicing import ledger, queries, settlement
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage import servicing_tables
from openice.storage.days import to_day
from openice.storage.uow import EngineUnits
from openice.tenancy import Principal, Role, Scope
from tests.conftest import START
from tests.settlement_helpers import small_book as book

OPERATOR = Principal("test", Role.OPERATOR, "platform")
T = TypeVar("T")


def read(engine: Engine, query: Callable[..., T], *args: Any, principal: Principal = OPERATOR) -> T:
    """A scoped read in its own connection, closed after."""
    with engine.connect() as conn:
        return query(Scope(conn, principal), *args)


@pytest.fixture
def small_book(engine: Engine) -> tuple[Servicing, int, int]:
    """`settlement_helpers.small_book`: loan A repaid on its first due date, B paid out on 15 February."""
    return book(engine)


def lines(rows: list[queries.StatementRow]) -> dict[str, dict[str, int]]:
    return {r.statement.id: {k: v for k, v in r.statement.lines.items() if v} for r in rows}


def test_a_hand_worked_statement(engine: Engine, small_book: tuple[Servicing, int, int]) -> None:
    days = read(engine, queries.settlement_statements, "BANK-A", settlement.Period.DAY, START, date(2026, 2, 28))
    assert lines(days) == {
        "CNY-2026-01-15": {"disbursements_funded": 2_000_000, "referral_fees": 3_000},
        "CNY-2026-02-15": {
            "principal_collected": 500_000,
            "interest_collected": 7_500,
            "interest_spread_kept": 2_500,
            "fees_kept": 2_000,
            "guarantee_payouts": 1_010_000,  # B's whole principal and the month's interest due
        },
        "CNY-2026-02-16": {"collected_after_payout": 12_000},
    }
    assert [r.statement.net for r in days] == [-3_000, 507_500, 0]
    months = read(
        engine, queries.settlement_statements, "BANK-A", settlement.Period.MONTH, date(2026, 1, 1), date(2026, 2, 1)
    )
    assert [(r.statement.id, r.statement.net, r.status) for r in months] == [
        ("CNY-2026-01", -3_000, "open"),
        ("CNY-2026-02", 507_500, "open"),
    ]
    (owed,) = read(engine, queries.settlement_outstanding, "BANK-A")
    assert owed.net == 507_500 - 3_000


def test_paying_moves_the_net_out_of_clearing_once(engine: Engine, small_book: tuple[Servicing, int, int]) -> None:
    servicing, a, b = small_book
    paid = servicing.pay_settlement("BANK-A", "CNY-2026-02", "settle-feb")
    assert (paid["net"], paid["loans"], paid["paid_on"]) == (507_500, 2, "2026-03-01")
    assert servicing.pay_settlement("BANK-A", "CNY-2026-02", "settle-feb") == paid  # the same key replays
    with pytest.raises(Conflict) as again:
        servicing.pay_settlement("BANK-A", "CNY-2026-02", "settle-feb-again")
    assert again.value.field == "statement_id" and "already settled" in str(again.value)
    with pytest.raises(Conflict):  # a day inside the month paid
        servicing.pay_settlement("BANK-A", "CNY-2026-02-15", "settle-day")
    servicing.pay_settlement("BANK-A", "CNY-2026-01", "settle-jan")
    with engine.connect() as conn:
        balances = {
            (loan, account): int(total)
            for loan, account, total in conn.execute(
                select(
                    servicing_tables.journal_lines.c.loan_id,
                    servicing_tables.journal_lines.c.account,
                    func.sum(servicing_tables.journal_lines.c.amount),
                ).group_by(servicing_tables.journal_lines.c.loan_id, servicing_tables.journal_lines.c.account)
            )
        }
        assert conn.execute(select(func.sum(servicing_tables.journal_lines.c.amount))).scalar_one() == 0
    # A's collections left clearing: 507.5 to the funder, 45.00 of fees, spread and referral to the platform.
    assert balances.get((a, ledger.COLLECTIONS_CLEARING), 0) == 0
    assert balances.get((a, ledger.REFERRAL_FEE_RECEIVABLE), 0) == 0
    assert balances[(a, ledger.FUNDING_CASH)] == -1_000_000 + 507_500
    # What the platform collected on B after paying it out is its own: still in clearing, not the institution's.
    assert balances[(b, ledger.COLLECTIONS_CLEARING)] == 12_000
    (owed,) = read(engine, queries.settlement_outstanding, "BANK-A")
    assert owed.net == 0 and not any(owed.lines.values())
    statuses = read(
        engine, queries.settlement_statements, "BANK-A", settlement.Period.DAY, date(2026, 2, 1), date(2026, 2, 28)
    )
    assert {r.status for r in statuses} == {"paid"}


def test_what_cannot_be_paid(engine: Engine, small_book: tuple[Servicing, int, int]) -> None:
    servicing = small_book[0]
    with pytest.raises(Conflict, match="not closed yet"):
        servicing.pay_settlement("BANK-A", "CNY-2026-03", "open-month")
    with pytest.raises(Conflict, match="nothing to settle"):
        servicing.pay_settlement("BANK-A", "CNY-2026-01-20", "quiet-day")
    with pytest.raises(ValidationError) as bad:
        servicing.pay_settlement("BANK-A", "2026-02", "no-currency")
    assert bad.value.field == "statement_id"


def test_an_institution_sees_only_its_own(engine: Engine, small_book: tuple[Servicing, int, int]) -> None:
    other = Principal("k", Role.INSTITUTION, "BANK-B")
    with pytest.raises(NotFound):
        read(engine, queries.settlement_statements, "BANK-A", settlement.Period.MONTH, START, START, principal=other)
    with pytest.raises(NotFound):
        read(engine, queries.settlement_outstanding, "BANK-A", principal=other)
    own = Principal("k", Role.INSTITUTION, "BANK-A")
    assert (
        len(read(engine, queries.settlement_statements, "BANK-A", settlement.Period.MONTH, START, START, principal=own))
        == 1
    )


def test_statements_add_up_to_the_ledger_on_a_mixed_book(engine: Engine) -> None:
    """Every model, prepayments, a reversal, guarantee payouts and an institution's write-off with a recovery:
    each day's statement equals the journal's movements on the accounts it reads, to the cent."""
    servicing = Servicing(EngineUnits(engine))
    for product in demo_products():
        servicing.create_product(product)
    models = ("capital-light", "capital-heavy", "technology", "on-balance-sheet")
    loans = []
    for i in range(12):
        model = models[i % 4]
        loans.append(
            servicing.originate(
                product_code=("CASH-EI", "CASH-EP", "BNPL-BULLET")[i % 3],
                principal=300_000 + 10_007 * i,
                tenor=(12, 6, 3)[i % 3],
                funder=("INST-A", "INST-B")[i % 2],
                business_model=model,
                idempotency_key=f"o{i}",
                funder_rate=Decimal("0.08") if model != "on-balance-sheet" else None,
                guarantee_payout_dpd=30 if model == "capital-heavy" else None,
            )["loan_id"]
        )
    for month in range(1, 6):
        run_until(engine, START + timedelta(days=31 * month))
        for n, loan_id in enumerate(loans):
            account = servicing.loan(loan_id)
            due = account.total_due()
            if account.status.value != "active" or n % 5 == month % 5:
                continue  # some borrowers miss payments, and go past the payout and write-off thresholds
            if n % 6 == 0 and account.terms.prepayment_allowed:
                servicing.prepay(loan_id, max(due, 1) + 50_000, f"p{n}-{month}")
            elif due:
                done = servicing.repay(loan_id, due, f"r{n}-{month}")
                if n == 4 and month == 2:
                    servicing.reverse(done["transaction_id"], "rev")
    bad = next(
        loan_id
        for loan_id in loans
        if servicing.loan(loan_id).days_past_due > 0
        and servicing.loan(loan_id).funder in ("INST-A", "INST-B")
        and servicing.loan(loan_id).terms.business_model.value != "capital-heavy"
    )
    servicing.write_off(bad, "wo", reason="fraud")
    servicing.recover(bad, 1_000, "rec")
    first, last = START, START + timedelta(days=31 * 5)
    seen = set()
    for institution in ("INST-A", "INST-B"):
        rows = read(engine, queries.settlement_statements, institution, settlement.Period.DAY, first, last)
        for row in rows:
            s = row.statement
            assert settlement.reconcile(s.lines) == ledger_movements(engine, institution, s.first), s.id
            seen |= {name for name, amount in s.lines.items() if amount}
    assert seen == set(settlement.LINE_NAMES), seen
    paid = servicing.pay_settlement("INST-A", rows_month(engine, "INST-A"), "pay")
    assert paid["loans"] > 0
    with engine.connect() as conn:
        assert conn.execute(select(func.sum(servicing_tables.journal_lines.c.amount))).scalar_one() == 0


def rows_month(engine: Engine, institution: str) -> str:
    return read(
        engine, queries.settlement_statements, institution, settlement.Period.MONTH, START, START + timedelta(days=31)
    )[1].statement.id


def ledger_movements(engine: Engine, institution: str, day: date) -> dict[str, int]:
    """The journal's own sums, by account, on the institution's loans on `day` (settlements left out)."""
    lines, entries, loans = servicing_tables.journal_lines, servicing_tables.journal_entries, servicing_tables.loans
    accounts = (ledger.COLLECTIONS_CLEARING, ledger.FUNDING_CASH, ledger.REFERRAL_FEE_RECEIVABLE)
    with engine.connect() as conn:
        found = dict(
            conn.execute(
                select(lines.c.account, func.sum(lines.c.amount))
                .join(entries, entries.c.id == lines.c.entry_id)
                .join(loans, loans.c.id == lines.c.loan_id)
                .where(loans.c.original_funder == institution, entries.c.business_day == to_day(day))
                .where(lines.c.account.in_(accounts), entries.c.kind != ledger.INSTITUTION_SETTLEMENT)
                .group_by(lines.c.account)
            ).all()
        )
    return {account: int(found.get(account, 0)) for account in accounts}


def test_payments_at_once_book_once(engine: Engine, small_book: tuple[Servicing, int, int]) -> None:
    """Different keys, the same month, at the same moment (a month and its day, too): one books, the others are
    refused, and clearing is emptied once."""
    servicing = small_book[0]
    results: list[object] = []

    def pay(statement: str, key: str) -> None:
        try:
            results.append(servicing.pay_settlement("BANK-A", statement, key))
        except Conflict as refused:
            results.append(refused)

    statements = ["CNY-2026-02"] * 4 + ["CNY-2026-02-15"] * 2
    threads = [threading.Thread(target=pay, args=(s, f"k{n}")) for n, s in enumerate(statements)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(isinstance(r, dict) for r in results) == 1, results
    assert all(isinstance(r, dict) or "settled" in str(r) for r in results)
    with engine.connect() as conn:
        settled = conn.execute(
            select(func.count())
            .select_from(servicing_tables.journal_entries)
            .where(servicing_tables.journal_entries.c.kind == ledger.INSTITUTION_SETTLEMENT)
        ).scalar_one()
    assert settled == 1  # loan A's share; loan B has only memo lines in February
