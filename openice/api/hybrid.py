"""The platform's side of the hybrid deployment: an institution that decides on its own premises pulls the signed
model packages and credit policy here, and pushes back its decisions' figures and their outcomes for monitoring.

Bundles are served as bytes with their signature in headers (`Openice-Signature`, `Openice-Key-Id`,
`Openice-Digest`); the public key to pin is at `/.well-known/openice-signing-key`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from openice.api.deps import IdempotencyKey, Services, TransactionRoute, Tx, require, services
from openice.api.views import reply
from openice.decisioning.hybrid import DecisionsPushed, Hybrid, OutcomesPushed
from openice.decisioning.policy import Policy
from openice.errors import NotFound
from openice.scoring.package import registry_package, registry_versions
from openice.scoring.signing import Signed, SigningKey, model_bundle, policy_bundle
from openice.tenancy import Role

router = APIRouter(prefix="/v1/hybrid", tags=["hybrid"], route_class=TransactionRoute)
well_known = APIRouter(tags=["hybrid"])
Institution = Annotated[Tx, Depends(require(Role.INSTITUTION))]
Watcher = Annotated[Tx, Depends(require(Role.OPERATOR, Role.INSTITUTION))]
SIGNED: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}}, "description": "the bundle, signed in its headers"}
}


class SigningKeyView(BaseModel):
    algorithm: str
    public_key: str
    key_id: str


class PackageEntry(BaseModel):
    version: int
    package_hash: str
    created_at: str
    champion: bool


class Pushed(BaseModel):
    received: int
    stored: int
    already: int


@lru_cache(maxsize=4)
def signing_key(path: str) -> SigningKey:
    return SigningKey.at(path)


def _key(svc: Services) -> SigningKey:
    if not svc.settings.signing_key:
        raise NotFound(
            "no signing key is configured for hybrid institutions (set signing_key or OPENICE_SIGNING_KEY)",
            field="signing_key",
        )
    return signing_key(svc.settings.signing_key)


def _registry(svc: Services) -> str:
    where = svc.settings.model_registry
    if not where or not (Path(where) / "registry.json").exists():
        raise NotFound(
            "no model registry is configured (set model_registry or OPENICE_MODEL_REGISTRY)", field="model_registry"
        )
    return where


def _signed(signed: Signed) -> Response:
    headers = {"Openice-Signature": signed.signature, "Openice-Key-Id": signed.key_id, "Openice-Digest": signed.sha256}
    return Response(signed.body, media_type="application/json", headers=headers)


@well_known.get("/.well-known/openice-signing-key", response_model=SigningKeyView)
def public_key(svc: Annotated[Services, Depends(services)]) -> Any:
    """The public key the platform signs hybrid bundles with, for an institution to pin at set-up (compare it with
    the one the platform's operator gives you out of band)."""
    key = _key(svc)
    return SigningKeyView(algorithm="ed25519", public_key=key.public_key, key_id=key.key_id)


@router.get("/packages", response_model=list[PackageEntry])
def packages(tx: Institution) -> Any:
    """The model packages of the platform's registry, the champion marked."""
    entries, champion = registry_versions(_registry(tx.svc))
    return [
        PackageEntry(
            version=e["version"],
            package_hash=e["package_hash"],
            created_at=str(e["created_at"]),
            champion=e["version"] == champion,
        )
        for e in entries
    ]


@router.get("/package", responses=SIGNED)
def package(tx: Institution, version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    """One registered model package (the champion unless `version` is given) as a signed bundle."""
    path, entry = registry_package(_registry(tx.svc), version)
    return _signed(_key(tx.svc).sign("model", model_bundle(path, entry["version"])))


def institution_policy(svc: Services, code: str) -> Policy:
    """The institution's own policy file in `hybrid_policies` when it has one, else the platform's policy."""
    folder = svc.settings.hybrid_policies
    for suffix in (".yaml", ".yml", ".json") if folder and Path(code).name == code else ():
        own = Path(str(folder)) / f"{code}{suffix}"
        if own.is_file():
            return Policy.load(own)
    return svc.policy or Policy()


@router.get("/policy", responses=SIGNED)
def policy(tx: Institution) -> Response:
    """The calling institution's credit policy as a signed bundle: its own when the platform keeps one for it
    (`hybrid_policies`), else the platform's."""
    chosen = institution_policy(tx.svc, tx.principal.tenant)
    return _signed(_key(tx.svc).sign("policy", policy_bundle(chosen.model_dump(mode="json"), chosen.policy_hash)))


def _pushed(tx: Tx, key: str, kind: str, body: DecisionsPushed | OutcomesPushed) -> Response:
    institution = tx.principal.tenant
    hybrid = Hybrid(tx.joined)

    def work() -> dict[str, Any]:
        counts = (
            hybrid.record_decisions(institution, body)
            if isinstance(body, DecisionsPushed)
            else hybrid.record_outcomes(institution, body)
        )
        tx.audit(f"hybrid.{kind}_pushed", f"institution/{institution}", counts)
        return counts

    return reply(tx.idempotent(key, f"hybrid.{kind}", body.model_dump(mode="json"), work), 201)


@router.post("/decisions", status_code=201, response_model=Pushed)
def push_decisions(body: DecisionsPushed, key: IdempotencyKey, tx: Institution) -> Any:
    """Decisions the institution made on its premises: figures and hashes only; any other field is refused. A
    decision pushed again with the same figures counts as `already`."""
    return _pushed(tx, key, "decisions", body)


@router.post("/outcomes", status_code=201, response_model=Pushed)
def push_outcomes(body: OutcomesPushed, key: IdempotencyKey, tx: Institution) -> Any:
    """Whether each decision's loan was bad or good at a month on book; its decision must have been pushed."""
    return _pushed(tx, key, "outcomes", body)


@router.get("/monitoring", response_model=dict[str, Any])
def monitoring(tx: Watcher, institution: Annotated[str | None, Query(max_length=64)] = None) -> Any:
    """Score stability (PSI against the package's training reference) and, where outcomes came back, bad rate and
    AUC by month, per model the institution decided with. An institution sees its own; an operator names one."""
    own = tx.principal.tenant if tx.principal.role is Role.INSTITUTION else None
    chosen = institution or own
    if chosen is None or (own is not None and chosen != own):
        raise NotFound(f"no hybrid institution {chosen!r}" if chosen else "name the institution", field="institution")
    return reply(Hybrid(tx.joined).monitoring(tx.scope, chosen, tx.svc.settings.model_registry))
