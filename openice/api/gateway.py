"""The institution gateway's operator resources: the deliveries that ran out of attempts, and their replay."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from openice.api.deps import IdempotencyKey, TransactionRoute, Tx, require
from openice.api.paging import NumericId, PageParams, paged
from openice.api.views import Page, reply
from openice.matching import queries as matching
from openice.tenancy import Role

router = APIRouter(prefix="/v1", tags=["gateway"], route_class=TransactionRoute)
Operator = Annotated[Tx, Depends(require(Role.OPERATOR))]


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
