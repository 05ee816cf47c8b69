"""The operator console (`/console/`): the book at a glance, loans with their schedules and transactions (reverse
and write off, each with a reason), end of day, the ledger, and the people who sign in."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response

from openice.access.users import LOCALES, Users
from openice.api.deps import TransactionRoute
from openice.close_of_day import close_business_day
from openice.errors import ValidationError
from openice.servicing import queries as servicing
from openice.servicing.buckets import BUCKETS
from openice.storage.days import from_day, to_day
from openice.tenancy import Role, Window
from openice.web import book
from openice.web.visit import Front, Visit, form_key, visit

router = APIRouter(prefix="/console", include_in_schema=False, route_class=TransactionRoute)
Operator = Annotated[Visit, Depends(visit(Front.CONSOLE))]
PAGE = 50


@router.get("/")
def dashboard(tx: Operator) -> Response:
    live = book.by_bucket(tx)
    balance: dict[str, int] = {}
    for r in servicing.trial_balance(tx.scope):
        balance[r.currency] = balance.get(r.currency, 0) + r.balance
    return tx.render(
        "console/dashboard.html",
        book=live,
        business_date=tx.servicing.business_date(),
        trial_balance=balance,
    )


@router.get("/book.csv")
def book_csv(tx: Operator) -> Response:
    """The dashboard's bucket table as CSV (major units)."""
    return book.csv_response(tx)


@router.get("/loans")
def loans(
    tx: Operator,
    status: Annotated[str | None, Query(pattern="^(active|closed|written_off)?$")] = None,
    bucket: Annotated[str | None, Query(max_length=4)] = None,
    borrower: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    found = servicing.loans(tx.scope, Window(PAGE, after), status or None, bucket or None, borrower or None, None)
    return tx.render(
        "console/loans.html",
        loans=found.items,
        next_after=found.last_key,
        status_filter=status or "",
        bucket=bucket or "",
        borrower=borrower or "",
        buckets=BUCKETS,
    )


def _loan_page(tx: Visit, loan_id: int, status: int = 200, **context: Any) -> Response:
    row, account = servicing.loan(tx.scope, loan_id)
    moves = servicing.transactions(tx.scope, loan_id, Window(200, None)).items
    today = tx.servicing.business_date()
    payoff = account.payoff_amount(today) if account.status.value == "active" else None
    return tx.render(
        "console/loan.html",
        status=status,
        loan=row,
        account=account,
        transactions=[t for t, _ in moves],
        payoff=payoff,
        today=today,
        key=form_key(),
        **context,
    )


@router.get("/loans/{loan_id}")
def loan(loan_id: int, tx: Operator, done: str | None = None) -> Response:
    return _loan_page(tx, loan_id, done=done)


def _reason(text: str) -> str:
    if not text.strip():
        raise ValidationError("say why", field="reason")
    return text.strip()


@router.post("/transactions/{transaction_id}/reverse")
def reverse(
    transaction_id: int,
    tx: Operator,
    reason: Annotated[str, Form(max_length=500)] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Undo a payment: the loan's later history is replayed without it; the reason goes to the audit trail."""
    txn = servicing.transaction_row(tx.scope, transaction_id)
    with tx.attempt() as failed:
        why = _reason(reason)
        tx.book(
            "transaction.reversed",
            f"loan/{txn.loan_id}",
            lambda: tx.servicing.reverse(transaction_id, tx.principal.scoped(key or form_key())),
            lambda done: {"transaction_id": done["transaction_id"], "reversed": transaction_id, "reason": why},
        )
    if failed:
        return _loan_page(tx, txn.loan_id, 422, error=failed[0], error_form=f"reverse-{transaction_id}")
    return tx.redirect(f"/console/loans/{txn.loan_id}?done=reversed")


@router.post("/loans/{loan_id}/write-off")
def write_off(
    loan_id: int,
    tx: Operator,
    reason: Annotated[str, Form(max_length=500)] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    servicing.loan_row(tx.scope, loan_id)
    with tx.attempt() as failed:
        why = _reason(reason)
        tx.book(
            "loan.write_off",
            f"loan/{loan_id}",
            lambda: tx.servicing.write_off(loan_id, tx.principal.scoped(key or form_key()), why),
            lambda done: {"transaction_id": done["transaction_id"], "reason": why},
        )
    if failed:
        return _loan_page(tx, loan_id, 422, error=failed[0], error_form="write-off")
    return tx.redirect(f"/console/loans/{loan_id}?done=written_off")


def _runs(tx: Visit) -> list[dict[str, Any]]:
    days: dict[int, dict[str, Any]] = {}
    for r in servicing.end_of_day_runs(tx.scope):
        run = days.setdefault(r.business_day, {"day": from_day(r.business_day), "steps": []})
        run["steps"].append({"step": r.step, "rows": r.rows, "completed_at": r.completed_at})
    return list(days.values())


@router.get("/eod")
def end_of_day(tx: Operator) -> Response:
    return tx.render("console/eod.html", business_date=tx.servicing.business_date(), runs=_runs(tx))


@router.post("/eod")
def close_day(tx: Operator) -> Response:
    """Close the business day now. Its steps run in transactions of their own, so the page's is ended first."""
    closing = tx.servicing.business_date()
    tx.audit("eod.started", "business_calendar", {"business_date": closing.isoformat()})
    tx.release()
    close_business_day(tx.svc.engine)
    return tx.redirect("/console/eod")


@router.get("/ledger")
def ledger(
    tx: Operator,
    loan_id: Annotated[int | None, Query(ge=1)] = None,
    account: Annotated[str | None, Query(max_length=40)] = None,
    day: Annotated[date | None, Query()] = None,
) -> Response:
    balances = servicing.trial_balance(tx.scope)
    per_currency: dict[str, int] = {}
    for r in balances:
        per_currency[r.currency] = per_currency.get(r.currency, 0) + r.balance
    lines = servicing.journal(tx.scope, loan_id, account or None, None if day is None else to_day(day))
    return tx.render(
        "console/ledger.html",
        balances=balances,
        totals=per_currency,
        lines=lines,
        accounts=sorted({r.account for r in balances}),
        loan_id=loan_id,
        account=account or "",
        day=day,
    )


@router.get("/users")
def users(tx: Operator) -> Response:
    return tx.render(
        "console/users.html", users=Users(tx.joined).list(), roles=[r.value for r in Role], locales=LOCALES
    )


@router.post("/users")
def create_user(
    tx: Operator,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
    tenant: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=120)] = "",
    locale: Annotated[str, Form(max_length=8)] = "en",
) -> Response:
    with tx.attempt() as failed:
        made = Users(tx.joined).create(
            username, password, role, tenant or None, display_name, locale, created_by=tx.principal.key_id
        )
        tx.audit("user.created", f"user/{made['id']}", {"username": made["username"], "role": role, "tenant": tenant})
    if failed:
        form = {"username": username, "role": role, "tenant": tenant, "display_name": display_name, "locale": locale}
        return tx.render(
            "console/users.html",
            status=422,
            users=Users(tx.joined).list(),
            roles=[r.value for r in Role],
            locales=LOCALES,
            error=failed[0],
            form=form,
        )
    return tx.redirect("/console/users")
