"""The services one app holds, and the FastAPI dependencies every router uses: who is calling, in which tenant,
with which idempotency key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from openice.api.keys import ApiKeys, Principal, RateLimiter, Role
from openice.api.records import Audit, IdempotentCreates
from openice.api.settings import Settings
from openice.api.tenancy import Scope
from openice.decisioning.anomaly import AnomalyModel
from openice.decisioning.pii import PiiVault
from openice.decisioning.policy import Policy
from openice.decisioning.scorer import ScorerLike
from openice.decisioning.service import Decisioning
from openice.matching.service import Matching
from openice.servicing.service import Servicing


@dataclass
class Services:
    """Built once per worker; the domain services are stateless over the engine."""

    settings: Settings
    engine: Engine
    scorer: ScorerLike | None = None
    anomaly: AnomalyModel | None = None
    vault_override: PiiVault | None = None

    @cached_property
    def vault(self) -> PiiVault:
        return self.vault_override or PiiVault.from_env()

    @cached_property
    def servicing(self) -> Servicing:
        return Servicing(self.engine)

    @cached_property
    def decisioning(self) -> Decisioning:
        policy = Policy.load(self.settings.policy) if self.settings.policy else None
        return Decisioning(self.engine, self.scorer, self.vault, policy, anomaly=self.anomaly)

    @cached_property
    def matching(self) -> Matching:
        return Matching(self.engine, self.vault, servicing=self.servicing)

    @cached_property
    def keys(self) -> ApiKeys:
        return ApiKeys(self.engine)

    @cached_property
    def limiter(self) -> RateLimiter:
        return RateLimiter(self.settings.rate_limit_per_second, self.settings.rate_limit_burst)

    @cached_property
    def creates(self) -> IdempotentCreates:
        return IdempotentCreates(self.engine)

    @cached_property
    def audit(self) -> Audit:
        return Audit(self.engine)

    @contextmanager
    def scope(self, principal: Principal) -> Iterator[Scope]:
        """A short read-only transaction filtered to the caller's tenant."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(openice_readonly=True)
            with conn.begin():
                yield Scope(conn, principal)

    def owned(self, principal: Principal, resource: str, ident: Any, field: str) -> Any:
        """The caller's row, read and released before a write, so a request never holds two connections."""
        with self.scope(principal) as scope:
            return scope.get(resource, ident, field)


BEARER = HTTPBearer(auto_error=False, description="An API key made by `openice api-key create` or POST /v1/api-keys")


def services(request: Request) -> Services:
    return request.app.state.services


def authenticate(request: Request, svc: Annotated[Services, Depends(services)],
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> Principal:
    """The caller's key from `Authorization: Bearer <key>`; unknown or revoked keys get 401, busy ones 429."""
    principal = svc.keys.authenticate(credentials.credentials) if credentials else None
    if principal is None:
        raise HTTPException(401, "a valid API key is required: Authorization: Bearer <key>",
                            headers={"WWW-Authenticate": "Bearer"})
    wait = svc.limiter.allow(principal.key_id)
    if wait:
        raise HTTPException(429, f"rate limit of {svc.settings.rate_limit_per_second:g} requests/s for this key",
                            headers={"Retry-After": str(max(1, round(wait)))})
    request.state.principal = principal
    return principal


Caller = Annotated[Principal, Depends(authenticate)]
Svc = Annotated[Services, Depends(services)]


def require(*roles: Role) -> Callable[..., Principal]:
    """Only these roles may call the operation (403 for the others)."""

    def check(principal: Caller) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, f"this operation is for {', '.join(r.value for r in roles)} keys")
        return principal

    return check


def read_scope(principal: Caller, svc: Svc) -> Iterator[Scope]:
    """For reads: the tenant-filtered transaction lives as long as the request."""
    with svc.scope(principal) as scope:
        yield scope


ReadScope = Annotated[Scope, Depends(read_scope)]
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=128,
                                       pattern=r"^[A-Za-z0-9._:-]+$",
                                       description="Same key and body replay the first response; "
                                                   "same key with another body is 409")]


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "-")


def audit(request: Request, svc: Services, principal: Principal, action: str, resource: str,
          detail: dict[str, Any]) -> None:
    svc.audit.record(principal, request_id(request), action, resource, detail)
