"""The read side of servicing for the API: loans with their schedules and balances, and their transactions, each
through the caller's `Scope`."""

from __future__ import annotations

from typing import Any

from openice.servicing.loan import LoanAccount
from openice.servicing.repository import LoanRepository
from openice.tenancy import Page, PageRequest, Scope


def loan_row(scope: Scope, loan_id: int) -> Any:
    return scope.get("loans", loan_id, "loan_id")


def loan(scope: Scope, loan_id: int) -> tuple[Any, LoanAccount]:
    row = loan_row(scope, loan_id)
    return row, LoanRepository(scope.conn).load(row)


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
