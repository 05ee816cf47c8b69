"""What the service itself records, in the request's transaction: stored responses of idempotent creates, and
the append-only audit trail."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from openice.clock import now_iso
from openice.errors import Conflict
from openice.storage import api_tables, direct
from openice.tenancy import Principal

# Built once: they run on every write request.
_INSERT_AUDIT = insert(api_tables.audit_log)
_CLAIM = {
    name: dialect.insert(api_tables.api_requests)
    .on_conflict_do_nothing()
    .returning(api_tables.api_requests.c.scope_key)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_ANSWER = update(api_tables.api_requests).where(api_tables.api_requests.c.scope_key == bindparam("key"))


def request_hash(operation: str, payload: Any) -> str:
    return hashlib.sha256(json.dumps([operation, payload], sort_keys=True, default=str).encode()).hexdigest()


class IdempotentCreates:
    """For creates the domain services do not make idempotent themselves (registration, applications, keys,
    answers to offers).

    The key is claimed inside the request's transaction, before the work runs: a concurrent duplicate's claim
    waits on the key's unique index until the first commits, then sees the stored response and replays it. The
    claim, the work and the response commit together, so a request that fails or whose process dies leaves no
    claim behind: nothing can stay "in progress".
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def run(
        self, principal: Principal, key: str, operation: str, payload: Any, work: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        scope_key, digest = principal.scoped(key), request_hash(operation, payload)
        table = api_tables.api_requests
        claimed = direct.execute(
            self.conn,
            _CLAIM[self.conn.dialect.name],
            dict(scope_key=scope_key, operation=operation, request_hash=digest, created_at=now_iso()),
        ).first()
        if claimed is None:
            row = self.conn.execute(select(table).where(table.c.scope_key == scope_key).with_for_update()).one()
            if row.request_hash != digest:
                raise Conflict(
                    "this Idempotency-Key was used for a different request; use a new key", field="Idempotency-Key"
                )
            if row.response is not None:
                return json.loads(row.response)
            # A committed claim without a response was left by a process that died between its own claim
            # transaction and the work (how keys were claimed before): it is abandoned, so this request takes over.
        result = work()
        direct.execute(
            self.conn, _ANSWER, {"key": scope_key, "status_code": 201, "response": json.dumps(result, default=str)}
        )
        return result


SYSTEM_ROLE = "system"  # the audit trail's actor for what the service does on its own (offer expiries)


def record_audit(
    conn: Connection, principal: Principal | None, request_id: str, action: str, resource: str, detail: dict[str, Any]
) -> None:
    """Who did what, when, under which request id; `principal` None is the service itself (no key, role
    "system", tenant "platform"). Rows are only ever inserted (triggers refuse the rest)."""
    who = (
        dict(key_id=None, role=SYSTEM_ROLE, tenant="platform")
        if principal is None
        else dict(key_id=principal.key_id, role=principal.role.value, tenant=principal.tenant)
    )
    direct.execute(
        conn,
        _INSERT_AUDIT,
        dict(
            at=now_iso(),
            request_id=request_id,
            action=action,
            resource=resource,
            detail=json.dumps(detail, default=str),
            **who,
        ),
    )


def record_expiries(conn: Connection, request_id: str, expired: list[dict[str, Any]]) -> None:
    """One `offer.expired` row per offer that closed unanswered, in the transaction that closed it, with the service
    as actor: the deadline expired the offer, not the caller whose request found it."""
    for done in expired:
        record_audit(
            conn,
            None,
            request_id,
            "offer.expired",
            f"offer/{done['offer_id']}",
            {k: v for k, v in done.items() if k != "offer_id"},
        )
