"""Loans with schedules and balances, and the money that moves on them (every move needs an Idempotency-Key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from openice.api.deps import IdempotencyKey, TransactionRoute, Tx, require
from openice.api.paging import NumericId, PageParams, paged
from openice.api.views import (
    LoanDetail,
    LoanView,
    Page,
    PaymentIn,
    PaymentResult,
    PrepaymentIn,
    RecoveryIn,
    TransactionView,
    WriteOffIn,
    loan_detail,
    loan_view,
    money,
    reply,
    transaction_view,
)
from openice.errors import ValidationError
from openice.money import to_minor
from openice.servicing import queries as servicing
from openice.tenancy import Role

router = APIRouter(prefix="/v1", tags=["loans"], route_class=TransactionRoute)
Anyone = Annotated[Tx, Depends(require(*(r for r in Role if r is not Role.INVESTOR)))]  # investors: their deals
Payer = Annotated[Tx, Depends(require(Role.OPERATOR, Role.BORROWER, Role.COLLECTIONS))]
Borrower = Annotated[Tx, Depends(require(Role.OPERATOR, Role.BORROWER))]
Collector = Annotated[Tx, Depends(require(Role.OPERATOR, Role.COLLECTIONS))]
Operator = Annotated[Tx, Depends(require(Role.OPERATOR))]


@router.get("/loans", response_model=Page[LoanView])
def list_loans(
    tx: Anyone,
    page: PageParams,
    status: Annotated[str | None, Query(pattern="^(active|closed|written_off)$")] = None,
    bucket: Annotated[str | None, Query(pattern=r"^(C|M1|M2|M3|M4\+|WO)$")] = None,
    borrower_id: Annotated[str | None, Query(max_length=64)] = None,
    funder: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    return reply(paged(servicing.loans(tx.scope, page, status, bucket, borrower_id, funder), loan_view))


@router.get("/loans/{loan_id}", response_model=LoanDetail)
def get_loan(loan_id: NumericId, tx: Anyone) -> Any:
    """The loan with its schedule and ledger balances."""
    return reply(loan_detail(*servicing.loan(tx.scope, loan_id)))


@router.get("/loans/{loan_id}/transactions", response_model=Page[TransactionView])
def list_transactions(loan_id: NumericId, tx: Anyone, page: PageParams) -> Any:
    return reply(paged(servicing.transactions(tx.scope, loan_id, page), lambda item: transaction_view(*item)))


def _result(result: dict[str, Any], currency: str) -> PaymentResult:
    return PaymentResult(
        transaction_id=result["transaction_id"],
        loan_id=result["loan_id"],
        status=result["status"],
        outstanding_principal=money(result["outstanding_principal"], currency),
        value_date=result.get("value_date"),
        allocated={k: money(v, currency) for k, v in result.get("allocated", {}).items()},
    )


def _move(tx: Tx, action: str, loan: Any, call: Callable[[], dict[str, Any]], **detail: Any) -> Response:
    """The money call, audited as `action` when it books (a replay of its key writes no second row), with the
    transaction and whatever `detail` is given (a backdated value date, a reason)."""
    extra = {k: v for k, v in detail.items() if v is not None}
    booked = tx.book(action, f"loan/{loan.id}", call, lambda done: {"transaction_id": done["transaction_id"], **extra})
    return reply(_result(booked, loan.currency), 201)


@router.post("/loans/{loan_id}/repayments", status_code=201, response_model=PaymentResult)
def repay(loan_id: NumericId, body: PaymentIn, key: IdempotencyKey, tx: Payer) -> Any:
    """A payment of what is due, today. Backdating (an earlier value date) is an operator's, with a reason."""
    loan = servicing.loan_row(tx.scope, loan_id)
    amount = to_minor(body.amount, loan.currency)
    return _move(
        tx,
        "loan.repayment",
        loan,
        lambda: tx.servicing.repay(
            loan_id,
            amount,
            tx.principal.scoped(key),
            body.value_date,
            body.currency,
            body.reason,
            may_backdate=tx.principal.role is Role.OPERATOR,
        ),
        value_date=body.value_date and body.value_date.isoformat(),
        reason=body.reason,
    )


@router.post("/loans/{loan_id}/prepayments", status_code=201, response_model=PaymentResult)
def prepay(loan_id: NumericId, body: PrepaymentIn, key: IdempotencyKey, tx: Borrower) -> Any:
    loan = servicing.loan_row(tx.scope, loan_id)
    amount = to_minor(body.amount, loan.currency)
    return _move(
        tx,
        "loan.prepayment",
        loan,
        lambda: tx.servicing.prepay(loan_id, amount, tx.principal.scoped(key), body.mode, body.currency),
    )


@router.post("/loans/{loan_id}/recoveries", status_code=201, response_model=PaymentResult)
def recover(loan_id: NumericId, body: RecoveryIn, key: IdempotencyKey, tx: Collector) -> Any:
    """Money collected on a written-off loan."""
    loan = servicing.loan_row(tx.scope, loan_id)
    if body.currency != loan.currency:
        raise ValidationError(f"loan {loan_id} is in {loan.currency}, not {body.currency}", field="currency")
    amount = to_minor(body.amount, loan.currency)
    return _move(tx, "loan.recovery", loan, lambda: tx.servicing.recover(loan_id, amount, tx.principal.scoped(key)))


@router.post("/loans/{loan_id}/write-off", status_code=201, response_model=PaymentResult)
def write_off(loan_id: NumericId, key: IdempotencyKey, tx: Operator, body: WriteOffIn | None = None) -> Any:
    """Write a loan off now; a guaranteed loan is paid out to its institution first. Not past due: give a reason."""
    loan = servicing.loan_row(tx.scope, loan_id)
    reason = body.reason if body else None
    return _move(
        tx,
        "loan.write_off",
        loan,
        lambda: tx.servicing.write_off(loan_id, tx.principal.scoped(key), reason),
        reason=reason,
    )


@router.post("/transactions/{transaction_id}/reversal", status_code=201, response_model=PaymentResult)
def reverse(transaction_id: NumericId, key: IdempotencyKey, tx: Operator) -> Any:
    """Undo a payment; the loan's later history is replayed without it."""
    txn = servicing.transaction_row(tx.scope, transaction_id)
    loan = servicing.loan_row(tx.scope, txn.loan_id)
    return _move(
        tx, "transaction.reversed", loan, lambda: tx.servicing.reverse(transaction_id, tx.principal.scoped(key))
    )
