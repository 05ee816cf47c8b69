"""The institution gateway's resources: an institution's webhook signing secret (made or rotated, shown once), and
for operators the deliveries that ran out of attempts, and their replay."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from openice.api.deps import IdempotencyKey, TransactionRoute, Tx, require
from openice.api.paging import NumericId, PageParams, paged
from openice.api.views import Page, reply
from openice.matching import queries as matching
from openice.matching.gateway import SECRET_OVERLAP_HOURS
from openice.tenancy import Role

router = APIRouter(prefix="/v1", tags=["gateway"], route_class=TransactionRoute)
Operator = Annotated[Tx, Depends(require(Role.OPERATOR))]
Funder = Annotated[Tx, Depends(require(Role.OPERATOR, Role.INSTITUTION))]


class DeadLetterView(BaseModel):
    id: int
    delivery_id: int
    institution_code: str
    event_type: str
    attempts: int
    last_error: str | None
    created_at: str
    replayed_at: str | None = Field(description="when an operator queued it again; null while it waits")


class Replayed(BaseModel):
    dead_letter_id: int
    delivery_id: int = Field(description="queued again under its idempotency key, from a first attempt")


class WebhookSecret(BaseModel):
    institution: str
    secret: str | None = Field(
        description="the new signing secret (64 hex digits): in this response only, null when the request is replayed"
    )
    overlap_hours: float = Field(description="how long the secret it replaced is still accepted and signed with")


@router.post("/institutions/{code}/webhook-secret", status_code=201, response_model=WebhookSecret)
def rotate_webhook_secret(
    code: str,
    key: IdempotencyKey,
    tx: Funder,
    overlap_hours: Annotated[float, Query(ge=0, le=720)] = SECRET_OVERLAP_HOURS,
) -> Any:
    """Make the institution's webhook signing secret, or rotate it: the previous one is still accepted (and requests
    are signed with both) for `overlap_hours`, so the institution can switch over. An institution's key rotates its
    own (another's is a 404). Audited as `gateway.secret_rotated`; the secret is stored encrypted."""
    matching.institution(tx.scope, code)
    payload = {"code": code, "overlap_hours": overlap_hours}
    made = tx.idempotent_secret(key, "gateway.secret_rotate", payload, lambda: rotated_secret(tx, code, overlap_hours))
    return reply(made, 201)


def rotated_secret(tx: Tx, code: str, overlap_hours: float) -> dict[str, Any]:
    """Rotate and audit (this route and the institution portal's integration page)."""
    secret = tx.webhooks.rotate_secret(code, overlap_hours * 3600, time.time())
    tx.audit("gateway.secret_rotated", f"institution/{code}", {"overlap_hours": overlap_hours})
    return {"institution": code, "secret": secret, "overlap_hours": overlap_hours}


def dead_letter_view(row: Any) -> DeadLetterView:
    return DeadLetterView.model_validate(row, from_attributes=True)


@router.get("/dead-letters", response_model=Page[DeadLetterView])
def list_dead_letters(tx: Operator, page: PageParams) -> Any:
    """Deliveries to institutions that ran out of attempts, oldest first (replayed ones too, with when)."""
    return paged(matching.dead_letters(tx.scope, page), dead_letter_view)


@router.post("/dead-letters/{dead_letter_id}/replay", status_code=201, response_model=Replayed)
def replay_dead_letter(dead_letter_id: NumericId, key: IdempotencyKey, tx: Operator) -> Any:
    """Queue the delivery again; an institution that took it once takes it once (same idempotency key). A letter
    replays once: again is a 409."""

    def work() -> dict[str, Any]:
        delivery = tx.webhooks.replay(dead_letter_id, time.time())
        tx.audit("dead_letter.replayed", f"dead_letter/{dead_letter_id}", {"delivery_id": delivery})
        return {"dead_letter_id": dead_letter_id, "delivery_id": delivery}

    return reply(tx.idempotent(key, "dead_letter.replay", {"id": dead_letter_id}, work), 201)
