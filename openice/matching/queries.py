"""The read side of matching for the API: drawdowns with the currency of their line, offers, institutions and the
batch runs, each through the caller's `Scope`. A page costs a fixed number of statements, whatever its size."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import numpy as np
from pandas import DataFrame
from sqlalchemy import bindparam, select

from openice.errors import Forbidden
from openice.matching.boxes import BATCH_COLUMNS, Drawdowns, debt_to_income
from openice.matching.institutions import Institution
from openice.servicing.products import PPM
from openice.storage import decisioning_tables, direct, servicing_tables
from openice.storage.days import to_day
from openice.tenancy import Page, PageRequest, Role, Scope

_lines, _products = decisioning_tables.credit_lines, servicing_tables.products
_CURRENCIES = (
    select(_lines.c.id, _products.c.currency)
    .join(_products, _products.c.code == _lines.c.product_code)
    .where(_lines.c.id.in_(bindparam("ids", expanding=True)))
)  # built once; an IN list as long as the page, which SQLAlchemy expands (the direct path binds fixed parameters)
_CURRENCY = (
    select(_products.c.currency)
    .join(_lines, _products.c.code == _lines.c.product_code)
    .where(_lines.c.id == bindparam("line_id"))
)  # one drawdown's, on the direct path


_drawdowns = decisioning_tables.drawdowns
_OFFER_CURRENCIES = (
    select(_drawdowns.c.id, _products.c.currency)
    .join(_lines, _lines.c.id == _drawdowns.c.line_id)
    .join(_products, _products.c.code == _lines.c.product_code)
    .where(_drawdowns.c.id.in_(bindparam("ids", expanding=True)))
)  # built once: each offer's drawdown's currency, for a page of offers


def _with_currencies(scope: Scope, drawdowns: list[Any]) -> list[tuple[Any, str]]:
    """Each drawdown with its line's currency, read for the whole page in one statement."""
    currencies = dict(scope.conn.execute(_CURRENCIES, {"ids": sorted({d.line_id for d in drawdowns})}).all())
    return [(d, currencies[d.line_id]) for d in drawdowns]


def drawdown(scope: Scope, drawdown_id: int) -> tuple[Any, str]:
    row = scope.get("drawdowns", drawdown_id, "drawdown_id")
    return row, direct.execute(scope.conn, _CURRENCY, {"line_id": row.line_id}).scalar_one()


def drawdowns(scope: Scope, page: PageRequest, line_id: str | None, status: str | None) -> Page:
    found = scope.page("drawdowns", page, line_id=line_id, status=status)
    return Page(_with_currencies(scope, found.items), found.last_key)


def offer(scope: Scope, offer_id: int) -> Any:
    return scope.get("offers", offer_id, "offer_id")


def offer_currencies(scope: Scope, offers: list[Any]) -> dict[int, str]:
    """Drawdown id -> its currency (its line's product's), the unit of an offer's expected margin: read for a whole
    page of offers in one statement."""
    ids = sorted({o.drawdown_id for o in offers})
    return dict(scope.conn.execute(_OFFER_CURRENCIES, {"ids": ids}).all()) if ids else {}


def offers(
    scope: Scope, page: PageRequest, status: str | None, drawdown_id: int | None, open_at: str | None = None
) -> Page:
    """The caller's offers; with `open_at`, none past its deadline at that moment, though the sweeper may not have
    closed it yet."""
    return scope.page("offers", page, open_at=open_at, status=status, drawdown_id=drawdown_id)


def institution(scope: Scope, code: str) -> Institution:
    return Institution.model_validate_json(scope.get("institutions", code, "code").definition)


def institutions(scope: Scope, page: PageRequest) -> Page:
    found = scope.page("institutions", page)
    return Page([Institution.model_validate_json(r.definition) for r in found.items], found.last_key)


def matching_runs(scope: Scope, page: PageRequest) -> Page:
    return scope.page("matching_runs", page)


def dead_letters(scope: Scope, page: PageRequest) -> Page:
    return scope.page("dead_letters", page)


def funder_name(scope: Scope, drawdown: Any) -> str | None:
    """The name of the institution that funded a drawdown the caller has read through its scope: a borrower is told
    who lent, though the institution's terms stay out of its view."""
    if drawdown.institution_code is None:
        return None
    institutions = decisioning_tables.institutions
    found = scope.conn.execute(
        select(institutions.c.definition).where(institutions.c.code == drawdown.institution_code)
    )
    definition = found.scalar()
    return None if definition is None else Institution.model_validate_json(definition).name


_d, _decisions, _borrowers = decisioning_tables.drawdowns, decisioning_tables.decisions, decisioning_tables.borrowers
_BOX_INPUTS = (
    select(
        _d.c.amount,
        _d.c.tenor,
        _d.c.requested_day,
        _lines.c.score,
        _lines.c.pd,
        _lines.c.rate_ppm,
        _lines.c.product_code,
        _products.c.currency,
        _borrowers.c.province,
        _decisions.c.inputs,
    )
    .join(_lines, _lines.c.id == _d.c.line_id)
    .join(_products, _products.c.code == _lines.c.product_code)
    .join(_decisions, _decisions.c.id == _lines.c.decision_id)
    .join(_borrowers, _borrowers.c.id == _d.c.borrower_id)
    .where(_d.c.requested_day >= bindparam("first"), _d.c.requested_day <= bindparam("last"))
    .order_by(_d.c.id)
)


def box_inputs(scope: Scope, first: date, last: date) -> tuple[Drawdowns, np.ndarray, np.ndarray]:
    """What a credit box reads of every drawdown requested between two business days (whichever institution funded
    it, or none), with each one's currency and day: the population a box change is previewed against, as routing
    saw it. No identity leaves here, and the caller shows only totals; so an institution, which may not read
    another's drawdowns, may still weigh a change to its own box against the platform's flow."""
    if scope.principal.role not in (Role.OPERATOR, Role.INSTITUTION):
        raise Forbidden("only operators and institutions weigh credit boxes", field="role")
    rows = scope.conn.execute(_BOX_INPUTS, {"first": to_day(first), "last": to_day(last)}).all()
    columns: dict[str, list[Any]] = {name: [] for name in (*BATCH_COLUMNS, "currency", "day")}
    for r in rows:
        decided = json.loads(r.inputs)
        application = decided["application"]
        rate = r.rate_ppm / PPM
        values = {
            "amount": int(r.amount),
            "tenor": r.tenor,
            "score": r.score,
            "pd": r.pd,
            "age": decided["age"],
            "province": r.province,
            "income": application["income_monthly"],
            "dti": debt_to_income(
                application["existing_debt_monthly"], int(r.amount), rate, r.tenor, application["income_monthly"]
            ),
            "product": r.product_code,
            "rate": rate,
            "currency": r.currency,
            "day": r.requested_day,
        }
        for name, value in values.items():
            columns[name].append(value)
    frame = DataFrame(columns)
    return Drawdowns.from_frame(frame), frame["currency"].to_numpy(dtype=object), frame["day"].to_numpy()
