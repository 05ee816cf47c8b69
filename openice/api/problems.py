"""RFC 9457 problem+json for every error, naming the field and the reason, so a client knows what to fix."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError
from starlette.exceptions import HTTPException

from openice.errors import OpeniceError

log = logging.getLogger("openice.api")
MEDIA_TYPE = "application/problem+json"
STATUS = {
    "validation_error": 422,
    "not_found": 404,
    "conflict": 409,
    "forbidden": 403,
    "unauthenticated": 401,
    "unavailable": 503,
    "error": 400,
}
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class FieldError(BaseModel):
    field: str
    reason: str


class Problem(BaseModel):
    """The error body: `field` and `detail` say which input is wrong and why."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


def problem(
    status: int,
    detail: str,
    *,
    field: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    slug = TITLES.get(status, "Error").lower().replace(" ", "-")
    body = Problem(
        type=f"/problems/{slug}",
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=instance,
        field=field,
        request_id=request_id,
        errors=[FieldError(**e) for e in errors] if errors else None,
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _context(request: Request) -> dict[str, Any]:
    return {"instance": request.url.path, "request_id": getattr(request.state, "request_id", None)}


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "request")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into a problem document."""

    @app.exception_handler(OpeniceError)
    async def _domain(request: Request, exc: OpeniceError) -> JSONResponse:
        return problem(STATUS.get(exc.code, 400), exc.message, field=exc.field, **_context(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _loc(tuple(e.get("loc", ()))), "reason": str(e.get("msg", "invalid"))} for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "request", "reason": "invalid"}
        return problem(
            422, f"{first['field']}: {first['reason']}", field=first["field"], errors=errors, **_context(request)
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), headers=exc.headers, **_context(request))

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity error on %s: %s", request.url.path, type(exc.orig).__name__)
        return problem(409, "the request clashes with a concurrent change; retry", **_context(request))

    @app.exception_handler(OperationalError)
    async def _busy(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable on %s: %s", request.url.path, type(exc.orig).__name__)
        return problem(
            503, "the database is busy or unreachable; retry", headers={"Retry-After": "1"}, **_context(request)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, StatementError):  # the statement stays in the log; its parameters may be a caller's data
            exc.hide_parameters = True
        log.exception("unhandled error on %s", request.url.path)
        return problem(500, "internal error; quote the request id when reporting it", **_context(request))
