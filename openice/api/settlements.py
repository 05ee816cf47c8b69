"""Settlement statements between the platform and an institution: listed as JSON or CSV, and recorded as paid.
A statement's shape (decimal strings, the CSV table) is `servicing.settlement_documents`, shared with the command
line and the pages."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from openice.api.deps import IdempotencyKey, TransactionRoute, Tx, require
from openice.api.views import reply
from openice.matching import queries as matching
from openice.servicing import queries as servicing
from openice.servicing import settlement
from openice.servicing.settlement_documents import amount, outstanding_document, statement_document, statements_csv
from openice.tenancy import Role

router = APIRouter(prefix="/v1", tags=["settlement"], route_class=TransactionRoute)
Operator = Annotated[Tx, Depends(require(Role.OPERATOR))]
Funder = Annotated[Tx, Depends(require(Role.OPERATOR, Role.INSTITUTION))]


class StatementView(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(examples=["CNY-2026-01"], description="currency and day (CNY-2026-01-15) or month (CNY-2026-01)")
    institution: str
    currency: str
    period: Literal["day", "month"]
    from_: date = Field(alias="from")
    to: date
    lines: dict[str, str] = Field(description="each line's amount, a decimal string in the statement's currency")
    owed_to_institution: str
    owed_by_institution: str
    kept_by_platform: str
    net: str = Field(description="what the platform pays the institution; negative: what the institution pays")
    status: Literal["open", "paid", "part-paid"]
    settlement_id: int | None
    paid_on: date | None


class OutstandingView(BaseModel):
    institution: str
    currency: str
    lines: dict[str, str]
    owed_to_institution: str
    owed_by_institution: str
    kept_by_platform: str
    net: str


class Statements(BaseModel):
    institution: str
    statements: list[StatementView]
    outstanding: list[OutstandingView] = Field(description="what is still owed: every statement not yet paid")


class PaidSettlement(BaseModel):
    settlement_id: int
    institution: str
    statement: str
    currency: str
    net: str
    loans: int = Field(description="loans whose share the payment posted")
    paid_on: date


def _wants_csv(request: Request) -> bool:
    return "text/csv" in request.headers.get("accept", "")


def _statements(tx: Tx, code: str, period: str, first: date | None, last: date | None) -> list[Any]:
    matching.institution(tx.scope, code)  # 404 for another institution
    last = last or tx.servicing.business_date()
    return servicing.settlement_statements(
        tx.scope, code, settlement.Period(period), first or last.replace(day=1), last
    )


Period = Annotated[Literal["day", "month"], Query(description="a statement per day or per month")]
From = Annotated[date | None, Query(alias="from", description="first day (default: the first of `to`'s month)")]
To = Annotated[date | None, Query(description="last day (default: the business date)")]


@router.get(
    "/institutions/{code}/settlements",
    response_model=Statements,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def list_settlements(
    code: str, request: Request, tx: Funder, period: Period = "month", first: From = None, last: To = None
) -> Any:
    """The institution's statements by day or month, with what is still owed; CSV when asked for `text/csv`.
    An institution's key sees its own only."""
    rows = _statements(tx, code, period, first, last)
    if _wants_csv(request):
        return _csv(code, rows)
    outstanding = servicing.settlement_outstanding(tx.scope, code)
    return reply(
        {
            "institution": code,
            "statements": [statement_document(r) for r in rows],
            "outstanding": [outstanding_document(o) for o in outstanding],
        }
    )


@router.get(
    "/institutions/{code}/settlements.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def settlements_csv(code: str, tx: Funder, period: Period = "month", first: From = None, last: To = None) -> Response:
    """The same statements as a CSV table: one row per statement, one column per line."""
    return _csv(code, _statements(tx, code, period, first, last))


def _csv(code: str, rows: list[Any]) -> Response:
    return Response(
        statements_csv(rows),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="settlements-{code}.csv"'},
    )


@router.post("/institutions/{code}/settlements/{statement_id}/paid", status_code=201, response_model=PaidSettlement)
def pay_settlement(
    code: str,
    statement_id: Annotated[str, Path(max_length=20, examples=["CNY-2026-01", "CNY-2026-01-15"])],
    key: IdempotencyKey,
    tx: Operator,
) -> Any:
    """The statement was paid: its lines leave clearing and the referral receivable, once. A period not yet closed,
    one with nothing on it, or one already settled (wholly or a day of it) is refused."""
    matching.institution(tx.scope, code)
    done = tx.book(
        "settlement.paid",
        f"institution/{code}",
        lambda: tx.servicing.pay_settlement(code, statement_id, tx.principal.scoped(key)),
        lambda paid: {"settlement_id": paid["settlement_id"], "statement": paid["statement"], "net": paid["net"]},
    )
    return reply(
        PaidSettlement(
            settlement_id=done["settlement_id"],
            institution=code,
            statement=done["statement"],
            currency=done["currency"],
            net=amount(done["net"], done["currency"]),
            loans=done["loans"],
            paid_on=done["paid_on"],
        ),
        201,
    )
