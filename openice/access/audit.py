"""What the service itself records, in the request's transaction: the append-only audit trail (stored responses
are in `openice.idempotency`, committed with the audit row)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, insert

from openice.clock import now_iso
from openice.storage import api_tables, direct
from openice.tenancy import Principal

_INSERT_AUDIT = insert(api_tables.audit_log)  # built once: it runs on every write request


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
