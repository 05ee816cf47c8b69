"""What the service itself records: stored responses of idempotent creates, and the append-only audit trail."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from openice.api.keys import Principal
from openice.errors import Conflict
from openice.storage import api_tables as a
from openice.storage.uow import now_iso


def request_hash(operation: str, payload: Any) -> str:
    return hashlib.sha256(json.dumps([operation, payload], sort_keys=True, default=str).encode()).hexdigest()


class IdempotentCreates:
    """For creates the domain services do not make idempotent themselves (registration, applications, keys).

    The key is claimed in its own transaction before the work runs, so concurrent duplicates cannot both do it:
    the loser sees the claim and gets 409 (in progress) or, once finished, the stored response.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def run(self, principal: Principal, key: str, operation: str, payload: Any,
            work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        scope_key, digest = principal.scoped(key), request_hash(operation, payload)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(a.api_requests).values(scope_key=scope_key, operation=operation,
                                                           request_hash=digest, created_at=now_iso()))
        except IntegrityError:
            return self._replay(scope_key, digest)
        try:
            result = work()
        except BaseException:
            with self.engine.begin() as conn:  # nothing was done: the key may be used again
                conn.execute(delete(a.api_requests).where(a.api_requests.c.scope_key == scope_key))
            raise
        with self.engine.begin() as conn:
            conn.execute(update(a.api_requests).where(a.api_requests.c.scope_key == scope_key)
                         .values(status_code=201, response=json.dumps(result, default=str)))
        return result

    def _replay(self, scope_key: str, digest: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(a.api_requests).where(a.api_requests.c.scope_key == scope_key)).first()
        if row is None:
            raise Conflict("a concurrent request with this key just failed; retry", field="Idempotency-Key")
        if row.request_hash != digest:
            raise Conflict("this Idempotency-Key was used for a different request; use a new key",
                           field="Idempotency-Key")
        if row.response is None:
            raise Conflict("the first request with this Idempotency-Key is still running; retry shortly",
                           field="Idempotency-Key")
        return json.loads(row.response)


class Audit:
    """Who did what, when, under which request id. Rows are only ever inserted (triggers refuse the rest)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, principal: Principal, request_id: str, action: str, resource: str,
               detail: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(a.audit_log).values(
                at=now_iso(), request_id=request_id, key_id=principal.key_id, role=principal.role.value,
                tenant=principal.tenant, action=action, resource=resource, detail=json.dumps(detail, default=str)))
