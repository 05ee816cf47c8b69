"""The read side of funding for the API and the key checks: the deals a caller may see, through its `Scope`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from openice.storage import funding_tables
from openice.tenancy import Page, PageRequest, Scope


def deals(scope: Scope, page: PageRequest) -> Page:
    return scope.page("abs_deals", page)


def deal(scope: Scope, name: str) -> Any:
    """The caller's deal, or NotFound (another investor's deal is missing to this caller)."""
    return scope.get("abs_deals", name, "name")


def missing_deals(conn: Connection, names: Sequence[str]) -> list[str]:
    """Those of `names` that no deal issued bears, in their order."""
    d = funding_tables.abs_deals.c
    found = set(conn.execute(select(d.name).where(d.name.in_(list(names)))).scalars())
    return [name for name in names if name not in found]
