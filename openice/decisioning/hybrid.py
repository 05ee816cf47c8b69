"""The hybrid deployment's records: on the platform, the decisions and outcomes an institution deciding on its own
premises pushes back, and their monitoring (score stability and bad rate per month, by `scoring.monitor.by_month`,
as the console monitors the platform's own decisions); on the institution's side, what it has pushed already.

What crosses the wire is fixed by `PushedDecision` and `PushedOutcome`, which refuse any other field: a decision's
figures (score, PD, grade, reasons, the hashes of the model and policy used), never the applicant's data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from itertools import groupby
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, and_, case, func, insert, select, tuple_

from openice.clock import now_iso
from openice.decisioning.domain import Outcome
from openice.decisioning.queries import gone_bad
from openice.errors import Conflict, ValidationError
from openice.scoring.monitor import by_month
from openice.scoring.package import read_json, registry_versions
from openice.servicing.repository import ServicingUnit
from openice.storage import decisioning_tables, servicing_tables
from openice.storage.days import from_day, to_day
from openice.storage.hybrid_tables import hybrid_decisions, hybrid_outcomes, hybrid_pushed
from openice.storage.uow import UnitsOfWork
from openice.tenancy import Scope

__all__ = ["BATCH", "DecisionsPushed", "Hybrid", "OutcomesPushed", "PushedDecision", "PushedOutcome", "Pushes"]

BATCH = 500  # decisions or outcomes in one push
Reference = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class PushedDecision(BaseModel):
    """One decision as the institution made it: its own reference, the figures and the hashes that reproduce it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: Reference
    decided_on: date
    outcome: Outcome
    score: float | None = None  # none where fraud or policy rules decided before scoring
    pd: float | None = Field(None, ge=0, le=1)
    grade: str | None = Field(None, max_length=8)
    reasons: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=20)
    model_hash: Sha256
    policy_hash: Sha256 | None = None


class PushedOutcome(BaseModel):
    """How a decision's loan performed at a month on book: bad (1) or good (0) by then."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: Reference
    months_on_book: int = Field(ge=1, le=480)
    bad: bool


class DecisionsPushed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decisions: list[PushedDecision] = Field(min_length=1, max_length=BATCH)


class OutcomesPushed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcomes: list[PushedOutcome] = Field(min_length=1, max_length=BATCH)


def _decision_row(institution: str, d: PushedDecision) -> dict[str, Any]:
    return dict(
        institution_code=institution,
        reference=d.reference,
        decided_day=to_day(d.decided_on),
        outcome=d.outcome.value,
        score=d.score,
        pd=d.pd,
        grade=d.grade,
        reasons=json.dumps(d.reasons),
        model_hash=d.model_hash,
        policy_hash=d.policy_hash,
    )


def months_between(start: date, end: date) -> int:
    """Whole months from `start` to `end`: 2026-01-15 to 2026-03-14 is one, to 2026-03-15 two."""
    return (end.year - start.year) * 12 + end.month - start.month - int(end.day < start.day)


FIGURES = ("decided_day", "outcome", "score", "pd", "grade", "reasons", "model_hash", "policy_hash")


class HybridRepository:
    """The pushed decisions and outcomes of institutions, on the platform's connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def decisions(self, institution: str, references: Sequence[str]) -> dict[str, dict[str, Any]]:
        d = hybrid_decisions
        statement = select(d).where(d.c.institution_code == institution, d.c.reference.in_(sorted(set(references))))
        return {row.reference: dict(row._mapping) for row in self.conn.execute(statement)}

    def outcomes(self, institution: str, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        o = hybrid_outcomes
        statement = select(o.c.reference, o.c.months_on_book, o.c.bad).where(
            o.c.institution_code == institution, tuple_(o.c.reference, o.c.months_on_book).in_(sorted(set(keys)))
        )
        return {(r.reference, r.months_on_book): r.bad for r in self.conn.execute(statement)}

    def add(self, table: Any, rows: list[dict[str, Any]]) -> None:
        if rows:
            stamp = now_iso()
            self.conn.execute(insert(table), [{**row, "received_at": stamp} for row in rows])

    def scored(self, scope: Scope, institution: str) -> list[Any]:
        """The institution's scored decisions (model hash, day, score, PD) with their outcome in one statement:
        ``bad`` 1 when any reported month on book was bad, 0 when all reported were good, None when none was."""
        d, o = hybrid_decisions, hybrid_outcomes
        known = (
            select(o.c.institution_code, o.c.reference, func.max(o.c.bad).label("bad"))
            .group_by(o.c.institution_code, o.c.reference)
            .subquery()
        )
        statement = (
            select(d.c.model_hash, d.c.decided_day, d.c.score, d.c.pd, known.c.bad)
            .select_from(
                d.outerjoin(
                    known, and_(known.c.institution_code == d.c.institution_code, known.c.reference == d.c.reference)
                )
            )
            .where(
                d.c.institution_code == institution,
                d.c.score.is_not(None),
                d.c.pd.is_not(None),
                scope.where("hybrid_decisions"),
            )
            .order_by(d.c.model_hash, d.c.decided_day, d.c.id)
        )
        return list(self.conn.execute(statement))


class Hybrid:
    """The platform's side: takes an institution's pushed decisions and outcomes, each at most once, and monitors
    the models it decides with."""

    def __init__(self, units: UnitsOfWork) -> None:
        self.units = units

    @contextmanager
    def _repository(self, readonly: bool = False) -> Iterator[HybridRepository]:
        with self.units.begin(readonly=readonly) as conn:
            yield HybridRepository(conn)

    def record_decisions(self, institution: str, pushed: DecisionsPushed) -> dict[str, int]:
        """Store the decisions not pushed before; one pushed again with the same figures is counted as already
        there, with other figures it is refused (a decision does not change once made)."""
        with self._repository() as repo:
            known = repo.decisions(institution, [d.reference for d in pushed.decisions])
            fresh = []
            for n, decision in enumerate(pushed.decisions):
                row = _decision_row(institution, decision)
                before = known.setdefault(decision.reference, row)
                if before is row:
                    fresh.append(row)
                elif any(before[k] != row[k] for k in FIGURES):
                    raise Conflict(
                        f"decision {decision.reference} was pushed before with other figures; a decision does not "
                        "change once made",
                        field=f"decisions.{n}.reference",
                    )
            repo.add(hybrid_decisions, fresh)
        return {"received": len(pushed.decisions), "stored": len(fresh), "already": len(pushed.decisions) - len(fresh)}

    def record_outcomes(self, institution: str, pushed: OutcomesPushed) -> dict[str, int]:
        """Store the outcomes not pushed before, each of a decision pushed before it."""
        with self._repository() as repo:
            decided = repo.decisions(institution, [o.reference for o in pushed.outcomes])
            known = repo.outcomes(institution, [(o.reference, o.months_on_book) for o in pushed.outcomes])
            fresh: dict[tuple[str, int], dict[str, Any]] = {}
            for n, outcome in enumerate(pushed.outcomes):
                if outcome.reference not in decided:
                    raise ValidationError(
                        f"no decision {outcome.reference} was pushed: push a decision before its outcomes",
                        field=f"outcomes.{n}.reference",
                    )
                key, bad = (outcome.reference, outcome.months_on_book), int(outcome.bad)
                before = known.get(key, fresh[key]["bad"] if key in fresh else None)
                if before is None:
                    fresh[key] = dict(institution_code=institution, reference=key[0], months_on_book=key[1], bad=bad)
                elif before != bad:
                    raise Conflict(
                        f"the outcome of {key[0]} at month {key[1]} on book was pushed before as "
                        f"{'bad' if before else 'good'}",
                        field=f"outcomes.{n}.bad",
                    )
            repo.add(hybrid_outcomes, list(fresh.values()))
        return {"received": len(pushed.outcomes), "stored": len(fresh), "already": len(pushed.outcomes) - len(fresh)}

    def monitoring(self, scope: Scope, institution: str, registry: str | None) -> dict[str, Any]:
        """Per model the institution decided with: its registry version (None when the registry does not hold it),
        how many scored decisions, and its months as `by_month` gives them (None without the package's training
        reference to compare with)."""
        with self._repository(readonly=True) as repo:
            rows = repo.scored(scope, institution)
        entries = {e["package_hash"]: e for e in registry_versions(registry)[0]} if registry else {}
        models = []
        for model_hash, group in groupby(rows, key=lambda r: r.model_hash):
            found = list(group)
            entry = entries.get(model_hash)
            metadata = read_json(Path(str(registry)) / entry["path"] / "metadata.json") if entry else {}
            months = None
            if "reference" in metadata:
                months = by_month(
                    metadata,
                    [from_day(r.decided_day).isoformat()[:7] for r in found],
                    [r.score for r in found],
                    [r.pd for r in found],
                    [-1 if r.bad is None else int(r.bad) for r in found],
                )
            models.append(
                {
                    "model_hash": model_hash,
                    "version": entry["version"] if entry else None,
                    "decisions": len(found),
                    "months": months,
                }
            )
        return {"institution": institution, "models": models}


class Pushes:
    """The institution's side: its decisions not pushed to the platform yet, and what a push has delivered, kept in
    its own database so a push stopped half way resumes without sending anything twice."""

    def __init__(self, units: UnitsOfWork) -> None:
        self.units = units

    def decisions(self, limit: int = BATCH) -> list[dict[str, Any]]:
        """The oldest decisions not pushed yet, as `PushedDecision` documents (figures only)."""
        d, p = decisioning_tables.decisions, hybrid_pushed
        statement = (
            select(d.c.id, d.c.decided_day, d.c.outcome, d.c.score, d.c.pd, d.c.grade, d.c.reasons)
            .add_columns(d.c.model_hash, d.c.policy_hash)
            .select_from(d.outerjoin(p, and_(p.c.kind == "decision", p.c.reference == d.c.id)))
            .where(p.c.reference.is_(None))
            .order_by(d.c.decided_day, d.c.id)
            .limit(limit)
        )
        with self.units.begin(readonly=True) as conn:
            rows = list(conn.execute(statement))
        return [
            PushedDecision(
                reference=r.id,
                decided_on=from_day(r.decided_day),
                outcome=Outcome(r.outcome),
                score=r.score,
                pd=r.pd,
                grade=r.grade,
                reasons=json.loads(r.reasons),
                model_hash=r.model_hash,
                policy_hash=r.policy_hash,
            ).model_dump(mode="json")
            for r in rows
        ]

    def book_outcomes(self) -> list[PushedOutcome]:
        """The outcome of each decision whose credit line drew a loan in this database, at today's month on book
        (from its first loan's disbursal): bad once a loan of the line went bad (`queries.gone_bad`, as the
        platform's own monitoring reads its loans), else good; none in a loan's first month."""
        d, lines, drawdowns, loans = (
            decisioning_tables.decisions,
            decisioning_tables.credit_lines,
            decisioning_tables.drawdowns,
            servicing_tables.loans,
        )
        statement = (
            select(
                d.c.id,
                func.min(loans.c.disbursed_day).label("disbursed_day"),
                func.max(case((gone_bad(), 1), else_=0)).label("bad"),
            )
            .select_from(
                d.join(lines, lines.c.decision_id == d.c.id)
                .join(drawdowns, drawdowns.c.line_id == lines.c.id)
                .join(loans, loans.c.id == drawdowns.c.loan_id)
            )
            .group_by(d.c.id)
            .order_by(d.c.id)
        )
        with self.units.begin(readonly=True) as conn:
            today = ServicingUnit(conn).calendar.business_date
            rows = list(conn.execute(statement))
        found = []
        for row in rows:
            months = months_between(from_day(row.disbursed_day), today)
            if months >= 1:
                found.append(PushedOutcome(reference=row.id, months_on_book=months, bad=bool(row.bad)))
        return found

    def outcomes(self, given: Sequence[PushedOutcome]) -> list[dict[str, Any]]:
        """Those of `given` not pushed yet, as documents."""
        p = hybrid_pushed
        keys = {(o.reference, o.months_on_book) for o in given}
        with self.units.begin(readonly=True) as conn:
            done = (
                {
                    (r.reference, r.months_on_book)
                    for r in conn.execute(
                        select(p.c.reference, p.c.months_on_book).where(
                            p.c.kind == "outcome", tuple_(p.c.reference, p.c.months_on_book).in_(sorted(keys))
                        )
                    )
                }
                if keys
                else set()
            )
        return [o.model_dump(mode="json") for o in given if (o.reference, o.months_on_book) not in done]

    def pushed(self, kind: str, keys: Sequence[tuple[str, int]]) -> None:
        """Record a delivered batch (`kind` decision or outcome; a decision's month on book is 0)."""
        stamp = now_iso()
        rows = [dict(kind=kind, reference=ref, months_on_book=month, pushed_at=stamp) for ref, month in keys]
        with self.units.begin() as conn:
            conn.execute(insert(hybrid_pushed), rows)
