"""Borrowers, applications and their decisions, credit lines and drawdowns."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from openice.api.deps import IdempotencyKey, TransactionRoute, Tx, require
from openice.api.paging import NumericId, PageParams, paged
from openice.api.views import (
    BorrowerView,
    CreditLineView,
    DecisionView,
    DrawdownIn,
    DrawdownView,
    Page,
    borrower_view,
    decision_view,
    drawdown_view,
    line_view,
    reply,
)
from openice.decisioning import queries as lending
from openice.decisioning.domain import Registration, TypedApplication
from openice.errors import ValidationError
from openice.matching import queries as matching
from openice.money import to_minor
from openice.tenancy import Role

router = APIRouter(prefix="/v1", tags=["lending"], route_class=TransactionRoute)
Operator = Annotated[Tx, Depends(require(Role.OPERATOR))]
SelfOrOperator = Annotated[Tx, Depends(require(Role.OPERATOR, Role.BORROWER))]
Reader = Annotated[Tx, Depends(require(Role.OPERATOR, Role.BORROWER, Role.COLLECTIONS))]


def _borrower(tx: Tx, row: Any) -> BorrowerView:
    role = tx.principal.role
    return borrower_view(row, tx.svc.vault, full=role is Role.BORROWER, contact=role is Role.COLLECTIONS)


@router.post("/borrowers", status_code=201, response_model=BorrowerView)
def register_borrower(body: Registration, key: IdempotencyKey, tx: Operator) -> Any:
    """Register a borrower; personal data is encrypted before it is stored and masked in the response."""

    def work() -> dict[str, Any]:
        result = tx.decisioning.register(body)
        tx.audit("borrower.registered", result["borrower_id"], {"existing": result["existing"]})
        return _borrower(tx, lending.borrower(tx.scope, result["borrower_id"])).model_dump(mode="json")

    return reply(tx.idempotent(key, "register", body.model_dump(mode="json"), work), 201)


@router.get("/borrowers", response_model=Page[BorrowerView])
def list_borrowers(tx: Reader, page: PageParams, province: Annotated[str | None, Query(max_length=32)] = None) -> Any:
    return reply(paged(lending.borrowers(tx.scope, page, province), lambda row: _borrower(tx, row)))


@router.get("/borrowers/{borrower_id}", response_model=BorrowerView)
def get_borrower(borrower_id: str, tx: Reader) -> Any:
    return reply(_borrower(tx, lending.borrower(tx.scope, borrower_id)))


@router.post("/borrowers/{borrower_id}/applications", status_code=201, response_model=DecisionView)
def apply(borrower_id: str, body: TypedApplication, key: IdempotencyKey, tx: SelfOrOperator) -> Any:
    """Assess an application (money as decimal strings of major units in the product's currency): the stored
    decision, and the credit line when approved."""
    return reply(submit_application(tx, borrower_id, body, key), 201)


def submit_application(tx: Tx, borrower_id: str, body: TypedApplication, key: str) -> dict[str, Any]:
    """The decision as the API answers it, made once per key (the borrower app submits through here too). The key
    holds the application in minor units: `"30000"` and `"30000.00"` are the same request."""
    lending.borrower(tx.scope, borrower_id)  # 404 for another borrower
    application = tx.decisioning.in_minor(body)

    def work() -> dict[str, Any]:
        result = tx.decisioning.apply(borrower_id, application)
        tx.audit(
            "decision.made",
            result["decision_id"],
            {"borrower_id": borrower_id, "outcome": result["outcome"], "line_id": result["line_id"]},
        )
        made = lending.decision_row(tx.scope, result["decision_id"])
        return decision_view(made, result["line_id"], body.currency).model_dump(mode="json")

    return tx.idempotent(key, f"apply:{borrower_id}", application.model_dump(mode="json"), work)


@router.get("/decisions", response_model=Page[DecisionView])
def list_decisions(
    tx: SelfOrOperator,
    page: PageParams,
    borrower_id: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(pattern="^(approved|review|declined)$")] = None,
) -> Any:
    return reply(paged(lending.decisions(tx.scope, page, borrower_id, outcome), lambda item: decision_view(*item)))


@router.get("/decisions/{decision_id}", response_model=DecisionView)
def get_decision(decision_id: str, tx: SelfOrOperator) -> Any:
    return reply(decision_view(*lending.decision(tx.scope, decision_id)))


@router.get("/credit-lines", response_model=Page[CreditLineView])
def list_lines(
    tx: SelfOrOperator,
    page: PageParams,
    borrower_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(pattern="^(active|expired|frozen)$")] = None,
) -> Any:
    return reply(paged(lending.lines(tx.scope, page, borrower_id, status), lambda item: line_view(*item)))


@router.get("/credit-lines/{line_id}", response_model=CreditLineView)
def get_line(line_id: str, tx: SelfOrOperator) -> Any:
    return reply(line_view(*lending.line(tx.scope, line_id)))


@router.post("/credit-lines/{line_id}/drawdowns", status_code=201, response_model=DrawdownView)
def draw(line_id: str, body: DrawdownIn, key: IdempotencyKey, tx: SelfOrOperator) -> Any:
    """Draw a loan against the line: routed to an institution and originated, `offered` while an institution
    that decides by hand has the offer, or `no_funder` with the reasons."""
    currency = lending.line(tx.scope, line_id)[1].currency
    if body.currency != currency:
        raise ValidationError(f"the line is in {currency}, not {body.currency}", field="currency")
    amount = to_minor(body.amount, currency)

    def audit(done: dict[str, Any]) -> None:  # once per drawdown: a replayed key does not call it
        tx.audit(
            "drawdown",
            str(done["drawdown_id"]),
            {"line_id": line_id, "amount": amount, "status": done["status"], "loan_id": done["loan_id"]},
        )

    result = tx.matching.drawdown(line_id, amount, body.tenor, tx.principal.scoped(key), routed=audit)
    return reply(drawdown_view(*matching.drawdown(tx.scope, result["drawdown_id"])), 201)


@router.get("/drawdowns", response_model=Page[DrawdownView])
def list_drawdowns(
    tx: SelfOrOperator,
    page: PageParams,
    line_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> Any:
    return reply(paged(matching.drawdowns(tx.scope, page, line_id, status), lambda item: drawdown_view(*item)))


@router.get("/drawdowns/{drawdown_id}", response_model=DrawdownView)
def get_drawdown(drawdown_id: NumericId, tx: SelfOrOperator) -> Any:
    return reply(drawdown_view(*matching.drawdown(tx.scope, drawdown_id)))
