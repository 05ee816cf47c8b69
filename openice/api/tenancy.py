"""Tenant scoping in the data layer: every read of a tenant-owned row goes through `Scope`, which adds the
caller's tenant filter to the query itself. A row outside the caller's tenant is indistinguishable from a
missing one (404), so identifiers of other tenants reveal nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, bindparam, false, select, true

from openice.api.inputs import MAX_INT64, text_problem
from openice.api.keys import PLATFORM, Principal, Role
from openice.errors import NotFound, ValidationError
from openice.storage import api_tables, collections_tables, decisioning_tables, direct, servicing_tables

Rule = Callable[[Principal], ColumnElement[bool]]


def institution_of(p: Principal) -> str | None:
    """The institution whose loans this caller is limited to (an institution, or its own collections desk);
    None for callers not limited to one institution."""
    if p.role is Role.INSTITUTION or (p.role is Role.COLLECTIONS and p.tenant != PLATFORM):
        return p.tenant
    return None


def _funded_by(institution: str) -> ColumnElement[bool]:
    return servicing_tables.loans.c.original_funder == institution


def _loans(p: Principal) -> ColumnElement[bool]:
    if p.role is Role.BORROWER:
        return servicing_tables.loans.c.borrower_id == p.tenant
    institution = institution_of(p)
    return true() if institution is None else _funded_by(institution)


def _own_borrower(column: Any) -> Rule:
    """Borrower-owned rows: the borrower and operators only."""
    return lambda p: column == p.tenant if p.role is Role.BORROWER else (true() if p.role is Role.OPERATOR else false())


def _borrowers(p: Principal) -> ColumnElement[bool]:
    if p.role is Role.COLLECTIONS:  # the people behind the loans the agent works
        return decisioning_tables.borrowers.c.id.in_(select(servicing_tables.loans.c.borrower_id).where(_loans(p)))
    return _own_borrower(decisioning_tables.borrowers.c.id)(p)


def _collection_cases(p: Principal) -> ColumnElement[bool]:
    """The desk works its loans' cases: all of them for the platform, its own loans' for an institution."""
    if p.role is Role.BORROWER:
        return false()
    institution = institution_of(p)
    return (
        true()
        if institution is None
        else collections_tables.collection_cases.c.loan_id.in_(
            select(servicing_tables.loans.c.id).where(_funded_by(institution))
        )
    )


def _operator_only(p: Principal) -> ColumnElement[bool]:
    return true() if p.role is Role.OPERATOR else false()


def _institution_owned(column: Any) -> Rule:
    return lambda p: (
        column == p.tenant if p.role is Role.INSTITUTION else (true() if p.role is Role.OPERATOR else false())
    )


RULES: dict[str, Rule] = {
    "loans": _loans,
    "transactions": lambda p: servicing_tables.transactions.c.loan_id.in_(
        select(servicing_tables.loans.c.id).where(_loans(p))
    ),
    "borrowers": _borrowers,
    "decisions": _own_borrower(decisioning_tables.decisions.c.borrower_id),
    "credit_lines": _own_borrower(decisioning_tables.credit_lines.c.borrower_id),
    "drawdowns": _own_borrower(decisioning_tables.drawdowns.c.borrower_id),
    "offers": _institution_owned(decisioning_tables.offers.c.institution_code),
    "institutions": _institution_owned(decisioning_tables.institutions.c.code),
    "api_keys": lambda p: true() if p.role is Role.OPERATOR else api_tables.api_keys.c.id == p.key_id,
    "audit_log": _operator_only,
    "collection_cases": _collection_cases,
    "matching_runs": _operator_only,  # every institution's shadow prices together: the platform's view of the market
}
TABLES: dict[str, Table] = {
    "loans": servicing_tables.loans,
    "transactions": servicing_tables.transactions,
    "borrowers": decisioning_tables.borrowers,
    "decisions": decisioning_tables.decisions,
    "credit_lines": decisioning_tables.credit_lines,
    "drawdowns": decisioning_tables.drawdowns,
    "offers": decisioning_tables.offers,
    "institutions": decisioning_tables.institutions,
    "api_keys": api_tables.api_keys,
    "audit_log": api_tables.audit_log,
    "collection_cases": collections_tables.collection_cases,
    "matching_runs": decisioning_tables.matching_runs,
}
KEYS = {"institutions": "code"}
NAMES = {
    "credit_lines": "credit line",
    "api_keys": "api key",
    "audit_log": "audit entry",
    "collection_cases": "collection case",
    "matching_runs": "matching run",
}


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, numeric: bool) -> Any:
    """The last key of the previous page. The cursor is the caller's text, so what it decodes to is checked like
    any input: a whole number a BIGINT key holds, or text without a NUL character."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        key = int(text) if numeric else text
    except ValueError:
        key = None
    if key is None or (numeric and not 0 <= key <= MAX_INT64) or (not numeric and text_problem(key)):
        raise ValidationError(
            "is not a cursor this service issued; pass next_cursor from the previous page", field="cursor"
        )
    return key


# The scoped queries, built once per worker for each shape and caller: building a statement costs more CPU than the
# database spends running it. The tenant filter is inside the statement, so the caller is part of the cache key.
@lru_cache(maxsize=10_000)
def _get_statement(resource: str, principal: Principal) -> Any:
    table = TABLES[resource]
    key = table.c[KEYS.get(resource, "id")]
    return select(table).where(key == bindparam("ident"), RULES[resource](principal))


@lru_cache(maxsize=10_000)
def _page_statement(resource: str, principal: Principal, given: tuple[str, ...], limit: int) -> Any:
    """Rows after the bound `cursor` (when given), with the bound equality filters `f_<column>`, in key order."""
    table = TABLES[resource]
    key = table.c[KEYS.get(resource, "id")]
    query = select(table).where(RULES[resource](principal))
    for name in given:
        query = query.where((key > bindparam("cursor")) if name == "cursor" else (table.c[name[2:]] == bindparam(name)))
    return query.order_by(key).limit(limit + 1)


class Scope:
    """The caller's window on the database: every query here carries the tenant filter."""

    def __init__(self, conn: Connection, principal: Principal) -> None:
        self.conn = conn
        self.principal = principal

    def where(self, resource: str) -> ColumnElement[bool]:
        return RULES[resource](self.principal)

    def get(self, resource: str, ident: Any, field: str) -> Any:
        table = TABLES[resource]
        key = table.c[KEYS.get(resource, "id")]
        try:
            ident = key.type.python_type(ident)
        except (TypeError, ValueError):
            ident = None
        row = (
            None
            if ident is None
            else direct.execute(self.conn, _get_statement(resource, self.principal), {"ident": ident}).first()
        )
        if row is None:
            raise NotFound(f"no {NAMES.get(resource, resource.rstrip('s'))} {ident!r}", field=field)
        return row

    def page(self, resource: str, filters: dict[str, Any], cursor: str | None, limit: int) -> Page:
        """Rows in key order after `cursor`, with equality filters on the named columns (None = no filter)."""
        table = TABLES[resource]
        key = table.c[KEYS.get(resource, "id")]
        given = {f"f_{name}": value for name, value in filters.items() if value is not None}
        if cursor:
            given["cursor"] = decode_cursor(cursor, key.type.python_type is int)
        statement = _page_statement(resource, self.principal, tuple(sorted(given)), limit)
        rows = list(direct.execute(self.conn, statement, given))
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, encode_cursor(getattr(rows[-1], key.name)) if more else None)
