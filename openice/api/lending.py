"""Borrowers, applications and their decisions, credit lines and drawdowns."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from openice.api.deps import IdempotencyKey, ReadScope, Svc, audit, require
from openice.api.keys import Principal, Role
from openice.api.paging import NumericId, PageParams, rows
from openice.api.tenancy import Scope
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
)
from openice.decisioning.domain import ApplicationInput, Registration
from openice.errors import ValidationError
from openice.money import to_minor
from openice.storage import decisioning_tables as d
from openice.storage import tables as t

router = APIRouter(prefix="/v1", tags=["lending"])
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
SelfOrOperator = Annotated[Principal, Depends(require(Role.OPERATOR, Role.BORROWER))]
Reader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.BORROWER, Role.COLLECTIONS))]


def product_currency(scope: Scope, product_code: str) -> str:
    return scope.conn.execute(select(t.products.c.currency).where(t.products.c.code == product_code)).scalar_one()


def _borrower(svc: Svc, principal: Principal, row: Any) -> BorrowerView:
    role = principal.role
    return borrower_view(row, svc.vault, full=role is Role.BORROWER, contact=role is Role.COLLECTIONS)


@router.post("/borrowers", status_code=201, response_model=BorrowerView)
def register_borrower(body: Registration, key: IdempotencyKey, principal: Operator, svc: Svc, request: Request) -> Any:
    """Register a borrower; personal data is encrypted before it is stored and masked in the response."""

    def work() -> dict[str, Any]:
        result = svc.decisioning.register(body)
        audit(request, svc, principal, "borrower.registered", result["borrower_id"], {"existing": result["existing"]})
        with svc.engine.connect() as conn:
            row = conn.execute(select(d.borrowers).where(d.borrowers.c.id == result["borrower_id"])).one()
        return _borrower(svc, principal, row).model_dump(mode="json")

    return svc.creates.run(principal, key, "register", body.model_dump(mode="json"), work)


@router.get("/borrowers", response_model=Page[BorrowerView])
def list_borrowers(principal: Reader, svc: Svc, scope: ReadScope, page: PageParams,
                   province: Annotated[str | None, Query(max_length=32)] = None) -> Any:
    found = rows(scope, "borrowers", page, province=province)
    return Page(items=[_borrower(svc, scope.principal, r) for r in found.items], next_cursor=found.next_cursor)


@router.get("/borrowers/{borrower_id}", response_model=BorrowerView)
def get_borrower(borrower_id: str, principal: Reader, svc: Svc, scope: ReadScope) -> Any:
    return _borrower(svc, scope.principal, scope.get("borrowers", borrower_id, "borrower_id"))


def _line_of(scope: Scope, decision_id: str) -> str | None:
    return scope.conn.execute(select(d.credit_lines.c.id).where(d.credit_lines.c.decision_id == decision_id)).scalar()


@router.post("/borrowers/{borrower_id}/applications", status_code=201, response_model=DecisionView)
def apply(borrower_id: str, body: ApplicationInput, key: IdempotencyKey, principal: SelfOrOperator, svc: Svc,
          request: Request) -> Any:
    """Assess an application: the stored decision, and the credit line when approved."""
    svc.owned(principal, "borrowers", borrower_id, "borrower_id")

    def work() -> dict[str, Any]:
        result = svc.decisioning.apply(borrower_id, body)
        audit(request, svc, principal, "decision.made", result["decision_id"],
              {"borrower_id": borrower_id, "outcome": result["outcome"], "line_id": result["line_id"]})
        with svc.engine.connect() as conn:
            row = conn.execute(select(d.decisions).where(d.decisions.c.id == result["decision_id"])).one()
        return decision_view(row, result["line_id"]).model_dump(mode="json")

    return svc.creates.run(principal, key, f"apply:{borrower_id}", body.model_dump(mode="json"), work)


@router.get("/decisions", response_model=Page[DecisionView])
def list_decisions(principal: SelfOrOperator, scope: ReadScope, page: PageParams,
                   borrower_id: Annotated[str | None, Query(max_length=64)] = None,
                   outcome: Annotated[str | None, Query(pattern="^(approved|review|declined)$")] = None) -> Any:
    found = rows(scope, "decisions", page, borrower_id=borrower_id, outcome=outcome)
    return Page(items=[decision_view(r, _line_of(scope, r.id)) for r in found.items], next_cursor=found.next_cursor)


@router.get("/decisions/{decision_id}", response_model=DecisionView)
def get_decision(decision_id: str, principal: SelfOrOperator, scope: ReadScope) -> Any:
    return decision_view(scope.get("decisions", decision_id, "decision_id"), _line_of(scope, decision_id))


@router.get("/credit-lines", response_model=Page[CreditLineView])
def list_lines(principal: SelfOrOperator, scope: ReadScope, page: PageParams,
               borrower_id: Annotated[str | None, Query(max_length=64)] = None,
               status: Annotated[str | None, Query(pattern="^(active|expired|frozen)$")] = None) -> Any:
    found = rows(scope, "credit_lines", page, borrower_id=borrower_id, status=status)
    return Page(items=[line_view(r, product_currency(scope, r.product_code)) for r in found.items],
                next_cursor=found.next_cursor)


@router.get("/credit-lines/{line_id}", response_model=CreditLineView)
def get_line(line_id: str, principal: SelfOrOperator, scope: ReadScope) -> Any:
    row = scope.get("credit_lines", line_id, "line_id")
    return line_view(row, product_currency(scope, row.product_code))


@router.post("/credit-lines/{line_id}/drawdowns", status_code=201, response_model=DrawdownView)
def draw(line_id: str, body: DrawdownIn, key: IdempotencyKey, principal: SelfOrOperator, svc: Svc,
         request: Request) -> Any:
    """Draw a loan against the line: routed to an institution and originated, or `no_funder` with the reasons."""
    with svc.scope(principal) as scope:
        line = scope.get("credit_lines", line_id, "line_id")
        currency = product_currency(scope, line.product_code)
    if body.currency != currency:
        raise ValidationError(f"the line is in {currency}, not {body.currency}", field="currency")
    amount = to_minor(body.amount, currency)
    result = svc.matching.drawdown(line_id, amount, body.tenor, principal.scoped(key))
    audit(request, svc, principal, "drawdown", str(result["drawdown_id"]),
          {"line_id": line_id, "amount": amount, "status": result["status"], "loan_id": result["loan_id"]})
    with svc.engine.connect() as conn:
        row = conn.execute(select(d.drawdowns).where(d.drawdowns.c.id == result["drawdown_id"])).one()
    return drawdown_view(row, currency)


@router.get("/drawdowns", response_model=Page[DrawdownView])
def list_drawdowns(principal: SelfOrOperator, scope: ReadScope, page: PageParams,
                   line_id: Annotated[str | None, Query(max_length=64)] = None,
                   status: Annotated[str | None, Query(max_length=16)] = None) -> Any:
    found = rows(scope, "drawdowns", page, line_id=line_id, status=status)
    return Page(items=[drawdown_view(r, _drawdown_currency(scope, r)) for r in found.items],
                next_cursor=found.next_cursor)


def _drawdown_currency(scope: Scope, row: Any) -> str:
    code = scope.conn.execute(select(d.credit_lines.c.product_code).where(d.credit_lines.c.id == row.line_id))
    return product_currency(scope, code.scalar_one())


@router.get("/drawdowns/{drawdown_id}", response_model=DrawdownView)
def get_drawdown(drawdown_id: NumericId, principal: SelfOrOperator, scope: ReadScope) -> Any:
    row = scope.get("drawdowns", drawdown_id, "drawdown_id")
    return drawdown_view(row, _drawdown_currency(scope, row))
