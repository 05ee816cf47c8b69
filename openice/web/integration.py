"""The institution portal's integration page (`/portal/integration`): how the platform reaches the institution's
own systems. It shows how offers are answered, where events go and which, the circuit breaker's state, the latest
deliveries and the dead letters; the institution changes its endpoint and its events through the API's own call,
and rotates its signing secret, shown once."""

from __future__ import annotations

import time
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response
from pydantic import ValidationError as ModelError

from openice.api.deps import TransactionRoute
from openice.api.funding import update_institution
from openice.api.gateway import rotated_secret
from openice.errors import ValidationError
from openice.matching import queries as matching
from openice.matching.gateway import SECRET_OVERLAP_HOURS
from openice.matching.webhooks import Event
from openice.web.visit import Front, Visit, visit

router = APIRouter(prefix="/portal/integration", include_in_schema=False, route_class=TransactionRoute)
Institution = Annotated[Visit, Depends(visit(Front.PORTAL))]
EVENTS: tuple[str, ...] = get_args(Event)
OVERLAP_HOURS = SECRET_OVERLAP_HOURS  # the old secret keeps working this long, while the institution switches over


def _page(tx: Visit, status: int = 200, **context: Any) -> Response:
    code = tx.principal.tenant
    return tx.render(
        "portal/integration.html",
        status=status,
        institution=matching.institution(tx.scope, code),
        status_of=tx.webhooks.status(code, time.time()),
        events=EVENTS,
        overlap_hours=OVERLAP_HOURS,
        **context,
    )


@router.get("")
def integration(tx: Institution, done: str | None = None) -> Response:
    return _page(tx, done=done)


@router.post("")
def save_endpoint(
    tx: Institution,
    webhook_url: Annotated[str, Form(max_length=500)] = "",
    events: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Its endpoint and the events it takes, saved through the API's own call (same checks, same audit row)."""
    code = tx.principal.tenant
    typed = {"webhook_url": webhook_url, "events": events or []}
    with tx.attempt() as failed:
        unknown = [e for e in typed["events"] if e not in EVENTS]
        if unknown:
            raise ValidationError(tx.words("integration.error.event", event=unknown[0]), field="events")
        current = matching.institution(tx.scope, code)
        data = {**current.model_dump(), "webhook_url": webhook_url.strip() or None, "events": tuple(typed["events"])}
        try:
            changed = type(current).model_validate(data)
        except ModelError as bad:
            where = bad.errors()[0]["loc"]
            if not where:  # the model's own rule: a webhook institution needs an address
                raise ValidationError(tx.words("integration.error.acceptance"), field="webhook_url") from None
            field = str(where[0])
            raise ValidationError(tx.words(f"integration.error.{field}"), field=field) from None
        update_institution(tx, code, changed)
    if failed:
        return _page(tx, 422, error=failed[0], typed=typed)
    return tx.redirect("/portal/integration?done=saved")


@router.post("/secret")
def rotate_secret(tx: Institution) -> Response:
    """A new signing secret, shown on this answer only; the previous one is still accepted for a day."""
    code = tx.principal.tenant
    return _page(tx, secret=rotated_secret(tx, code, OVERLAP_HOURS)["secret"])
