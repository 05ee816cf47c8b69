"""Errors every layer understands: they name the field and say why, so the CLI and API can
tell the user exactly what to fix."""

from __future__ import annotations


class OpeniceError(Exception):
    """Base of all domain errors."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

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
