"""Cursor pagination parameters shared by every list operation."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query
from pydantic import BaseModel

from openice.api.inputs import MAX_INT64
from openice.api.tenancy import Page as Rows
from openice.api.tenancy import Scope

MAX_ID = MAX_INT64
NumericId = Annotated[int, Path(ge=1, le=MAX_ID)]


class Paging(BaseModel):
    cursor: str | None = None
    limit: int = 50


async def paging(
    cursor: Annotated[str | None, Query(max_length=200, description="from the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Paging:
    """A coroutine: no I/O, so no trip through the thread pool."""
    return Paging(cursor=cursor, limit=limit)


PageParams = Annotated[Paging, Depends(paging)]


def rows(scope: Scope, resource: str, page: Paging, **filters: object) -> Rows:
    return scope.page(resource, filters, page.cursor, page.limit)
