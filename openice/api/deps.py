"""The services one app holds, and the FastAPI dependencies every router uses: who is calling, in which tenant,
with which idempotency key, inside the request's one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, partial, wraps
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Engine

from openice.access.audit import record_audit, record_expiries
from openice.access.keys import ApiKeys
from openice.api.inputs import body_errors, parameter_errors
from openice.api.rate_limit import RateLimiter
from openice.api.settings import Settings
from openice.api.single_flight import SingleFlight
from openice.collections.service import Collections
from openice.decisioning.anomaly import AnomalyModel
from openice.decisioning.pii import PiiVault
from openice.decisioning.policy import Policy
from openice.decisioning.scorer_protocol import ScorerLike
from openice.decisioning.service import Decisioning
from openice.idempotency import Idempotency
from openice.matching.gateway import Webhooks
from openice.matching.service import Matching
from openice.servicing.payments import PaymentGateway, gateway
from openice.servicing.service import Servicing
from openice.storage.uow import EngineUnits, JoinedUnits
from openice.tenancy import Principal, Role, Scope


@dataclass
class Services:
    """Built once per worker: settings, the engine, the loaded models; requests bind services to their connection."""

    settings: Settings
    engine: Engine
    scorer: ScorerLike | None = None
    anomaly: AnomalyModel | None = None
    vault_override: PiiVault | None = None

    @cached_property
    def vault(self) -> PiiVault:
        return self.vault_override or PiiVault.from_env()

    @cached_property
    def policy(self) -> Policy | None:
        return Policy.load(self.settings.policy) if self.settings.policy else None

    @cached_property
    def decisioning(self) -> Decisioning:
        """The worker's own instance: it fits the anomaly model once; requests reuse the fitted one."""
        return Decisioning(EngineUnits(self.engine), self.scorer, self.vault, self.policy, anomaly=self.anomaly)

    @cached_property
    def payments(self) -> PaymentGateway:
        return gateway(self.settings.payments)

    @cached_property
    def metrics_cache(self) -> SingleFlight:
        return SingleFlight()

    @cached_property
    def reports_cache(self) -> SingleFlight:
        """Rendered quarterly reports (megabytes of PDF each): a few, keyed by the book's version."""
        return SingleFlight(size=8)

    @cached_property
    def monitoring_cache(self) -> SingleFlight:
        """The champion's monitoring, keyed by its package and the version of the decisions and loans it reads."""
        return SingleFlight(size=4)

    @cached_property
    def limiter(self) -> RateLimiter:
        return RateLimiter(self.settings.rate_limit_per_second, self.settings.rate_limit_burst)

    def sweep_offers(self) -> int:
        """Expire the offers past their deadline, each with its drawdown's next step and its audit row in a
        transaction of its own (as a request would run it): one that fails is retried by the next sweep without
        holding up the others. The audit rows carry the service as actor and the sweep's own request id."""
        moved, sweep_id = 0, f"offer-sweep-{uuid.uuid4().hex[:12]}"
        for offer in Matching(EngineUnits(self.engine), self.vault).expired_offers():
            with self.engine.connect() as conn, conn.begin():
                done = Matching(JoinedUnits(conn), self.vault).expire(offer)
                if done is not None:
                    record_expiries(conn, sweep_id, [done])
                    moved += 1
        return moved


@dataclass
class Tx:
    """One request: how to find its caller (an API key, a web session) and the roles the operation allows, then
    (inside `opened`) its connection and transaction, the authenticated caller, and the services bound to that
    transaction. Operations reach tenant-owned rows only through `scope` (the query functions of the stages take it)
    or services that take the caller."""

    svc: Services
    request_id: str
    authenticate: Callable[[Connection], Principal | None]  # the caller behind a key or a web session
    roles: tuple[Role, ...]
    readonly: bool
    conn: Connection = field(init=False)
    principal: Principal = field(init=False)
    booking: Callable[[dict[str, Any]], None] | None = field(default=None, init=False)  # armed by `book`

    @contextmanager
    def opened(self) -> Iterator[Tx]:
        """Authenticate on the request's one connection and hold one transaction around the operation: committed
        when it returns (before the response is sent), rolled back when it raises. Reads run read-only. Unknown or
        revoked keys get 401, busy ones 429, other roles 403."""
        with self.svc.engine.connect() as conn:
            if self.readonly:
                conn = conn.execution_options(openice_readonly=True)
            with conn.begin():
                principal = self.authenticate(conn)
                if principal is None:
                    raise _unauthenticated()
                wait = self.svc.limiter.allow(principal.key_id)
                if wait:
                    raise HTTPException(
                        429,
                        f"rate limit of {self.svc.settings.rate_limit_per_second:g} requests/s for this key",
                        headers={"Retry-After": str(max(1, round(wait)))},
                    )
                if principal.role not in self.roles:
                    raise HTTPException(403, f"this operation is for {', '.join(r.value for r in self.roles)} keys")
                self.conn, self.principal = conn, principal
                yield self

    @cached_property
    def joined(self) -> JoinedUnits:
        return JoinedUnits(self.conn)

    @cached_property
    def scope(self) -> Scope:
        """The caller's window on the request's transaction: every read through it carries the tenant filter."""
        return Scope(self.conn, self.principal)

    @cached_property
    def servicing(self) -> Servicing:
        return Servicing(self.joined, booked=self._booked)

    def _booked(self, _operation: str, result: dict[str, Any]) -> None:
        if self.booking is not None:
            self.booking(result)

    def book(
        self,
        action: str,
        resource: str,
        call: Callable[[], dict[str, Any]],
        detail: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Run a money call of `servicing` whose audit row is written inside the call's own unit of work when it
        books, and not when its idempotency key replays an earlier result: one row per action, whatever the
        retries. The row's detail is the booked transaction's id unless `detail` says otherwise."""
        what = detail or (lambda done: {"transaction_id": done["transaction_id"]})
        self.booking = lambda done: self.audit(action, resource, what(done))
        try:
            return call()
        finally:
            self.booking = None

    @cached_property
    def decisioning(self) -> Decisioning:
        svc = self.svc
        anomaly = svc.decisioning.anomaly if svc.scorer is not None else svc.anomaly
        return Decisioning(self.joined, svc.scorer, svc.vault, svc.policy, anomaly=anomaly)

    @cached_property
    def matching(self) -> Matching:
        return Matching(self.joined, self.svc.vault)

    @cached_property
    def webhooks(self) -> Webhooks:
        return Webhooks(self.joined, lambda: self.svc.vault)

    @cached_property
    def collections(self) -> Collections:
        return Collections(self.joined)

    @cached_property
    def keys(self) -> ApiKeys:
        return ApiKeys(self.joined)

    def collect(
        self, action: str, loan: Any, amount: int, key: str, call: Callable[[], dict[str, Any]], **detail: Any
    ) -> dict[str, Any]:
        """A payment taken through the payment gateway: booked by `call`, then collected inside the booking's own
        unit of work, and audited as `action` with the gateway's reference (and `detail`). A declined payment
        raises, so the booking rolls back with it; a replay of the key neither books nor collects again."""

        def collected(done: dict[str, Any]) -> dict[str, Any]:
            receipt = self.svc.payments.collect(loan.id, amount, loan.currency, key)
            return {"transaction_id": done["transaction_id"], "payment": receipt.reference, **detail}

        return self.book(action, f"loan/{loan.id}", call, collected)

    def idempotent(
        self, key: str, operation: str, payload: dict[str, Any], work: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """A create the domain services do not make idempotent themselves, under the caller's Idempotency-Key:
        claimed, done (with its audit row) and answered in the request's transaction, replayed after."""
        return Idempotency(self.conn).run(self.principal.scoped(key), operation, payload, work)

    def idempotent_secret(
        self,
        key: str,
        operation: str,
        payload: dict[str, Any],
        make: Callable[[], dict[str, Any]],
        shown_once: str = "secret",
    ) -> dict[str, Any]:
        """`idempotent` for a create that shows a secret once: the stored response never holds it, so a replay
        answers with the `shown_once` field null (and the secret is not kept anywhere in clear)."""
        shown: dict[str, Any] = {}

        def work() -> dict[str, Any]:
            shown.update(make())
            return {**shown, shown_once: None}

        stored = self.idempotent(key, operation, payload, work)
        return shown or stored

    def audit(self, action: str, resource: str, detail: dict[str, Any]) -> None:
        """In the request's transaction: the audit row commits with the action it records, or neither does."""
        record_audit(self.conn, self.principal, self.request_id, action, resource, detail)

    def record_expiries(self, expired: list[dict[str, Any]]) -> None:
        """The offers a request found past their deadline, audited in its transaction with the service as actor."""
        record_expiries(self.conn, self.request_id, expired)

    def release(self) -> None:
        """End the transaction and give the connection back before work that opens its own (analytics)."""
        self.conn.commit()
        self.conn.close()


BEARER = HTTPBearer(auto_error=False, description="An API key made by `openice api-key create` or POST /v1/api-keys")


async def services(request: Request) -> Services:
    return request.app.state.services


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "-")


def by_key(secret: str, conn: Connection) -> Principal | None:
    return ApiKeys(JoinedUnits(conn)).authenticate(secret)


def _unauthenticated() -> HTTPException:
    return HTTPException(
        401, "a valid API key is required: Authorization: Bearer <key>", headers={"WWW-Authenticate": "Bearer"}
    )


def require(*roles: Role) -> Callable[..., Any]:
    """The dependency of an operation only these roles may call. It does no I/O, so it runs on the event loop: a
    request without a key is refused at once, then one with input no operation accepts (`openice.api.inputs`), and
    `TransactionRoute` checks the key and the role in the operation's own trip through the thread pool."""

    async def transaction(
        request: Request,
        svc: Annotated[Services, Depends(services)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Tx:
        if credentials is None:
            raise _unauthenticated()
        errors = parameter_errors(request.path_params, request.query_params.multi_items())
        body = await request.body()  # read once already by the operation's own parsing
        if body:
            errors += body_errors(body)
        if errors:
            raise RequestValidationError(errors)
        return Tx(
            svc, request_id(request), partial(by_key, credentials.credentials), roles, request.method in ("GET", "HEAD")
        )

    return transaction


class TransactionRoute(APIRoute):
    """A route whose operation runs inside its request's transaction (`Tx.opened`), all in one trip through the
    thread pool: authenticating, the operation and the commit used to take three. Every operation on such a router
    takes its `Tx` as `tx`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        @wraps(endpoint)
        def in_transaction(**arguments: Any) -> Any:
            with arguments["tx"].opened():
                return endpoint(**arguments)

        super().__init__(path, in_transaction, **kwargs)


IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Same key and body replay the first response; same key with another body is 409",
    ),
]
