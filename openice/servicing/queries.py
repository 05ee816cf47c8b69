"""The read side of servicing for the API and the pages: loans with their schedules and balances, their
transactions, the book by bucket, and (for operators) the ledger and end-of-day runs, each through the caller's
`Scope`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, cast, func, select, union_all

from openice.errors import Forbidden
from openice.servicing.loan import LoanAccount, LoanStatus
from openice.servicing.repository import LoanRepository
from openice.storage import servicing_tables
from openice.tenancy import Page, PageRequest, Role, Scope


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
