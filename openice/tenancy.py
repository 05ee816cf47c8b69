"""Tenancy, the one mechanism for every stage: who is calling (`Principal`: a role and a tenant), the rule per
resource that says which rows that caller may see, and `Scope`, which puts the rule inside the query itself. Query
functions and services take a `Scope` (or, when they open their own unit of work, the `Principal`) as a required
argument, so no read or write reaches a tenant-owned row without its filter. A row outside the caller's tenant is
indistinguishable from a missing one (404), so identifiers of other tenants reveal nothing.

The rules name tables, so this module sits beside storage; the API imports it, never the tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, Table, and_, bindparam, false, or_, select, true

from openice.errors import NotFound
from openice.idempotency import scoped
from openice.storage import (
    api_tables,
    collections_tables,
    decisioning_tables,
    direct,
    funding_tables,
    gateway_tables,
    hybrid_tables,
    servicing_tables,
)

PLATFORM = "platform"


class Role(StrEnum):
    OPERATOR = "operator"
    INSTITUTION = "institution"
    BORROWER = "borrower"
    COLLECTIONS = "collections"
    INVESTOR = "investor"


@dataclass(frozen=True)
class Principal:
    """The caller: an API key's role and tenant ('platform' for operators, an institution code for institutions,
    a borrower id for borrowers, 'platform' or an institution code for collections desks, the names of its deals
    separated by commas for investors)."""

    key_id: str
    role: Role
    tenant: str

    def scoped(self, idempotency_key: str) -> str:
        """Idempotency keys are per tenant: one tenant's key can never replay another tenant's response."""
        return scoped(f"{self.role.value}/{self.tenant}", idempotency_key)


def collections_desk(institution: str | None) -> Principal:
    """The desk working one institution's loans (None: the platform's own desk, every loan), for callers without
    an API key such as the command line."""
    return Principal("cli", Role.COLLECTIONS, institution or PLATFORM)


Rule = Callable[[Principal], ColumnElement[bool]]


def institution_of(p: Principal) -> str | None:
    """The institution whose loans this caller is limited to (an institution, or its own collections desk);
    None for callers not limited to one institution."""
    if p.role is Role.INSTITUTION or (p.role is Role.COLLECTIONS and p.tenant != PLATFORM):
        return p.tenant
    return None


def funded_by(institution: str) -> ColumnElement[bool]:
    """The loans an institution funded at origination: its own, whoever holds them after a guarantee payout."""
    return servicing_tables.loans.c.original_funder == institution


def _loans(p: Principal) -> ColumnElement[bool]:
    if p.role is Role.INVESTOR:  # its deals' reports are its window on their loans
        return false()
    if p.role is Role.BORROWER:
        return servicing_tables.loans.c.borrower_id == p.tenant
    institution = institution_of(p)
    return true() if institution is None else funded_by(institution)


def _own_borrower(column: Any) -> Rule:
    """Borrower-owned rows: the borrower and operators only."""
    return lambda p: column == p.tenant if p.role is Role.BORROWER else (true() if p.role is Role.OPERATOR else false())


def _borrowers(p: Principal) -> ColumnElement[bool]:
    if p.role is Role.COLLECTIONS:  # the people behind the loans the agent works
        return decisioning_tables.borrowers.c.id.in_(select(servicing_tables.loans.c.borrower_id).where(_loans(p)))
    return _own_borrower(decisioning_tables.borrowers.c.id)(p)


def _collection_cases(p: Principal) -> ColumnElement[bool]:
    """The desk works its loans' cases: all of them for the platform, its own loans' for an institution."""
    if p.role in (Role.BORROWER, Role.INVESTOR):
        return false()
    institution = institution_of(p)
    return (
        true()
        if institution is None
        else collections_tables.collection_cases.c.loan_id.in_(
            select(servicing_tables.loans.c.id).where(funded_by(institution))
        )
    )


def investor_deals(tenant: str) -> list[str]:
    """The deals an investor key is bound to: its tenant, the deals' names separated by commas."""
    return [name.strip() for name in tenant.split(",") if name.strip()]


def _deals(p: Principal) -> ColumnElement[bool]:
    """An investor sees the deals its key is bound to, operators all of them, nobody else any."""
    if p.role is Role.INVESTOR:
        return funding_tables.abs_deals.c.name.in_(investor_deals(p.tenant))
    return _operator_only(p)


def _operator_only(p: Principal) -> ColumnElement[bool]:
    return true() if p.role is Role.OPERATOR else false()


def _institution_owned(column: Any) -> Rule:
    return lambda p: (
        column == p.tenant if p.role is Role.INSTITUTION else (true() if p.role is Role.OPERATOR else false())
    )


def _api_keys(p: Principal) -> ColumnElement[bool]:
    """Operators see every key; an institution its own institution's institution keys (its admins manage them, never
    its collections desk's or anyone else's); any other caller only its own key."""
    keys = api_tables.api_keys.c
    if p.role is Role.OPERATOR:
        return true()
    if p.role is Role.INSTITUTION:
        return and_(keys.role == Role.INSTITUTION.value, keys.tenant == p.tenant)
    return keys.id == p.key_id


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
    "api_keys": _api_keys,
    "audit_log": _operator_only,
    "collection_cases": _collection_cases,
    "matching_runs": _operator_only,  # every institution's shadow prices together: the platform's view of the market
    "dead_letters": _operator_only,  # deliveries an operator replays
    "hybrid_decisions": _institution_owned(hybrid_tables.hybrid_decisions.c.institution_code),
    "abs_deals": _deals,
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
    "dead_letters": gateway_tables.dead_letters,
    "hybrid_decisions": hybrid_tables.hybrid_decisions,
    "abs_deals": funding_tables.abs_deals,
}
KEYS = {"institutions": "code", "abs_deals": "name"}
NAMES = {
    "credit_lines": "credit line",
    "api_keys": "api key",
    "audit_log": "audit entry",
    "collection_cases": "collection case",
    "matching_runs": "matching run",
    "dead_letters": "dead letter",
    "hybrid_decisions": "hybrid decision",
    "abs_deals": "deal",
}


class PageRequest(Protocol):
    """Which page a caller asks for: how many rows, after which key (decoded from the caller's cursor)."""

    limit: int

    def after(self, resource: str) -> Any | None: ...


@dataclass
class Window:
    """A page request made in code (the pages, the demo): `limit` rows after the key `start` (None: from the first)."""

    limit: int
    start: Any | None = None

    def after(self, _resource: str) -> Any | None:
        return self.start


@dataclass(frozen=True)
class Page:
    """A page of rows in key order; `last_key` is the key to continue after, None on the last page."""

    items: list[Any]
    last_key: Any | None


# The scoped queries, built once per worker for each shape and caller: building a statement costs more CPU than the
# database spends running it. The tenant filter is inside the statement, so the caller is part of the cache key.
@lru_cache(maxsize=10_000)
def _get_statement(resource: str, principal: Principal) -> Any:
    table = TABLES[resource]
    key = table.c[KEYS.get(resource, "id")]
    return select(table).where(key == bindparam("ident"), RULES[resource](principal))


@lru_cache(maxsize=10_000)
def _page_statement(
    resource: str, principal: Principal, given: tuple[str, ...], limit: int, newest_first: bool = False
) -> Any:
    """Rows after the bound `cursor` (when given), with the bound equality filters `f_<column>`, in key order (or
    in descending key order, `newest_first`, where "after" means below the cursor); with `open_at`, only rows with no
    `expires_at` or one after that moment."""
    table = TABLES[resource]
    key = table.c[KEYS.get(resource, "id")]
    query = select(table).where(RULES[resource](principal))
    for name in given:
        if name == "cursor":
            query = query.where(key < bindparam("cursor") if newest_first else key > bindparam("cursor"))
        elif name == "open_at":
            query = query.where(or_(table.c.expires_at.is_(None), table.c.expires_at > bindparam("open_at")))
        else:
            query = query.where(table.c[name[2:]] == bindparam(name))
    return query.order_by(key.desc() if newest_first else key).limit(limit + 1)


class Scope:
    """The caller's window on the database: every query here carries the tenant filter."""

    def __init__(self, conn: Connection, principal: Principal) -> None:
        self.conn = conn
        self.principal = principal

    def where(self, resource: str) -> ColumnElement[bool]:
        return RULES[resource](self.principal)

    def get(self, resource: str, ident: Any, field: str) -> Any:
        """The caller's row, or NotFound naming `field` (another tenant's row is missing to this caller)."""
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

    @staticmethod
    def numeric_key(resource: str) -> bool:
        return TABLES[resource].c[KEYS.get(resource, "id")].type.python_type is int

    def page(
        self,
        resource: str,
        request: PageRequest,
        newest_first: bool = False,
        open_at: str | None = None,
        **filters: Any,
    ) -> Page:
        """Rows in key order after the requested key (descending with `newest_first`), with equality filters on the
        named columns (None = no filter), and none past its `expires_at` at `open_at` (when given): one statement
        whatever the page size."""
        key = KEYS.get(resource, "id")
        given = {f"f_{name}": value for name, value in filters.items() if value is not None}
        if open_at is not None:
            given["open_at"] = open_at
        after = request.after(resource)
        if after is not None:
            given["cursor"] = after
        statement = _page_statement(resource, self.principal, tuple(sorted(given)), request.limit, newest_first)
        rows = list(direct.execute(self.conn, statement, given))
        more = len(rows) > request.limit
        rows = rows[: request.limit]
        return Page(rows, getattr(rows[-1], key) if more else None)
