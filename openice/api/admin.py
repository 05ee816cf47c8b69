"""Operator and read-only platform resources: tenants onboarded in one step, API keys, the audit trail, products,
the business date, model packages and portfolio metrics."""

from __future__ import annotations

import json
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from prometheus_client import Counter
from pydantic import BaseModel, Field

from openice.access.keys import key_view
from openice.api.deps import IdempotencyKey, TransactionRoute, Tx, require
from openice.api.paging import PageParams, paged
from openice.api.views import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyView,
    AuditView,
    InstitutionKeyIn,
    Page,
    audit_view,
    reply,
)
from openice.errors import NotFound, ValidationError
from openice.matching.institutions import TypedInstitution
from openice.tenancy import Role
from openice.tenants import Decides, definition, onboard_on

router = APIRouter(prefix="/v1", tags=["platform"], route_class=TransactionRoute)
METRIC_COMPUTATIONS = Counter(
    "openice_metric_computations_total",
    "Disclosure metric sets computed (requests that found one computed or under way wait)",
)
Operator = Annotated[Tx, Depends(require(Role.OPERATOR))]
Anyone = Annotated[Tx, Depends(require(*Role))]
Analyst = Annotated[Tx, Depends(require(Role.OPERATOR, Role.INSTITUTION))]
InstitutionAdmin = Annotated[Tx, Depends(require(Role.OPERATOR, Role.INSTITUTION))]


def _new_key(tx: Tx, role: str, tenant: str, label: str) -> dict[str, Any]:
    """Create and audit (the operators' route and an institution's own)."""
    created = tx.keys.create(role, tenant, label, tx.principal.key_id)
    tx.audit("api_key.created", created["id"], {"role": role, "tenant": tenant})
    return created


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreated)
def create_key(body: ApiKeyIn, key: IdempotencyKey, tx: Operator) -> Any:
    """A new key for a role and tenant. The secret is in this response only (null when the request is replayed)."""
    make = partial(_new_key, tx, body.role, body.tenant, body.label)
    return tx.idempotent_secret(key, "api_key.create", body.model_dump(), make)


class TenantIn(BaseModel):
    institution: TypedInstitution = Field(
        description="its definition: credit box, quotas (major units of its currency, the book's when left out), "
        "pricing, business model, kind"
    )
    admin_email: str = Field(max_length=254, description="its portal administrator's e-mail, their sign-in name")
    decides: Decides | None = Field(
        default=None,
        description="auto (its credit box, at once) | webhook (its system, at the definition's webhook_url) | "
        "portal (a person); default: the definition's acceptance",
    )


class TenantSecrets(BaseModel):
    api_key_secret: str
    webhook_secret: str
    set_password_token: str = Field(description="the administrator sets a first password at /portal/reset?token=...")


class TenantCreated(BaseModel):
    institution: str
    acceptance: str
    definition: TypedInstitution = Field(description="as stored, in major units of its currency")
    admin_id: str
    admin_username: str
    api_key_id: str
    secrets: TenantSecrets | None = Field(description="in this response only: null when the request is replayed")


@router.post("/tenants", status_code=201, response_model=TenantCreated)
def onboard_tenant(body: TenantIn, key: IdempotencyKey, tx: Operator) -> Any:
    """Onboard an institution in one step (as `openice tenant onboard`): its definition, its portal administrator,
    an API key and its webhook signing secret, in this request's transaction. An institution that exists already is
    a 409 and changes nothing; on-premise, so is any institution but its own."""
    inst = body.institution
    made = definition(inst.model_dump(mode="json"), inst.code, body.decides, None)

    def make() -> dict[str, Any]:
        done = onboard_on(tx.conn, made, body.admin_email, lambda: tx.svc.vault, tx.principal, tx.request_id)
        return {
            "institution": made.code,
            "acceptance": made.acceptance,
            "definition": done.institution.model_dump(mode="json"),
            "admin_id": done.admin["id"],
            "admin_username": done.admin["username"],
            "api_key_id": done.key_id,
            "secrets": {
                "api_key_secret": done.key_secret,
                "webhook_secret": done.webhook_secret,
                "set_password_token": done.reset_token,
            },
        }

    return tx.idempotent_secret(key, "tenant.onboard", body.model_dump(mode="json"), make, "secrets")


@router.get("/api-keys", response_model=Page[ApiKeyView])
def list_keys(
    tx: Anyone,
    page: PageParams,
    role: Annotated[str | None, Query(max_length=16)] = None,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    return paged(tx.scope.page("api_keys", page, role=role, tenant=tenant), key_view)


@router.get("/api-keys/{key_id}", response_model=ApiKeyView)
def get_key(key_id: str, tx: Anyone) -> Any:
    return key_view(tx.scope.get("api_keys", key_id, "key_id"))


@router.post("/api-keys/{key_id}/rotation", status_code=201, response_model=ApiKeyCreated)
def rotate_key(
    key_id: str,
    key: IdempotencyKey,
    tx: Operator,
    overlap_hours: Annotated[float | None, Query(ge=0, le=720)] = None,
) -> Any:
    """A new secret for the same key: the previous one still works for `overlap_hours` (default: the service's
    `key_overlap_hours`; 0 refuses it at once). The secret is in this response only (null when replayed)."""
    hours = tx.svc.settings.key_overlap_hours if overlap_hours is None else overlap_hours
    return tx.idempotent_secret(
        key, "api_key.rotate", {"key_id": key_id, "overlap_hours": hours}, lambda: rotated(tx, key_id, hours)
    )


def rotated(tx: Tx, key_id: str, overlap_hours: float) -> dict[str, Any]:
    """Rotate and audit (the API's route and the console's keys page)."""
    done = tx.keys.rotate(key_id, timedelta(hours=overlap_hours))
    tx.audit("api_key.rotated", key_id, {"overlap_hours": overlap_hours, "previous_until": done["previous_until"]})
    return done


@router.post("/api-keys/{key_id}/revocation", response_model=ApiKeyView)
def revoke_key(key_id: str, tx: Operator) -> Any:
    """Revoke a key at once (revoking twice is refused, so a typo in the id is noticed)."""
    revoked = tx.keys.revoke(key_id)
    tx.audit("api_key.revoked", key_id, {})
    return revoked


# An institution's own keys: its admins (and operators) list, create, rotate and revoke the institution keys of that
# institution, and nothing else. The institution is read through the caller's scope (another one's is a 404), and so
# is the key, which must be an institution key of that institution (any other is a 404 too).


def own_institution(tx: Tx, code: str) -> None:
    """The caller's institution (an operator's: any); another institution is missing."""
    tx.scope.get("institutions", code, "code")


def institution_key(tx: Tx, code: str, key_id: str) -> Any:
    """One of the institution's own keys, or NotFound: a key of another institution, of another role or of no one
    is missing alike."""
    own_institution(tx, code)
    row = tx.scope.get("api_keys", key_id, "key_id")
    if row.role != Role.INSTITUTION.value or row.tenant != code:
        raise NotFound(f"no api key {key_id!r}", field="key_id")
    return row


@router.get("/institutions/{code}/keys", response_model=Page[ApiKeyView])
def list_institution_keys(code: str, tx: InstitutionAdmin, page: PageParams) -> Any:
    """The institution's own API keys (institution keys of that institution); never a secret."""
    own_institution(tx, code)
    return paged(tx.scope.page("api_keys", page, role=Role.INSTITUTION.value, tenant=code), key_view)


@router.post("/institutions/{code}/keys", status_code=201, response_model=ApiKeyCreated)
def create_institution_key(code: str, body: InstitutionKeyIn, key: IdempotencyKey, tx: InstitutionAdmin) -> Any:
    """A new institution key of this institution (the role and tenant are the path's, never the caller's choice). The
    secret is in this response only (null when the request is replayed)."""
    own_institution(tx, code)
    payload = {"role": Role.INSTITUTION.value, "tenant": code, "label": body.label}
    make = partial(_new_key, tx, Role.INSTITUTION.value, code, body.label)
    return tx.idempotent_secret(key, "api_key.create", payload, make)


@router.post("/institutions/{code}/keys/{key_id}/rotation", status_code=201, response_model=ApiKeyCreated)
def rotate_institution_key(
    code: str,
    key_id: str,
    key: IdempotencyKey,
    tx: InstitutionAdmin,
    overlap_hours: Annotated[float | None, Query(ge=0, le=720)] = None,
) -> Any:
    """As `POST /v1/api-keys/{key_id}/rotation`, for one of the institution's own keys."""
    institution_key(tx, code, key_id)
    return rotate_key(key_id, key, tx, overlap_hours)


@router.post("/institutions/{code}/keys/{key_id}/revocation", response_model=ApiKeyView)
def revoke_institution_key(code: str, key_id: str, tx: InstitutionAdmin) -> Any:
    """As `POST /v1/api-keys/{key_id}/revocation`, for one of the institution's own keys."""
    institution_key(tx, code, key_id)
    return revoke_key(key_id, tx)


@router.get("/audit", response_model=Page[AuditView])
def list_audit(tx: Operator, page: PageParams, action: Annotated[str | None, Query(max_length=64)] = None) -> Any:
    return paged(tx.scope.page("audit_log", page, action=action), audit_view)


class BusinessDate(BaseModel):
    business_date: date


@router.get("/business-date", response_model=BusinessDate)
def business_date(tx: Anyone) -> Any:
    return BusinessDate(business_date=tx.servicing.business_date())


@router.get("/products", response_model=list[dict[str, Any]])
def products(tx: Anyone) -> Any:
    """Every loan product, its money (`min_principal`, `max_principal`, `referral_fee_flat`) as decimal strings of
    major units in its currency, as its file types them."""
    return [json.loads(json.dumps(p.typed_dict(), default=str)) for p in tx.servicing.products()]


class ModelPackage(BaseModel):
    version: int
    path: str
    package_hash: str
    created_at: str
    champion: bool
    metrics: dict[str, Any]


def _registry(tx: Tx) -> dict[str, Any]:
    where = tx.svc.settings.model_registry
    if not where or not (Path(where) / "registry.json").exists():
        raise NotFound(
            "no model registry is configured (set model_registry or OPENICE_MODEL_REGISTRY)", field="model_registry"
        )
    return json.loads((Path(where) / "registry.json").read_text())


def _packages(reg: dict[str, Any]) -> list[ModelPackage]:
    return [
        ModelPackage(
            version=p["version"],
            path=p["path"],
            package_hash=p["package_hash"],
            created_at=str(p["created_at"]),
            champion=p["version"] == reg["champion"],
            metrics=p.get("metrics", {}),
        )
        for p in reg["packages"]
    ]


@router.get("/models", response_model=list[ModelPackage])
def models(tx: Operator) -> Any:
    """Registered scoring model packages (read-only; train and promote with `openice model`)."""
    return _packages(_registry(tx))


@router.get("/models/champion", response_model=ModelPackage)
def champion(tx: Operator) -> Any:
    found = [p for p in _packages(_registry(tx)) if p.champion]
    if not found:
        raise NotFound("the registry has no champion", field="model_registry")
    return found[0]


@router.get("/portfolio/metrics", response_model=dict[str, Any])
def portfolio_metrics(
    tx: Analyst,
    quarter: Annotated[str, Query(pattern=r"^[0-9]{4}Q[1-4]$", examples=["2026Q1"])],
    as_of: date | None = None,
    collection_window: Annotated[
        str,
        Query(
            description="calendar-month (default) or 30-days: how long after its due date a "
            "repayment counts for the 30-day collection rate"
        ),
    ] = "calendar-month",
) -> Any:
    """Disclosure metrics for a quarter, up to the book's last closed business day (the business date minus one):
    a quarter or as-of date after it is refused; a quarter running past it is marked partly closed. An institution
    gets only the rows split by institution that are its own."""
    return reply(quarter_metrics(tx, quarter, as_of, collection_window))  # plain JSON already: not validated again


def quarter_metrics(tx: Tx, quarter: str, as_of: date | None, collection_window: str) -> dict[str, Any]:
    """The metric set of `GET /v1/portfolio/metrics` for this caller, which the console's KPI page draws too. The
    request's transaction is released before the figures are computed (analytics reads through a connection of its
    own); bad input is refused before that."""
    from openice.analytics import service as analytics
    from openice.analytics.backends import book_version
    from openice.analytics.definitions import CollectionWindow
    from openice.analytics.metrics import Period, closed_as_of

    try:
        period = Period.quarter(quarter)
    except ValueError as exc:  # the pattern lets through years the calendar has not (0000)
        raise ValidationError(str(exc), field="quarter") from None
    window = CollectionWindow.parse(collection_window)
    closed = tx.servicing.business_date() - timedelta(days=1)
    as_of = closed_as_of(period, as_of, closed, period_field="quarter")  # refused before any snapshot is taken
    own, engine = tx.principal.role is Role.INSTITUTION, tx.svc.engine
    tx.release()  # analytics reads through a connection of its own

    def computed() -> dict[str, Any]:
        METRIC_COMPUTATIONS.inc()
        return analytics.portfolio_metrics(engine, period, as_of, own, window, closed)

    # One computation however many ask at once: keyed by everything the figures depend on (institutions share the
    # split by institution, and each keeps only its own rows of it below).
    key = (own, period, as_of, window, closed, book_version(engine))
    result = tx.svc.metrics_cache.get(key, computed)
    if own:
        result = {
            **result,
            "metrics": {
                name: {
                    **metric,
                    "rows": [r for r in metric["rows"] if r["group"].get("institution") == tx.principal.tenant],
                }
                for name, metric in result["metrics"].items()
            },
        }
    return result
