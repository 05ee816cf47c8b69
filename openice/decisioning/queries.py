"""The read side of decisioning for the API: borrowers, decisions with their credit lines, and credit lines with
their products, each through the caller's `Scope`. A page costs a fixed number of statements, whatever its size."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, case, func, or_, select

from openice.decisioning.identity import mask_mobile, mask_name
from openice.decisioning.pii import PiiVault
from openice.servicing.buckets import LAST, WRITTEN_OFF
from openice.servicing.loan import LoanStatus
from openice.servicing.products import LoanProduct
from openice.servicing.repository import ProductRepository, parse_product
from openice.storage import decisioning_tables, direct, servicing_tables
from openice.tenancy import Page, PageRequest, Scope

_lines = decisioning_tables.credit_lines
_LINE_OF = select(_lines.c.id).where(_lines.c.decision_id == bindparam("decision_id"))
_LINES_OF = select(_lines.c.decision_id, _lines.c.id).where(_lines.c.decision_id.in_(bindparam("ids", expanding=True)))
_PRODUCTS = select(servicing_tables.products.c.code, servicing_tables.products.c.definition).where(
    servicing_tables.products.c.code.in_(bindparam("codes", expanding=True))
)  # built once; an IN list as long as the page, which SQLAlchemy expands (the direct path binds fixed parameters)
_CURRENCIES = select(servicing_tables.products.c.code, servicing_tables.products.c.currency).where(
    servicing_tables.products.c.code.in_(bindparam("codes", expanding=True))
)


def borrower(scope: Scope, borrower_id: str) -> Any:
    return scope.get("borrowers", borrower_id, "borrower_id")


def borrowers(scope: Scope, page: PageRequest, province: str | None) -> Page:
    return scope.page("borrowers", page, province=province)


def _currencies(scope: Scope, decisions: list[Any]) -> list[str]:
    """Each decision's product's currency, in which a person reads its stored money, in one statement."""
    codes = [json.loads(d.inputs)["application"]["product_code"] for d in decisions]
    currencies = dict(scope.conn.execute(_CURRENCIES, {"codes": sorted(set(codes))}).all()) if codes else {}
    return [currencies[code] for code in codes]


def _with_lines(scope: Scope, decisions: list[Any]) -> list[tuple[Any, str | None, str]]:
    """Each decision with the credit line it approved (None when it approved none) and its product's currency."""
    lines = dict(scope.conn.execute(_LINES_OF, {"ids": [d.id for d in decisions]}).all())
    currencies = _currencies(scope, decisions)
    return [(d, lines.get(d.id), currency) for d, currency in zip(decisions, currencies, strict=True)]


def decision_row(scope: Scope, decision_id: str) -> Any:
    return scope.get("decisions", decision_id, "decision_id")


def decision(scope: Scope, decision_id: str) -> tuple[Any, str | None, str]:
    """The decision, the credit line it approved (None when it approved none) and its product's currency."""
    row = decision_row(scope, decision_id)
    line_id = direct.execute(scope.conn, _LINE_OF, {"decision_id": row.id}).scalar()
    return row, line_id, _currencies(scope, [row])[0]


def decisions(scope: Scope, page: PageRequest, borrower_id: str | None, outcome: str | None) -> Page:
    found = scope.page("decisions", page, borrower_id=borrower_id, outcome=outcome)
    return Page(_with_lines(scope, found.items), found.last_key)


def _with_products(scope: Scope, lines: list[Any]) -> list[tuple[Any, LoanProduct]]:
    """Each line with its product, the page's products read in one statement."""
    codes = sorted({line.product_code for line in lines})
    products = {r.code: parse_product(r.definition) for r in scope.conn.execute(_PRODUCTS, {"codes": codes})}
    return [(line, products[line.product_code]) for line in lines]


def line(scope: Scope, line_id: str) -> tuple[Any, LoanProduct]:
    row = scope.get("credit_lines", line_id, "line_id")
    return row, ProductRepository(scope.conn).get(row.product_code)


def lines(scope: Scope, page: PageRequest, borrower_id: str | None, status: str | None) -> Page:
    found = scope.page("credit_lines", page, borrower_id=borrower_id, status=status)
    return Page(_with_products(scope, found.items), found.last_key)


def funnel(scope: Scope, as_of_day: int) -> dict[str, int]:
    """Borrowers at each step by the end of a day: registered, approved for a line, drawn a loan, drawn again. The
    first three are counted as the disclosure metrics count their cumulative users; repeat is what they lack."""
    borrowers, lines, loans = decisioning_tables.borrowers, decisioning_tables.credit_lines, servicing_tables.loans
    drawn = (
        select(loans.c.borrower_id, func.count().label("loans"))
        .where(loans.c.disbursed_day <= as_of_day, loans.c.borrower_id.is_not(None), scope.where("loans"))
        .group_by(loans.c.borrower_id)
        .subquery()
    )
    statement = select(
        select(func.count())
        .where(borrowers.c.registered_day <= as_of_day, scope.where("borrowers"))
        .scalar_subquery()
        .label("registered"),
        select(func.count(func.distinct(lines.c.borrower_id)))
        .where(lines.c.approved_day <= as_of_day, scope.where("credit_lines"))
        .scalar_subquery()
        .label("approved"),
        select(func.count()).select_from(drawn).scalar_subquery().label("drawn"),
        select(func.count()).select_from(drawn).where(drawn.c.loans > 1).scalar_subquery().label("repeat"),
    )
    return {name: int(value) for name, value in scope.conn.execute(statement).one()._mapping.items()}


def institution_exists(conn: Connection, code: str) -> bool:
    """Whether an institution is onboarded, whoever asks: the platform checks it before scoping a key to it."""
    institutions = decisioning_tables.institutions
    return conn.execute(select(institutions.c.code).where(institutions.c.code == code)).first() is not None


def borrower_exists(conn: Connection, borrower_id: str) -> bool:
    """Whether a borrower is registered, whoever asks: the platform checks it before scoping a key to them."""
    borrowers = decisioning_tables.borrowers
    return conn.execute(select(borrowers.c.id).where(borrowers.c.id == borrower_id)).first() is not None


def holds_mobile(conn: Connection, vault: PiiVault, borrower_id: str, mobile: str) -> bool:
    """Whether the borrower registered this mobile number, whoever asks: a person who proved the number may claim
    the borrower record it belongs to, and nobody else may."""
    borrowers = decisioning_tables.borrowers
    stored = conn.execute(select(borrowers.c.mobile_hash).where(borrowers.c.id == borrower_id)).scalar()
    return stored is not None and stored == vault.keyed_hash("mobile", mobile)


def contact_card(scope: Scope, vault: PiiVault, borrower_id: str, reveal: bool) -> dict[str, str]:
    """The borrower's name and mobile as a desk or the back office shows them: masked, or in clear when the caller
    gave a reason (the caller audits the reveal in the same transaction)."""
    row = borrower(scope, borrower_id)
    name, mobile = vault.decrypt("name", row.name_enc), vault.decrypt("mobile", row.mobile_enc)
    if reveal:
        return {"name": name, "mobile": mobile, "revealed": "yes"}
    return {"name": mask_name(name), "mobile": mask_mobile(mobile), "revealed": ""}


def gone_bad() -> ColumnElement[bool]:
    """A loan that went bad, as monitoring counts it: past 90 days (bucket M4+) or written off."""
    loans = servicing_tables.loans
    return or_(loans.c.bucket.in_((LAST, WRITTEN_OFF)), loans.c.status == LoanStatus.WRITTEN_OFF.value)


_OUTCOMES_VERSION = select(
    select(func.count()).select_from(decisioning_tables.decisions).scalar_subquery(),
    select(func.max(servicing_tables.journal_entries.c.id)).scalar_subquery(),
    select(servicing_tables.business_calendar.c.business_day).scalar_subquery(),
)


def outcomes_version(scope: Scope) -> tuple[Any, ...]:
    """What `model_outcomes` can change with, cheaply: a new decision (decisions are never changed, so their count
    grows), a booking (a loan drawn, paid, reversed or written off adds a journal entry) and the close of a day
    (loans move bucket). An index-only count and two index lookups, where the outcomes read every decision."""
    return (scope.principal.role, scope.principal.tenant, *scope.conn.execute(_OUTCOMES_VERSION).one())


def model_outcomes(scope: Scope, model_hash: str) -> list[Any]:
    """Every decision a model scored (decided day, score, PD) with its outcome where one is known, in one statement:
    ``bad`` is None for a decision no loan came of, 1 when a loan of its credit line is now past 90 days (bucket
    M4+) or written off, else 0. Loans drawn lately have had little time to go bad."""
    decisions, lines = decisioning_tables.decisions, decisioning_tables.credit_lines
    drawdowns, loans = decisioning_tables.drawdowns, servicing_tables.loans
    per_line = (
        select(drawdowns.c.line_id, func.max(case((gone_bad(), 1), else_=0)).label("bad"))
        .join(loans, loans.c.id == drawdowns.c.loan_id)
        .group_by(drawdowns.c.line_id)
        .subquery()
    )
    statement = (
        select(decisions.c.decided_day, decisions.c.score, decisions.c.pd, per_line.c.bad)
        .select_from(
            decisions.outerjoin(lines, lines.c.decision_id == decisions.c.id).outerjoin(
                per_line, per_line.c.line_id == lines.c.id
            )
        )
        .where(
            decisions.c.model_hash == model_hash,
            decisions.c.score.is_not(None),
            decisions.c.pd.is_not(None),
            scope.where("decisions"),
        )
    )
    return list(scope.conn.execute(statement).all())
