"""Operator and read-only platform resources: API keys, the audit trail, products, the business date, model
packages and portfolio metrics."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from prometheus_client import Counter
from pydantic import BaseModel

from openice.access.keys import key_view
from openice.api.deps import IdempotencyKey, TransactionRoute, Tx, require
from openice.api.paging import PageParams, paged
from openice.api.views import ApiKeyCreated, ApiKeyIn, ApiKeyView, AuditView, Page, audit_view, reply
from openice.errors import NotFound, ValidationError
from openice.tenancy import Role

router = APIRouter(prefix="/v1", tags=["platform"], route_class=TransactionRoute)
METRIC_COMPUTATIONS = Counter(
    "openice_metric_computations_total",
    "Disclosure metric sets computed (requests that found one computed or under way wait)",
)
Operator = Annotated[Tx, Depends(require(Role.OPERATOR))]
Anyone = Annotated[Tx, Depends(require(*Role))]
Analyst = Annotated[Tx, Depends(require(Role.OPERATOR, Role.INSTITUTION))]


def _created(tx: Tx, key: str, operation: str, payload: dict[str, Any], make: Any) -> dict[str, Any]:
    """Key creation is idempotent, but the stored response never holds the secret: a replay returns secret=null."""
    shown: dict[str, Any] = {}

    def work() -> dict[str, Any]:
        shown.update(make())
        return {**shown, "secret": None}

    stored = tx.idempotent(key, operation, payload, work)
    return shown or stored


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreated)
def create_key(body: ApiKeyIn, key: IdempotencyKey, tx: Operator) -> Any:
    """A new key for a role and tenant. The secret is in this response only (null when the request is replayed)."""

    def make() -> dict[str, Any]:
        created = tx.keys.create(body.role, body.tenant, body.label, tx.principal.key_id)
        tx.audit("api_key.created", created["id"], {"role": body.role, "tenant": body.tenant})
        return created

    return _created(tx, key, "api_key.create", body.model_dump(), make)


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
    return _created(
        tx, key, "api_key.rotate", {"key_id": key_id, "overlap_hours": hours}, lambda: rotated(tx, key_id, hours)
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
