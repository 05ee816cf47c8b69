"""Cursor pagination parameters shared by every list operation, and the opaque cursors that carry a page's last key
between requests."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Query
from pydantic import BaseModel

from openice.api.inputs import MAX_INT64, text_problem
from openice.api.views import Page
from openice.errors import ValidationError
from openice.tenancy import Page as Rows
from openice.tenancy import Scope

MAX_ID = MAX_INT64
NumericId = Annotated[int, Path(ge=1, le=MAX_ID)]


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, numeric: bool) -> int | str:
    """The last key of the previous page. The cursor is the caller's text, so what it decodes to is checked like
    any input: a whole number a BIGINT key holds, or text without a NUL character."""
    key: int | str | None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        key = int(text) if numeric else text
    except ValueError:
        key = None
    if (isinstance(key, int) and 0 <= key <= MAX_INT64) or (isinstance(key, str) and not text_problem(key)):
        return key
    raise ValidationError(
        "is not a cursor this service issued; pass next_cursor from the previous page", field="cursor"
    )


class Paging(BaseModel):
    cursor: str | None = None
    limit: int = 50

    def after(self, resource: str) -> int | str | None:
        """The key the page starts after, decoded from the cursor."""
        return decode_cursor(self.cursor, Scope.numeric_key(resource)) if self.cursor else None


async def paging(
    cursor: Annotated[str | None, Query(max_length=200, description="from the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Paging:
    """A coroutine: no I/O, so no trip through the thread pool."""
    return Paging(cursor=cursor, limit=limit)


PageParams = Annotated[Paging, Depends(paging)]


def next_cursor(found: Rows) -> str | None:
    return None if found.last_key is None else encode_cursor(found.last_key)


def paged(found: Rows, view: Callable[[Any], Any]) -> Page[Any]:
    """The page as the API returns it: each item through its view model, and the cursor to the next page."""
    return Page(items=[view(item) for item in found.items], next_cursor=next_cursor(found))
