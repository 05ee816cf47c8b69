"""The collections desk (`/desk/`): the work queue by stage and agent, a case with its history, the borrower's
contact details masked unless revealed with a reason (audited), contacts and promises recorded as the signed-in
agent, and a payment taken on the loan."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response

from openice.api.deps import TransactionRoute
from openice.collections.strategy import STAGES, Channel, Outcome
from openice.decisioning import queries as decisioning
from openice.errors import ValidationError
from openice.money import to_minor
from openice.servicing import queries as servicing
from openice.servicing.loan import LoanStatus
from openice.tenancy import Window
from openice.web.visit import Front, Visit, form_key, visit

router = APIRouter(prefix="/desk", include_in_schema=False, route_class=TransactionRoute)
Agent = Annotated[Visit, Depends(visit(Front.DESK))]


@router.get("/")
def queue(
    tx: Agent,
    stage: Annotated[str | None, Query(max_length=4)] = None,
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    institution: Annotated[str | None, Query(max_length=64)] = None,
    mine: bool = False,
    loan_id: Annotated[int | None, Query(ge=1)] = None,
    case_id: Annotated[int | None, Query(ge=1)] = None,
    done: str | None = None,
) -> Response:
    """Open cases due today, most severe and largest first, by stage, agent and funding institution; the cases of
    one loan; or straight to one case by its number."""
    if case_id is not None:
        with tx.attempt() as failed:
            tx.collections.case(tx.principal, case_id)  # another tenant's case is as missing as one never opened
        if not failed:
            return tx.redirect(f"/desk/cases/{case_id}")
        return _queue_page(tx, status=404, error=failed[0], typed_case=case_id)
    return _queue_page(
        tx, stage=stage, assignee=assignee, institution=institution, mine=mine, loan_id=loan_id, done=done
    )


def _queue_page(
    tx: Visit,
    status: int = 200,
    stage: str | None = None,
    assignee: str | None = None,
    institution: str | None = None,
    mine: bool = False,
    loan_id: int | None = None,
    **context: Any,
) -> Response:
    if loan_id is not None:
        cases = [
            {
                "id": c.id,
                "loan_id": c.loan_id,
                "stage": c.stage,
                "days_past_due": c.dpd,
                "overdue_amount": c.overdue_amount,
                "currency": c.currency,
                "assignee": c.assignee,
                "status": c.status,
            }
            for c in tx.scope.page("collection_cases", Window(100, None), loan_id=loan_id).items
        ]
    else:
        who = tx.person.username if mine else (assignee or None)
        cases = tx.collections.queue(tx.principal, stage or None, who, 100, institution or None)
    return tx.render(
        "desk/queue.html",
        status=status,
        cases=cases,
        summary=tx.collections.summary(tx.principal),
        stages=STAGES,
        stage=stage or "",
        assignee=assignee or "",
        institution=institution or "",
        institutions=tx.collections.funders(tx.principal),
        mine=mine,
        loan_id=loan_id,
        **context,
    )


@router.get("/performance")
def performance(
    tx: Agent,
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
) -> Response:
    """The desk's results between two business days (by default the 30 before the business date and today so
    far), per agent with the signed-in agent's own row first, per stage, and how cases closed: each chart beside its
    table."""
    today = tx.servicing.business_date()
    typed = {"from": start, "to": end}
    with tx.attempt() as failed:
        first = _date(start, "from") if start.strip() else today - timedelta(days=30)
        last = _date(end, "to") if end.strip() else today
        found = tx.collections.performance(tx.principal, first, last)
    if failed:
        return tx.render("desk/performance.html", status=422, error=failed[0], typed=typed, found=None, mine=[])
    me = tx.person.username
    agents = sorted(found["agents"], key=lambda a: (a["agent"] != me, a["agent"], a["currency"]))
    return tx.render(
        "desk/performance.html",
        found={**found, "agents": agents},
        mine=[a for a in agents if a["agent"] == me],
        typed={"from": first.isoformat(), "to": last.isoformat()},
    )


def _case_page(tx: Visit, case_id: int, status: int = 200, reveal: bool = False, **context: Any) -> Response:
    case = tx.collections.case(tx.principal, case_id)
    loan = servicing.loan_row(tx.scope, case["loan_id"])
    card = decisioning.contact_card(tx.scope, tx.svc.vault, loan.borrower_id, reveal)
    return tx.render(
        "desk/case.html",
        status=status,
        case=case,
        loan=loan,
        card=card,
        channels=[c.value for c in Channel],
        outcomes=[o.value for o in Outcome],
        key=form_key(),
        **context,
    )


@router.get("/cases/{case_id}")
def case(case_id: int, tx: Agent, done: str | None = None) -> Response:
    return _case_page(tx, case_id, done=done)


@router.post("/cases/{case_id}/reveal")
def reveal(case_id: int, tx: Agent, reason: Annotated[str, Form()] = "") -> Response:
    """The borrower's name and mobile in clear, for this page only, with the reason in the audit trail."""
    found = tx.collections.case(tx.principal, case_id)
    try:
        why = tx.reason(reason, "reveal_reason")
    except ValidationError as error:
        return _case_page(tx, case_id, 422, error=error)
    loan = servicing.loan_row(tx.scope, found["loan_id"])
    tx.audit("pii.revealed", f"borrower/{loan.borrower_id}", {"case_id": case_id, "reason": why})
    return _case_page(tx, case_id, reveal=True)


@router.post("/cases/{case_id}/contacts")
def record_contact(
    case_id: int,
    tx: Agent,
    channel: Annotated[str, Form(max_length=16)] = "",
    outcome: Annotated[str, Form(max_length=16)] = "",
    promise_amount: Annotated[str, Form(max_length=32)] = "",
    promise_date: Annotated[str, Form(max_length=10)] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Log a contact as the signed-in agent; a promise is capped at what is overdue."""
    row = tx.scope.get("collection_cases", case_id, "case_id")
    typed = {"channel": channel, "outcome": outcome, "promise_amount": promise_amount, "promise_date": promise_date}

    def work() -> dict[str, Any]:
        amount = to_minor(promise_amount, row.currency, "promise_amount") if promise_amount.strip() else None
        by = _date(promise_date, "promise_date") if promise_date.strip() else None
        tx.collections.record_contact(
            tx.principal,
            case_id,
            channel=channel,
            outcome=outcome,
            agent=tx.person.username,
            promise_amount=amount,
            promise_date=by,
        )
        tx.audit(
            "collections.contact",
            f"collection_case/{case_id}",
            {"loan_id": row.loan_id, "outcome": outcome, "promise_amount": amount},
        )
        return {"case_id": case_id}

    with tx.attempt() as failed:
        tx.idempotent(key or form_key(), f"collections.contact:{case_id}", typed, work)
    if failed:
        return _case_page(tx, case_id, 422, error=failed[0], error_form="contact", typed=typed)
    return tx.redirect(f"/desk/cases/{case_id}?done=contact")


@router.post("/cases/{case_id}/payments")
def take_payment(
    case_id: int,
    tx: Agent,
    amount: Annotated[str, Form(max_length=32)] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """A payment the borrower makes while on the line: a repayment, or a recovery once the loan is written off."""
    row = tx.scope.get("collection_cases", case_id, "case_id")
    loan = servicing.loan_row(tx.scope, row.loan_id)
    with tx.attempt() as failed:
        minor = to_minor(amount, loan.currency, "amount")
        scoped = tx.principal.scoped(key or form_key())
        if loan.status == LoanStatus.WRITTEN_OFF.value:  # money on a written-off loan is a recovery
            action, call = "loan.recovery", lambda: tx.servicing.recover(loan.id, minor, scoped)
        else:
            action, call = (
                "loan.repayment",
                lambda: tx.servicing.repay(loan.id, minor, scoped, None, loan.currency, None),
            )
        tx.collect(action, loan, minor, scoped, call, case_id=case_id)
    if failed:
        return _case_page(tx, case_id, 422, error=failed[0], error_form="payment", typed={"amount": amount})
    return tx.redirect(f"/desk/cases/{case_id}?done=payment")


@router.post("/assignments")
def assign(
    tx: Agent, agents: Annotated[str, Form(max_length=2000)] = "", stage: Annotated[str, Form(max_length=4)] = ""
) -> Response:
    """Share the open unassigned cases among these agents (names separated by commas), largest amounts first."""
    names = [a.strip() for a in agents.split(",") if a.strip()]
    with tx.attempt() as failed:
        if not names:
            raise ValidationError("name at least one agent", field="agents")
        received = tx.collections.assign(tx.principal, names, stage or None)
        tx.audit("collections.assigned", "collection_cases", {"assigned": received, "stage": stage or None})
    if failed:
        return _queue_page(tx, status=422, error=failed[0], typed_agents=agents)
    return tx.redirect("/desk/?done=assigned")


def _date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError("write the date as YYYY-MM-DD", field=field) from None
