"""The borrower app (`/app/`): the borrower's own loans and credit lines, a loan's schedule with what is due and
the payoff quote today, repayment and prepayment, and a drawdown previewed in full (schedule, total cost, APR)
before it is confirmed. Every read goes through the signed-in borrower's `Scope`, every booking through the same
service calls and audit actions as the API's."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path
from fastapi.responses import Response

from openice.decisioning import queries as lending
from openice.errors import ValidationError
from openice.matching import queries as matching
from openice.servicing import queries as servicing
from openice.servicing.loan import LoanStatus
from openice.servicing.products import PPM, PrepaymentMode
from openice.servicing.schedule import build_schedule
from openice.tenancy import Window
from openice.web.onboarding import RegisteredRoute
from openice.web.visit import Front, Visit, form_key, visit

router = APIRouter(prefix="/app", include_in_schema=False, route_class=RegisteredRoute)
Borrower = Annotated[Visit, Depends(visit(Front.APP))]
PAGE = 50
PAYMENTS = {"repay": "loan.repayment", "prepay": "loan.prepayment"}  # the form, and the API's audit action


@router.get("/")
def home(tx: Borrower) -> Response:
    """The borrower's loans, newest first as the API pages them, and the credit lines to draw on."""
    loans = servicing.loans(tx.scope, Window(PAGE, None), None, None, None, None).items
    lines = lending.lines(tx.scope, Window(PAGE, None), None, None).items
    return tx.render("app/home.html", loans=loans, lines=lines, ppm=PPM)


def _loan_page(tx: Visit, loan_id: int, status: int = 200, **context: Any) -> Response:
    row, account = servicing.loan(tx.scope, loan_id)
    today = tx.servicing.business_date()
    active = account.status is LoanStatus.ACTIVE
    moves = servicing.transactions(tx.scope, loan_id, Window(200, None)).items
    return tx.render(
        "app/loan.html",
        status=status,
        loan=row,
        account=account,
        transactions=[t for t, _ in moves],
        due=account.total_due() if active else None,
        payoff=account.payoff_amount(today) if active else None,
        prepayment_allowed=account.terms.prepayment_allowed,
        today=today,
        key=form_key(),
        **context,
    )


@router.get("/loans/{loan_id}")
def loan(loan_id: int, tx: Borrower, done: str | None = None) -> Response:
    return _loan_page(tx, loan_id, done=done)


@router.post("/loans/{loan_id}/{kind}")
def pay(
    loan_id: int,
    kind: Annotated[str, Path(pattern="^(repay|prepay)$")],
    tx: Borrower,
    amount: Annotated[str, Form(max_length=32)] = "",
    mode: Annotated[str, Form(max_length=16)] = PrepaymentMode.REAMORTISE.value,
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Pay what is due (repay) or more, up to the payoff (prepay); a prepayment either lowers each installment left
    or keeps it and ends the loan sooner, as the borrower chooses. The form's key makes a second post a replay."""
    row, account = servicing.loan(tx.scope, loan_id)
    scoped = tx.principal.scoped(key or form_key())
    with tx.attempt() as failed:
        if mode not in {m.value for m in PrepaymentMode}:
            raise ValidationError(tx.words("app2.error.mode"), field="mode")
        if kind == "repay":
            minor = tx.typed_amount(amount, row.currency, most=account.total_due(), over="app.error.over_due")
        else:
            today = tx.servicing.business_date()
            minor = tx.typed_amount(
                amount, row.currency, most=account.payoff_amount(today), over="app.error.over_payoff"
            )

        def call() -> dict[str, Any]:
            if kind == "repay":
                return tx.servicing.repay(loan_id, minor, scoped, None, row.currency, None)
            return tx.servicing.prepay(loan_id, minor, scoped, PrepaymentMode(mode), row.currency)

        tx.collect(PAYMENTS[kind], row, minor, scoped, call)
    if failed:
        return _loan_page(tx, loan_id, 422, error=failed[0], error_form=kind, typed={kind: amount, "mode": mode})
    return tx.redirect(f"/app/loans/{loan_id}?done={kind}")


def _draw_page(tx: Visit, line_id: str, status: int = 200, key: str = "", **context: Any) -> Response:
    line, product = lending.line(tx.scope, line_id)
    tenors = [t for t in product.tenors if t <= line.max_tenor]
    return tx.render(
        "app/draw.html",
        status=status,
        line=line,
        product=product,
        tenors=tenors,
        available=line.amount - line.drawn,
        ppm=PPM,
        key=key or form_key(),
        **context,
    )


@router.get("/lines/{line_id}/draw")
def draw_form(line_id: str, tx: Borrower) -> Response:
    return _draw_page(tx, line_id)


def _tenor(tx: Visit, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValidationError(tx.words("app.error.tenor"), field="tenor") from None


@router.post("/lines/{line_id}/draw")
def draw(
    line_id: str,
    tx: Borrower,
    amount: Annotated[str, Form(max_length=32)] = "",
    tenor: Annotated[str, Form(max_length=4)] = "",
    confirm: Annotated[str, Form(max_length=8)] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Without `confirm`: the loan's full schedule and total cost at the line's rate, from today, nothing booked.
    With it: the drawdown through the API's call, under the key the preview carried."""
    line, product = lending.line(tx.scope, line_id)
    typed = {"amount": amount, "tenor": tenor}
    with tx.attempt() as failed:
        minor = tx.typed_amount(amount, product.currency, most=line.amount - line.drawn, over="app.error.over_line")
        months = _tenor(tx, tenor)
        if months not in product.tenors or months > line.max_tenor:
            raise ValidationError(tx.words("app.error.tenor"), field="tenor")
        today = tx.servicing.business_date()
        schedule = build_schedule(product, minor, months, today, rate=Decimal(line.rate_ppm) / PPM)
        if confirm:

            def audit(done: dict[str, Any]) -> None:
                tx.audit(
                    "drawdown",
                    str(done["drawdown_id"]),
                    {"line_id": line_id, "amount": minor, "status": done["status"], "loan_id": done["loan_id"]},
                )

            done = tx.matching.drawdown(line_id, minor, months, tx.principal.scoped(key or form_key()), routed=audit)
    if failed:
        return _draw_page(tx, line_id, 422, error=failed[0], typed=typed)
    if not confirm:
        return _draw_page(tx, line_id, key=key, schedule=schedule, typed=typed)
    return tx.redirect(f"/app/drawdowns/{done['drawdown_id']}")


@router.get("/drawdowns/{drawdown_id}")
def drawdown(drawdown_id: int, tx: Borrower) -> Response:
    """The drawdown's outcome: the loan and the institution that funded it, or why none did."""
    row, currency = matching.drawdown(tx.scope, drawdown_id)
    return tx.render(
        "app/drawdown.html",
        drawdown=row,
        currency=currency,
        funder=matching.funder_name(tx.scope, row),
    )
