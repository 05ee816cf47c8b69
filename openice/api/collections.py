"""The collections desk: the work queue, cases with their history, contacts with promises to pay, and assignment.

Operators and the platform's collections agents see every case; an institution (or its own collections desk)
sees the cases of loans it funded; borrowers get 403. Contacts and assignments are the desk's work: operators and
collections keys only (an institution's key is read-only, 403), each within the cases it sees. They need an
Idempotency-Key and are audited in the request's transaction.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from openice.api.deps import IdempotencyKey, TransactionRoute, Tx, require
from openice.api.paging import MAX_ID, NumericId, PageParams, paged
from openice.api.views import AMOUNT, CURRENCY, Money, Page, money, reply
from openice.collections.service import case_view
from openice.errors import ValidationError
from openice.money import to_minor
from openice.tenancy import Role

router = APIRouter(prefix="/v1/collections", tags=["collections"], route_class=TransactionRoute)
Desk = Annotated[Tx, Depends(require(Role.OPERATOR, Role.COLLECTIONS, Role.INSTITUTION))]
Agent = Annotated[Tx, Depends(require(Role.OPERATOR, Role.COLLECTIONS))]  # institutions read; desks work cases
STAGE = r"^(M1|M2|M3|M4\+|WO)$"
BODY_FIELDS = {"promise_amount": "promise.amount", "promise_date": "promise.by"}  # the service's names -> the body's


class Promise(BaseModel):
    amount: Money
    by: date
    made_on: date


class CaseView(BaseModel):
    id: int
    loan_id: int
    status: str = Field(description="open | closed")
    resolution: str | None = Field(description="cured | repaid | recovered, once closed")
    stage: str = Field(description="the loan's bucket: M1 | M2 | M3 | M4+ | WO (recovery after write-off)")
    days_past_due: int
    overdue: Money = Field(
        description="unpaid due principal, interest, fees and late fees; after write-off, "
        "what was written off less what was recovered"
    )
    assignee: str | None
    opened_on: date
    closed_on: date | None
    last_contact_on: date | None
    next_contact_on: date = Field(description="the case is in the work queue from this day")
    promise: Promise | None
    promises_kept: int
    promises_broken: int


class ActionView(BaseModel):
    id: int
    on: date
    kind: str = Field(description="opened | escalated | contact | assigned | promise_kept | promise_broken | closed")
    channel: str | None
    outcome: str | None
    amount: Money | None
    promise_by: date | None
    agent: str | None
    detail: str | None
    at: str


class CaseDetail(CaseView):
    actions: list[ActionView]


class WorkQueue(BaseModel):
    items: list[CaseView]


class StageSummary(BaseModel):
    stage: str
    cases: int
    overdue: Money
    due_today: int
    promises_pending: int
    unassigned: int


class AgentPerformance(BaseModel):
    agent: str
    contacts: int
    reached: int = Field(description="contacts that reached the borrower (outcome reached or promise)")
    promises: int
    kept: int = Field(description="promises judged kept in the period")
    broken: int
    kept_amount: Money = Field(description="paid against the promises kept")
    kept_rate: float | None = Field(description="kept / (kept + broken); null when none was judged")


class StageFlow(BaseModel):
    stage: str
    opened: int
    escalated_in: int


class Performance(BaseModel):
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    agents: list[AgentPerformance]
    stages: list[StageFlow]
    closed: dict[str, int] = Field(description="cases closed in the period by how: cured, repaid, recovered")


class PromiseIn(BaseModel):
    amount: str = Field(pattern=AMOUNT, examples=["500.00"])
    currency: str = Field(pattern=CURRENCY, examples=["CNY"])
    by: date


class ContactIn(BaseModel):
    channel: str = Field(pattern="^(sms|call|email|visit|letter)$")
    outcome: str = Field(pattern="^(reached|no_answer|wrong_number|refused|promise)$")
    promise: PromiseIn | None = Field(None, description="required when the outcome is 'promise', refused otherwise")


class AssignIn(BaseModel):
    agents: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=100)
    stage: str | None = Field(None, pattern=STAGE)


class Assigned(BaseModel):
    assigned: dict[str, int]


def _case(view: dict[str, Any]) -> dict[str, Any]:
    currency = view["currency"]
    promise = view["promise"]
    return {
        **view,
        "overdue": money(view["overdue_amount"], currency),
        "promise": None if promise is None else {**promise, "amount": money(promise["amount"], currency)},
    }


def _detail(view: dict[str, Any]) -> CaseDetail:
    currency = view["currency"]
    actions = [{**a, "amount": None if a["amount"] is None else money(a["amount"], currency)} for a in view["actions"]]
    return CaseDetail.model_validate({**_case(view), "actions": actions})


@router.get("/summary", response_model=list[StageSummary])
def summary(tx: Desk) -> Any:
    """Open cases per stage: how many, how much is overdue, how many are due today, promises pending."""
    return reply(
        [
            StageSummary(
                stage=s["stage"],
                cases=s["cases"],
                overdue=money(s["overdue_amount"], s["currency"]),
                due_today=s["due_today"],
                promises_pending=s["promises_pending"],
                unassigned=s["unassigned"],
            )
            for s in tx.collections.summary(tx.principal)
        ]
    )


@router.get("/performance", response_model=Performance)
def performance(tx: Desk, start: Annotated[date, Query(alias="from")], end: Annotated[date, Query(alias="to")]) -> Any:
    """How the desk did between two business days, per agent (and currency) and per stage."""
    found = tx.collections.performance(tx.principal, start, end)
    agents = [{**a, "kept_amount": money(a["kept_amount"], a["currency"])} for a in found["agents"]]
    return reply(Performance.model_validate({**found, "agents": agents}))


@router.get("/queue", response_model=WorkQueue)
def work_queue(
    tx: Desk,
    stage: Annotated[str | None, Query(pattern=STAGE)] = None,
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """Today's work list: open cases due for contact, most severe stage first, then the largest amount."""
    found = tx.collections.queue(tx.principal, stage, assignee, limit)
    return reply(WorkQueue(items=[CaseView.model_validate(_case(v)) for v in found]))


@router.get("/cases", response_model=Page[CaseView])
def list_cases(
    tx: Desk,
    page: PageParams,
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
    stage: Annotated[str | None, Query(pattern=STAGE)] = None,
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    loan_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Any:
    found = tx.scope.page("collection_cases", page, status=status, stage=stage, assignee=assignee, loan_id=loan_id)
    return reply(paged(found, lambda row: CaseView.model_validate(_case(case_view(row)))))


@router.get("/cases/{case_id}", response_model=CaseDetail)
def get_case(case_id: NumericId, tx: Desk) -> Any:
    """A case with every action taken on it (another institution's case is a 404 from the scoped read)."""
    return reply(_detail(tx.collections.case(tx.principal, case_id)))


@router.post("/cases/{case_id}/contacts", status_code=201, response_model=CaseDetail)
def record_contact(case_id: NumericId, body: ContactIn, key: IdempotencyKey, tx: Agent) -> Any:
    """Log a contact attempt; a promise to pay holds the case out of the queue until the day after its date."""
    case = tx.scope.get("collection_cases", case_id, "case_id")
    amount, by = None, None
    if body.promise is not None:
        if body.promise.currency != case.currency:
            raise ValidationError(
                f"the loan is in {case.currency}, not {body.promise.currency}", field="promise.currency"
            )
        amount, by = to_minor(body.promise.amount, case.currency, "promise.amount"), body.promise.by

    def work() -> dict[str, Any]:
        try:
            found = tx.collections.record_contact(
                tx.principal,
                case_id,
                channel=body.channel,
                outcome=body.outcome,
                agent=tx.principal.key_id,
                promise_amount=amount,
                promise_date=by,
            )
        except ValidationError as error:
            raise ValidationError(error.message, field=BODY_FIELDS.get(error.field or "", error.field)) from None
        tx.audit(
            "collections.contact",
            f"collection_case/{case_id}",
            {"loan_id": case.loan_id, "outcome": body.outcome, "promise_amount": amount},
        )
        return _detail(found).model_dump(mode="json")

    return reply(tx.idempotent(key, f"collections.contact:{case_id}", body.model_dump(mode="json"), work), 201)


@router.post("/assignments", status_code=201, response_model=Assigned)
def assign(body: AssignIn, key: IdempotencyKey, tx: Agent) -> Any:
    """Share the open unassigned cases among these agents, largest amounts first, evening out workloads."""

    def work() -> dict[str, Any]:
        received = tx.collections.assign(tx.principal, body.agents, body.stage)
        tx.audit("collections.assigned", "collection_cases", {"assigned": received, "stage": body.stage})
        return {"assigned": received}

    return reply(tx.idempotent(key, "collections.assign", body.model_dump(mode="json"), work), 201)
