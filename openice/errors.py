"""Errors every layer understands: they name the field and say why, so the CLI and API can
tell the user exactly what to fix, and the pages can say it in the reader's language."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple


class Amount(NamedTuple):
    """An amount an error quotes, in minor units with its currency: each language writes it its own way."""

    minor: int
    currency: str


class OpeniceError(Exception):
    """Base of all domain errors.

    `code` is the kind (it picks the API's status); `reason` is a stable name of this particular cause, which a page
    translates through its catalogs (key `error.<reason>`, filled with `values`), falling back to the English
    `message` for a cause it has no words for."""

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        reason: str | None = None,
        values: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.reason = reason
        self.values = dict(values or {})

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ValidationError(OpeniceError):
    """Bad input: a field has a wrong type, range or an impossible value."""

    code = "validation_error"


class NotFound(OpeniceError):
    code = "not_found"


class Forbidden(OpeniceError):
    """The caller may not do this, whatever the input (a borrower backdating a payment, ...)."""

    code = "forbidden"


class Unauthenticated(OpeniceError):
    """The caller did not prove who it is (a signed callback whose signature is wrong, stale or already used)."""

    code = "unauthenticated"


class Unavailable(OpeniceError):
    """The service is not configured to do this now (no PII key, ...): the operator must fix it, not the caller."""

    code = "unavailable"


class Conflict(OpeniceError):
    """The request clashes with current state (closed loan, reused idempotency key, ...)."""

    code = "conflict"
