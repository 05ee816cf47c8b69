"""Borrowers, applications and their decisions, credit lines and drawdowns."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import bindparam, select

from openice.api.deps import IdempotencyKey, TransactionRoute, Tx, require
from openice.api.keys import Role
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
    reply,
)
from openice.decisioning.domain import ApplicationInput, Registration
from openice.decisioning.repository import DecisionRepository
from openice.errors import ValidationError
from openice.matching.repository import DrawdownRepository
from openice.money import to_minor
from openice.servicing.repository import ProductRepository
from openice.storage import decisioning_tables, direct, servicing_tables

router = APIRouter(prefix="/v1", tags=["lending"], route_class=TransactionRoute)
Operator = Annotated[Tx, Depends(require(Role.OPERATOR))]
SelfOrOperator = Annotated[Tx, Depends(require(Role.OPERATOR, Role.BORROWER))]
Reader = Annotated[Tx, Depends(require(Role.OPERATOR, Role.BORROWER, Role.COLLECTIONS))]


_CURRENCY = select(servicing_tables.products.c.currency).where(
    servicing_tables.products.c.code == bindparam("code")
)  # built once


def product_currency(scope: Scope, product_code: str) -> str:
    return direct.execute(scope.conn, _CURRENCY, {"code": product_code}).scalar_one()


def _borrower(tx: Tx, row: Any) -> BorrowerView:
    role = tx.principal.role
    return borrower_view(row, tx.svc.vault, full=role is Role.BORROWER, contact=role is Role.COLLECTIONS)


@router.post("/borrowers", status_code=201, response_model=BorrowerView)
def register_borrower(body: Registration, key: IdempotencyKey, tx: Operator) -> Any:
    """Register a borrower; personal data is encrypted before it is stored and masked in the response."""

    def work() -> dict[str, Any]:
        result = tx.decisioning.register(body)
        tx.audit("borrower.registered", result["borrower_id"], {"existing": result["existing"]})
        row = tx.conn.execute(
            select(decisioning_tables.borrowers).where(decisioning_tables.borrowers.c.id == result["borrower_id"])
        ).one()
        return _borrower(tx, row).model_dump(mode="json")

    return reply(tx.creates.run(tx.principal, key, "register", body.model_dump(mode="json"), work), 201)


@router.get("/borrowers", response_model=Page[BorrowerView])
def list_borrowers(tx: Reader, page: PageParams, province: Annotated[str | None, Query(max_length=32)] = None) -> Any:
    found = rows(tx.scope, "borrowers", page, province=province)
    return reply(Page(items=[_borrower(tx, r) for r in found.items], next_cursor=found.next_cursor))


@router.get("/borrowers/{borrower_id}", response_model=BorrowerView)
def get_borrower(borrower_id: str, tx: Reader) -> Any:
    return reply(_borrower(tx, tx.owned("borrowers", borrower_id, "borrower_id")))


def _line_of(scope: Scope, decision_id: str) -> str | None:
    return scope.conn.execute(
        select(decisioning_tables.credit_lines.c.id).where(decisioning_tables.credit_lines.c.decision_id == decision_id)
    ).scalar()


@router.post("/borrowers/{borrower_id}/applications", status_code=201, response_model=DecisionView)
def apply(borrower_id: str, body: ApplicationInput, key: IdempotencyKey, tx: SelfOrOperator) -> Any:
    """Assess an application: the stored decision, and the credit line when approved."""
    tx.owned("borrowers", borrower_id, "borrower_id")

    def work() -> dict[str, Any]:
        result = tx.decisioning.apply(borrower_id, body)
        tx.audit(
            "decision.made",
            result["decision_id"],
            {"borrower_id": borrower_id, "outcome": result["outcome"], "line_id": result["line_id"]},
        )
        row = DecisionRepository(tx.conn).get(result["decision_id"])
        return decision_view(row, result["line_id"]).model_dump(mode="json")

    return reply(tx.creates.run(tx.principal, key, f"apply:{borrower_id}", body.model_dump(mode="json"), work), 201)


@router.get("/decisions", response_model=Page[DecisionView])
def list_decisions(
    tx: SelfOrOperator,
    page: PageParams,
    borrower_id: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(pattern="^(approved|review|declined)$")] = None,
) -> Any:
    found = rows(tx.scope, "decisions", page, borrower_id=borrower_id, outcome=outcome)
    lines = dict(
        tx.conn.execute(
            select(decisioning_tables.credit_lines.c.decision_id, decisioning_tables.credit_lines.c.id).where(
                decisioning_tables.credit_lines.c.decision_id.in_([r.id for r in found.items])
            )
        ).all()
    )  # one query for the page
    return reply(Page(items=[decision_view(r, lines.get(r.id)) for r in found.items], next_cursor=found.next_cursor))


@router.get("/decisions/{decision_id}", response_model=DecisionView)
def get_decision(decision_id: str, tx: SelfOrOperator) -> Any:
    return reply(decision_view(tx.owned("decisions", decision_id, "decision_id"), _line_of(tx.scope, decision_id)))


@router.get("/credit-lines", response_model=Page[CreditLineView])
def list_lines(
    tx: SelfOrOperator,
    page: PageParams,
    borrower_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(pattern="^(active|expired|frozen)$")] = None,
) -> Any:
    found = rows(tx.scope, "credit_lines", page, borrower_id=borrower_id, status=status)
    products = ProductRepository(tx.conn)
    return reply(
        Page(items=[line_view(r, products.get(r.product_code)) for r in found.items], next_cursor=found.next_cursor)
    )


@router.get("/credit-lines/{line_id}", response_model=CreditLineView)
def get_line(line_id: str, tx: SelfOrOperator) -> Any:
    row = tx.owned("credit_lines", line_id, "line_id")
    return reply(line_view(row, ProductRepository(tx.conn).get(row.product_code)))


@router.post("/credit-lines/{line_id}/drawdowns", status_code=201, response_model=DrawdownView)
def draw(line_id: str, body: DrawdownIn, key: IdempotencyKey, tx: SelfOrOperator) -> Any:
    """Draw a loan against the line: routed to an institution and originated, `offered` while an institution
    that decides by hand has the offer, or `no_funder` with the reasons."""
    line = tx.owned("credit_lines", line_id, "line_id")
    currency = product_currency(tx.scope, line.product_code)
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
    row = DrawdownRepository(tx.conn).get(result["drawdown_id"])
    return reply(drawdown_view(row, currency), 201)


@router.get("/drawdowns", response_model=Page[DrawdownView])
def list_drawdowns(
    tx: SelfOrOperator,
    page: PageParams,
    line_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> Any:
    found = rows(tx.scope, "drawdowns", page, line_id=line_id, status=status)
    return reply(
        Page(
            items=[drawdown_view(r, _drawdown_currency(tx.scope, r)) for r in found.items],
            next_cursor=found.next_cursor,
        )
    )


def _drawdown_currency(scope: Scope, row: Any) -> str:
    code = scope.conn.execute(
        select(decisioning_tables.credit_lines.c.product_code).where(
            decisioning_tables.credit_lines.c.id == row.line_id
        )
    )
    return product_currency(scope, code.scalar_one())


@router.get("/drawdowns/{drawdown_id}", response_model=DrawdownView)
def get_drawdown(drawdown_id: NumericId, tx: SelfOrOperator) -> Any:
    row = tx.owned("drawdowns", drawdown_id, "drawdown_id")
    return reply(drawdown_view(row, _drawdown_currency(tx.scope, row)))
