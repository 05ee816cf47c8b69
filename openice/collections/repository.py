"""The SQL of the collections stage, scoped in the query itself by the tenancy rule of collection cases: a
repository made for an institution's caller sees only the cases of loans that institution funded, so another
tenant's case is indistinguishable from a missing one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Select, case, func, insert, select, update

from openice.clock import now_iso
from openice.collections.strategy import STAGES
from openice.errors import NotFound
from openice.storage import collections_tables, servicing_tables
from openice.tenancy import RULES, Principal, funded_by

SEVERITY = case(
    {stage: rank for rank, stage in enumerate(STAGES)}, value=collections_tables.collection_cases.c.stage, else_=-1
)


class CaseRepository:
    def __init__(self, conn: Connection, caller: Principal) -> None:
        self.conn = conn
        self.visible = RULES["collection_cases"](caller)

    def _scoped(self, query: Select[Any]) -> Select[Any]:
        return query.where(self.visible)

    def get(self, case_id: int, for_update: bool = False) -> Any:
        query = self._scoped(
            select(collections_tables.collection_cases).where(collections_tables.collection_cases.c.id == case_id)
        )
        if for_update and self.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        if row is None:
            raise NotFound(f"no collection case {case_id}", field="case_id")
        return row

    def queue(
        self, today: int, stage: str | None, assignee: str | None, limit: int, institution: str | None = None
    ) -> list[Any]:
        """Open cases due for contact today, most severe stage first, then the largest overdue amount."""
        cases = collections_tables.collection_cases
        query = self._scoped(select(cases).where(cases.c.status == "open", cases.c.next_contact_day <= today))
        if stage is not None:
            query = query.where(cases.c.stage == stage)
        if assignee is not None:
            query = query.where(cases.c.assignee == assignee)
        if institution is not None:
            query = query.where(cases.c.loan_id.in_(select(servicing_tables.loans.c.id).where(funded_by(institution))))
        return list(
            self.conn.execute(query.order_by(SEVERITY.desc(), cases.c.overdue_amount.desc(), cases.c.id).limit(limit))
        )

    def funders(self) -> list[str]:
        """The institutions that funded the loans of the open cases this caller sees."""
        cases, loans = collections_tables.collection_cases, servicing_tables.loans
        query = (
            select(loans.c.original_funder)
            .distinct()
            .where(loans.c.id.in_(self._scoped(select(cases.c.loan_id).where(cases.c.status == "open"))))
            .order_by(loans.c.original_funder)
        )
        return list(self.conn.execute(query).scalars())

    def summary(self, today: int) -> list[Any]:
        """Open cases per stage: how many, how much is overdue, how many are due today, promises pending."""
        cases = collections_tables.collection_cases
        query = self._scoped(
            select(
                cases.c.stage,
                cases.c.currency,
                func.count().label("cases"),
                func.sum(cases.c.overdue_amount).label("overdue"),
                func.sum(case((cases.c.next_contact_day <= today, 1), else_=0)).label("due_today"),
                func.sum(case((cases.c.promise_day.is_not(None), 1), else_=0)).label("promises_pending"),
                func.sum(case((cases.c.assignee.is_(None), 1), else_=0)).label("unassigned"),
            )
            .where(cases.c.status == "open")
            .group_by(cases.c.stage, cases.c.currency)
        )
        return sorted(self.conn.execute(query), key=lambda r: (STAGES.index(r.stage), r.currency))

    def performance(self, first: int, last: int) -> tuple[list[Any], list[Any]]:
        """Actions between two days (inclusive): per agent and currency, and how cases opened, escalated and closed
        per stage."""
        acts, cases = collections_tables.collection_actions, collections_tables.collection_cases
        scoped = acts.c.case_id.in_(self._scoped(select(cases.c.id)))
        window = (acts.c.business_day >= first, acts.c.business_day <= last, scoped)

        def count(condition: Any) -> Any:
            return func.sum(case((condition, 1), else_=0))

        kept = acts.c.kind == "promise_kept"
        agents = self.conn.execute(
            select(
                acts.c.agent,
                cases.c.currency,
                count(acts.c.kind == "contact").label("contacts"),
                count(acts.c.outcome.in_(("reached", "promise"))).label("reached"),
                count(acts.c.outcome == "promise").label("promises"),
                count(kept).label("kept"),
                count(acts.c.kind == "promise_broken").label("broken"),
                func.sum(case((kept, acts.c.amount), else_=0)).label("kept_amount"),
            )
            .select_from(acts.join(cases, cases.c.id == acts.c.case_id))
            .where(*window, acts.c.agent.is_not(None), acts.c.kind != "assigned")
            .group_by(acts.c.agent, cases.c.currency)
            .order_by(acts.c.agent, cases.c.currency)
        ).all()
        flows = self.conn.execute(
            select(acts.c.kind, acts.c.detail, func.count().label("cases"))
            .where(*window, acts.c.kind.in_(("opened", "escalated", "closed")))
            .group_by(acts.c.kind, acts.c.detail)
        ).all()
        return list(agents), list(flows)

    def actions(self, case_id: int) -> list[Any]:
        acts = collections_tables.collection_actions
        return list(self.conn.execute(select(acts).where(acts.c.case_id == case_id).order_by(acts.c.id)))

    def record(self, row: Any, day: int, kind: str, **fields: Any) -> int:
        return int(
            self.conn.execute(
                insert(collections_tables.collection_actions)
                .values(
                    case_id=row.id, loan_id=row.loan_id, business_day=day, kind=kind, created_at=now_iso(), **fields
                )
                .returning(collections_tables.collection_actions.c.id)
            ).scalar_one()
        )

    def change(self, case_id: int, **values: Any) -> None:
        self.conn.execute(
            update(collections_tables.collection_cases)
            .where(collections_tables.collection_cases.c.id == case_id)
            .values(**values)
        )

    def unassigned(self, stage: str | None) -> list[tuple[int, int]]:
        cases = collections_tables.collection_cases
        query = self._scoped(
            select(cases.c.id, cases.c.overdue_amount).where(cases.c.status == "open", cases.c.assignee.is_(None))
        )
        if stage is not None:
            query = query.where(cases.c.stage == stage)
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return [(r.id, r.overdue_amount) for r in self.conn.execute(query)]

    def open_load(self, agents: list[str]) -> dict[str, int]:
        """Open cases each agent already holds."""
        cases = collections_tables.collection_cases
        held: dict[str, int] = dict(
            self.conn.execute(
                self._scoped(
                    select(cases.c.assignee, func.count())
                    .where(cases.c.status == "open", cases.c.assignee.in_(agents))
                    .group_by(cases.c.assignee)
                )
            ).all()
        )
        return {agent: int(held.get(agent, 0)) for agent in agents}

    def assign(self, assignment: Mapping[int, str], day: int) -> None:
        by_agent: dict[str, list[int]] = {}
        for case_id, agent in assignment.items():
            by_agent.setdefault(agent, []).append(case_id)
        for agent, ids in by_agent.items():
            self.conn.execute(
                update(collections_tables.collection_cases)
                .where(collections_tables.collection_cases.c.id.in_(ids))
                .values(assignee=agent)
            )
        if assignment:
            rows = self.conn.execute(
                select(collections_tables.collection_cases.c.id, collections_tables.collection_cases.c.loan_id).where(
                    collections_tables.collection_cases.c.id.in_(list(assignment))
                )
            )
            self.conn.execute(
                insert(collections_tables.collection_actions),
                [
                    dict(
                        case_id=r.id,
                        loan_id=r.loan_id,
                        business_day=day,
                        kind="assigned",
                        agent=assignment[r.id],
                        created_at=now_iso(),
                    )
                    for r in rows
                ],
            )
