"""Collections operations for the API and the CLI: the work queue, a case and its history, recording a contact
(with a promise to pay), and sharing cases among agents.

Every call runs in one unit of work and sees only the cases its `caller` may (`openice.tenancy`): an institution's
loans' cases for that institution and its own desk, all of them for the platform's desk and operators
(`collections_desk` makes the caller for the command line).
Amounts are minor units; days are dates at this edge.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from openice.collections.repository import CaseRepository
from openice.collections.strategy import STAGES, Strategy, contact, distribute
from openice.errors import Amount, Conflict, ValidationError
from openice.money import format_money
from openice.servicing.repository import servicing_unit
from openice.storage.days import from_day, opt_date, to_day
from openice.storage.uow import UnitsOfWork
from openice.tenancy import Principal


def case_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "loan_id": row.loan_id,
        "currency": row.currency,
        "status": row.status,
        "resolution": row.resolution,
        "stage": row.stage,
        "days_past_due": row.dpd,
        "overdue_amount": row.overdue_amount,
        "assignee": row.assignee,
        "opened_on": from_day(row.opened_day),
        "closed_on": opt_date(row.closed_day),
        "last_contact_on": opt_date(row.last_contact_day),
        "next_contact_on": from_day(row.next_contact_day),
        "promise": None
        if row.promise_day is None
        else {"amount": row.promise_amount, "by": from_day(row.promise_day), "made_on": from_day(row.promise_made_day)},
        "promises_kept": row.promises_kept,
        "promises_broken": row.promises_broken,
    }


def action_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "on": from_day(row.business_day),
        "kind": row.kind,
        "channel": row.channel,
        "outcome": row.outcome,
        "amount": row.amount,
        "promise_by": opt_date(row.promise_day),
        "agent": row.agent,
        "detail": row.detail,
        "at": row.created_at,
    }


def _with_history(cases: CaseRepository, case_id: int) -> dict[str, Any]:
    return {**case_view(cases.get(case_id)), "actions": [action_view(a) for a in cases.actions(case_id)]}


def _stage(stage: str | None) -> str | None:
    if stage is not None and stage not in STAGES:
        raise ValidationError(f"must be one of {list(STAGES)}", field="stage")
    return stage


def _agent(name: str, field: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 64:
        raise ValidationError("an agent is named by 1-64 characters", field=field)
    return name.strip()


class Collections:
    def __init__(self, units: UnitsOfWork, strategy: Strategy | None = None) -> None:
        self.units = units
        self.strategy = strategy or Strategy()

    def queue(
        self,
        caller: Principal,
        stage: str | None = None,
        assignee: str | None = None,
        limit: int = 50,
        institution: str | None = None,
    ) -> list[dict[str, Any]]:
        """Open cases due for contact on the business date, most severe and largest first; `institution` keeps the
        cases of the loans it funded (within what the caller sees)."""
        _stage(stage)
        if not 1 <= limit <= 1000:
            raise ValidationError("must be between 1 and 1000", field="limit")
        with servicing_unit(self.units, readonly=True) as uow:
            today = to_day(uow.calendar.business_date)
            rows = CaseRepository(uow.conn, caller).queue(today, stage, assignee, limit, institution)
        return [case_view(r) for r in rows]

    def funders(self, caller: Principal) -> list[str]:
        """The institutions the caller's queue can be filtered by: the funders of its open cases' loans."""
        with servicing_unit(self.units, readonly=True) as uow:
            return CaseRepository(uow.conn, caller).funders()

    def summary(self, caller: Principal) -> list[dict[str, Any]]:
        with servicing_unit(self.units, readonly=True) as uow:
            today = to_day(uow.calendar.business_date)
            rows = CaseRepository(uow.conn, caller).summary(today)
        return [
            {
                "stage": r.stage,
                "currency": r.currency,
                "cases": r.cases,
                "overdue_amount": int(r.overdue or 0),
                "due_today": int(r.due_today),
                "promises_pending": int(r.promises_pending),
                "unassigned": int(r.unassigned),
            }
            for r in rows
        ]

    def performance(self, caller: Principal, first: date, last: date) -> dict[str, Any]:
        """How the desk did between two business days: per agent, contacts, reach, promises and how they ended;
        per stage, cases opened and escalated into it, and cases closed by how they ended."""
        if last < first:
            raise ValidationError(f"{last} is before {first}", field="to")
        with servicing_unit(self.units, readonly=True) as uow:
            agents, flows = CaseRepository(uow.conn, caller).performance(to_day(first), to_day(last))
        per_agent = [
            {
                "agent": r.agent,
                "currency": r.currency,
                "contacts": int(r.contacts),
                "reached": int(r.reached),
                "promises": int(r.promises),
                "kept": int(r.kept),
                "broken": int(r.broken),
                "kept_amount": int(r.kept_amount or 0),
                "kept_rate": None if r.kept + r.broken == 0 else round(r.kept / (r.kept + r.broken), 4),
            }
            for r in agents
        ]
        counts = {(r.kind, r.detail): int(r.cases) for r in flows}
        per_stage = [
            {"stage": s, "opened": counts.get(("opened", s), 0), "escalated_in": counts.get(("escalated", s), 0)}
            for s in STAGES
        ]
        closed = {how: counts.get(("closed", how), 0) for how in ("cured", "repaid", "recovered")}
        return {"from": first, "to": last, "agents": per_agent, "stages": per_stage, "closed": closed}

    def case(self, caller: Principal, case_id: int) -> dict[str, Any]:
        with servicing_unit(self.units, readonly=True) as uow:
            return _with_history(CaseRepository(uow.conn, caller), case_id)

    def record_contact(
        self,
        caller: Principal,
        case_id: int,
        *,
        channel: str,
        outcome: str,
        agent: str,
        promise_amount: int | None = None,
        promise_date: date | None = None,
    ) -> dict[str, Any]:
        """Log a contact attempt on an open case; a promise holds the case out of the queue until the day after
        its date, when end of day judges it. A promise is for what is overdue, at most: the rest is not owed yet."""
        agent = _agent(agent, "agent")
        with servicing_unit(self.units) as uow:
            today = uow.calendar.require_open()
            cases = CaseRepository(uow.conn, caller)
            row = cases.get(case_id, for_update=True)
            if row.status != "open":
                raise Conflict(
                    f"case {case_id} is closed ({row.resolution}); nothing is left to collect",
                    field="case_id",
                    reason="case.closed",
                )
            made = contact(channel, outcome, today, self.strategy, promise_amount, promise_date)
            if made.promise_amount is not None and made.promise_amount > row.overdue_amount:
                owed = format_money(row.overdue_amount, row.currency)
                raise ValidationError(
                    f"a promise to pay is at most what is overdue ({owed}); promise that or less",
                    field="promise_amount",
                    reason="promise.above_overdue",
                    values={"overdue": Amount(row.overdue_amount, row.currency)},
                )
            if made.promise_date is not None and row.promise_day is not None:
                raise Conflict(
                    f"case {case_id} already has a promise pending until {from_day(row.promise_day)}",
                    field="promise_date",
                    reason="promise.pending",
                    values={"day": from_day(row.promise_day)},
                )
            day = to_day(today)
            cases.record(
                row,
                day,
                "contact",
                channel=made.channel.value,
                outcome=made.outcome.value,
                agent=agent,
                amount=made.promise_amount,
                promise_day=None if made.promise_date is None else to_day(made.promise_date),
            )
            changes: dict[str, Any] = {
                "last_contact_day": day,
                "assignee": row.assignee or agent,
                "next_contact_day": to_day(self.strategy.next_contact(row.stage, today)),
            }
            if made.promise_date is not None:
                changes.update(
                    promise_amount=made.promise_amount,
                    promise_day=to_day(made.promise_date),
                    promise_made_day=day,
                    next_contact_day=to_day(made.promise_date) + 1,
                )
            cases.change(case_id, **changes)
            return _with_history(cases, case_id)

    def assign(self, caller: Principal, agents: list[str], stage: str | None = None) -> dict[str, int]:
        """Share the open unassigned cases among these agents; returns how many each received."""
        names = [_agent(a, f"agents[{i}]") for i, a in enumerate(agents)]
        if len(set(names)) != len(names):
            raise ValidationError("an agent is named twice", field="agents")
        _stage(stage)
        with servicing_unit(self.units) as uow:
            today = uow.calendar.require_open()
            cases = CaseRepository(uow.conn, caller)
            assignment = distribute(cases.unassigned(stage), cases.open_load(names))
            cases.assign(assignment, to_day(today))
        received = dict.fromkeys(names, 0)
        for agent in assignment.values():
            received[agent] += 1
        return received
