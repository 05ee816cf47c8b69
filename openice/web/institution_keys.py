"""The institution portal's API keys (`/portal/keys`): an institution's admins list, create, rotate (the old secret
working for an overlap) and revoke their own institution's keys, through the API's own calls
(`/v1/institutions/{code}/keys`: the same checks, audit rows and idempotency). A key made here is always an
institution key of the signed-in person's institution; its secret is shown once. Another institution's key, or a key
of another role, is a 404."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import Response

from openice.access.keys import key_view
from openice.api import admin
from openice.api.deps import TransactionRoute
from openice.api.views import InstitutionKeyIn
from openice.tenancy import Role, Window
from openice.web.console import PAGE, overlap_hours_of
from openice.web.visit import Front, Visit, form_key, visit

router = APIRouter(prefix="/portal/keys", include_in_schema=False, route_class=TransactionRoute)
Institution = Annotated[Visit, Depends(visit(Front.PORTAL))]
KeyId = Annotated[str, Path(max_length=32)]


def _page(tx: Visit, status: int = 200, after: str = "", **context: Any) -> Response:
    code = tx.principal.tenant
    found = tx.scope.page("api_keys", Window(PAGE, after or None), role=Role.INSTITUTION.value, tenant=code)
    return tx.render(
        "portal/keys.html",
        status=status,
        keys=[key_view(row) for row in found.items],
        next_after=found.last_key,
        key=form_key(),
        overlap_hours=f"{tx.svc.settings.key_overlap_hours:g}",
        **context,
    )


@router.get("")
def keys(tx: Institution, after: Annotated[str, Query(max_length=64)] = "", done: str | None = None) -> Response:
    return _page(tx, after=after, done=done if done == "revoked" else None)


@router.post("")
def create_key(
    tx: Institution,
    label: Annotated[str, Form(max_length=200)] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """A new key of the institution, through the API's own call: a form posted twice makes one key and shows no
    secret the second time."""
    made: dict[str, Any] = {}
    with tx.attempt() as failed:
        body = InstitutionKeyIn(label=label.strip())
        made = admin.create_institution_key(tx.principal.tenant, body, key or form_key(), tx)
    if failed:
        return _page(tx, 422, error=failed[0], typed={"label": label})
    return _page(tx, made=made)


@router.post("/{key_id}/rotate")
def rotate_key(
    key_id: KeyId,
    tx: Institution,
    overlap_hours: Annotated[str, Form(max_length=16)] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """A new secret for one of the institution's keys, shown on this page only; the old one still works for the
    overlap typed."""
    admin.institution_key(tx, tx.principal.tenant, key_id)  # another institution's key is a 404, before any form check
    made: dict[str, Any] = {}
    with tx.attempt() as failed:
        hours = overlap_hours_of(tx, overlap_hours)
        made = admin.rotate_institution_key(tx.principal.tenant, key_id, key or form_key(), tx, hours)
    if failed:
        return _page(tx, 422, error=failed[0], error_key=key_id)
    return _page(tx, made={**made, "rotated": True})


@router.post("/{key_id}/revoke")
def revoke_key(key_id: KeyId, tx: Institution) -> Response:
    """Refused from now on, by every worker; audited."""
    admin.institution_key(tx, tx.principal.tenant, key_id)
    with tx.attempt() as failed:
        admin.revoke_institution_key(tx.principal.tenant, key_id, tx)
    if failed:
        return _page(tx, 422, error=failed[0], error_key=key_id)
    return tx.redirect("/portal/keys?done=revoked")
