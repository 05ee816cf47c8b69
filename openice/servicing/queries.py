"""The read side of servicing for the API and the pages: loans with their schedules and balances, their
transactions, the book by bucket, and (for operators) the ledger and end-of-day runs, each through the caller's
`Scope`."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, cast, func, select, union_all

from openice.errors import Forbidden, NotFound, ValidationError
from openice.servicing import settlement
from openice.servicing.loan import PLATFORM, LoanAccount, LoanStatus
from openice.servicing.repository import LoanRepository, SettlementRepository
from openice.storage import servicing_tables
from openice.storage.days import from_day, to_day
from openice.tenancy import Page, PageRequest, Role, Scope

MAX_STATEMENT_DAYS = 366  # a year of daily statements, or three years of monthly ones, per request


def loan_row(scope: Scope, loan_id: int) -> Any:
    return scope.get("loans", loan_id, "loan_id")


def loan(scope: Scope, loan_id: int) -> tuple[Any, LoanAccount]:
    row = loan_row(scope, loan_id)
    return row, account(scope, row)


def account(scope: Scope, row: Any) -> LoanAccount:
    """The loan behind a row the caller already read through its scope (a page of `loans`)."""
    return LoanRepository(scope.conn).load(row)


def loans(
    scope: Scope, page: PageRequest, status: str | None, bucket: str | None, borrower_id: str | None, funder: str | None
) -> Page:
    return scope.page("loans", page, status=status, bucket=bucket, borrower_id=borrower_id, original_funder=funder)


def transaction_row(scope: Scope, transaction_id: int) -> Any:
    return scope.get("transactions", transaction_id, "transaction_id")


def transactions(scope: Scope, loan_id: int, page: PageRequest) -> Page:
    """A loan's transactions with its currency (404 for a loan the caller may not see)."""
    currency = loan_row(scope, loan_id).currency
    found = scope.page("transactions", page, loan_id=loan_id)
    return Page([(r, currency) for r in found.items], found.last_key)


def _platform_only(scope: Scope, what: str) -> None:
    """The whole book's ledger and end-of-day runs are the platform's view, not one tenant's."""
    if scope.principal.role is not Role.OPERATOR:
        raise Forbidden(f"{what} is the operator's view", field="role")


def book_by_bucket(scope: Scope) -> list[Any]:
    """Live loans by currency and delinquency bucket: how many, and the principal outstanding."""
    loans = servicing_tables.loans
    query = (
        select(
            loans.c.currency,
            loans.c.bucket,
            func.count().label("loans"),
            cast(func.sum(loans.c.bal_loan_principal), BigInteger).label("principal"),
        )
        .where(scope.where("loans"), loans.c.status == LoanStatus.ACTIVE.value)
        .group_by(loans.c.currency, loans.c.bucket)
        .order_by(loans.c.currency, loans.c.bucket)
    )
    return list(scope.conn.execute(query))


def trial_balance(scope: Scope) -> list[Any]:
    """Every ledger account's balance by currency (debits positive); each currency's accounts sum to zero. The
    balances end of day folded in, plus the journal lines written since (a handful of a day's lines, not the whole
    journal)."""
    _platform_only(scope, "the ledger")
    lines, loans = servicing_tables.journal_lines, servicing_tables.loans
    held, checkpoint = servicing_tables.ledger_balances, servicing_tables.ledger_checkpoint
    through = select(checkpoint.c.through_line).where(checkpoint.c.id == 1).scalar_subquery()
    since = (
        select(loans.c.currency, lines.c.account, lines.c.amount.label("balance"))
        .join(loans, loans.c.id == lines.c.loan_id)
        .where(lines.c.id > through)
    )
    both = union_all(select(held.c.currency, held.c.account, held.c.balance), since).subquery()
    query = (
        select(both.c.currency, both.c.account, cast(func.sum(both.c.balance), BigInteger).label("balance"))
        .group_by(both.c.currency, both.c.account)
        .order_by(both.c.currency, both.c.account)
    )
    return list(scope.conn.execute(query))


def journal(scope: Scope, loan_id: int | None, account: str | None, day: int | None, limit: int = 200) -> list[Any]:
    """Journal lines, newest first, by loan, account or business day."""
    _platform_only(scope, "the journal")
    lines, entries, loans = servicing_tables.journal_lines, servicing_tables.journal_entries, servicing_tables.loans
    query = (
        select(
            lines.c.id,
            lines.c.entry_id,
            lines.c.loan_id,
            lines.c.account,
            lines.c.amount,
            loans.c.currency,
            entries.c.business_day,
            entries.c.kind,
            entries.c.transaction_id,
        )
        .join(entries, entries.c.id == lines.c.entry_id)
        .join(loans, loans.c.id == lines.c.loan_id)
    )
    if loan_id is not None:
        query = query.where(lines.c.loan_id == loan_id)
    if account:
        query = query.where(lines.c.account == account)
    if day is not None:
        query = query.where(entries.c.business_day == day)
    return list(scope.conn.execute(query.order_by(lines.c.id.desc()).limit(limit)))


def end_of_day_runs(scope: Scope, days: int = 10) -> list[Any]:
    """The steps of the latest closed business days, each with its row count and completion time."""
    _platform_only(scope, "end of day")
    progress = servicing_tables.eod_progress
    latest = select(progress.c.business_day).distinct().order_by(progress.c.business_day.desc()).limit(days)
    query = (
        select(progress)
        .where(progress.c.business_day.in_(latest.scalar_subquery()))
        .order_by(progress.c.business_day.desc(), progress.c.completed_at)
    )
    return list(scope.conn.execute(query))


def _settling_with(scope: Scope, institution: str) -> None:
    """Settlement is between the platform and one institution: operators see every institution's, an institution
    its own (another's is missing to it), nobody else any."""
    p = scope.principal
    if p.role is Role.OPERATOR or (p.role is Role.INSTITUTION and p.tenant == institution):
        return
    if p.role is Role.INSTITUTION:
        raise NotFound(f"no institution {institution!r}", field="code")
    raise Forbidden("settlement is between the platform and an institution", field="role")


@dataclass(frozen=True)
class StatementRow:
    """A statement with whether it was paid: `paid` when one settlement covered it, `part-paid` when settlements
    covered some of its days (a day paid inside a month), `open` otherwise."""

    statement: settlement.Statement
    status: str
    settlement_id: int | None
    paid_on: date | None


def _status(statement: settlement.Statement, paid: list[Any]) -> StatementRow:
    first, last = to_day(statement.first), to_day(statement.last)
    over = [r for r in paid if r.currency == statement.currency and r.first_day <= last and r.last_day >= first]
    whole = next((r for r in over if r.first_day <= first and r.last_day >= last), None)
    if whole is not None:
        return StatementRow(statement, "paid", whole.id, from_day(whole.paid_day))
    return StatementRow(statement, "part-paid" if over else "open", None, None)


def settlement_statements(
    scope: Scope, institution: str, period: settlement.Period, first: date, last: date
) -> list[StatementRow]:
    """The institution's statements for each day or month from `first` to `last` that has anything on it, per
    currency, oldest first: one read of the journal per currency, whatever the number of statements."""
    _settling_with(scope, institution)
    first, last = settlement.period_bounds(period, first)[0], settlement.period_bounds(period, last)[1]
    if last < first:
        raise ValidationError(f"{last} is before {first}", field="to")
    if period is settlement.Period.DAY and (last - first).days >= MAX_STATEMENT_DAYS:
        raise ValidationError(f"ask for at most {MAX_STATEMENT_DAYS} daily statements at a time", field="to")
    if (last - first).days >= 3 * MAX_STATEMENT_DAYS:
        raise ValidationError("ask for at most three years of monthly statements at a time", field="to")
    repository = SettlementRepository(scope.conn)
    paid = repository.paid(institution)
    rows = []
    for currency in repository.currencies(institution):
        loans, moved = repository.movements(institution, currency, first, last)
        periods: dict[date, list[settlement.Movement]] = defaultdict(list)
        for day, movement in moved:
            periods[settlement.period_bounds(period, day)[0]].append(movement)
        for start, movements in sorted(periods.items()):
            end = settlement.period_bounds(period, start)[1]
            statement = settlement.statement(institution, currency, period, start, end, loans, movements)
            if not statement.empty:
                rows.append(_status(statement, paid))
    return rows


@dataclass(frozen=True)
class Outstanding:
    """What is still owed between the platform and an institution in one currency: every line of its book so far
    less the lines of the statements it settled."""

    institution: str
    currency: str
    lines: dict[str, int]

    @property
    def net(self) -> int:
        return settlement.net(self.lines)


def settlement_outstanding(scope: Scope, institution: str) -> list[Outstanding]:
    _settling_with(scope, institution)
    repository = SettlementRepository(scope.conn)
    paid = repository.paid(institution)
    result = []
    for currency in repository.currencies(institution):
        loans, moved = repository.movements(institution, currency, None, None)
        book = settlement.statement(
            institution, currency, settlement.Period.DAY, date.min, date.max, loans, [m for _, m in moved]
        )
        settled = [json.loads(r.lines) for r in paid if r.currency == currency]
        result.append(Outstanding(institution, currency, settlement.subtract(book.lines, settled)))
    return result


def settlement_outstanding_everywhere(scope: Scope) -> list[Outstanding]:
    """Every institution's outstanding, for the operator's console."""
    _platform_only(scope, "every institution's settlement")
    loans = servicing_tables.loans.c
    funders = scope.conn.execute(
        select(loans.original_funder)
        .where(loans.original_funder != PLATFORM)
        .distinct()
        .order_by(loans.original_funder)
    ).scalars()
    return [row for institution in list(funders) for row in settlement_outstanding(scope, institution)]
