"""What a simulated run proves: calibration by grade, fraud rings caught, funders kept inside their boxes, and the
headline outcomes a what-if compares."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from openice.analytics.backends import DuckDBBackend, snapshot
from openice.analytics.metrics import MetricSet, Period, compute
from openice.matching.institutions import Institution
from openice.simulation.simulator import SimulationResult
from openice.storage import decisioning_tables, servicing_tables
from openice.storage.days import from_day

LGD = 0.8  # loss given default, as the matching economics assume


def metrics(engine: Engine, period: Period, as_of: Any = None) -> MetricSet:
    """The analytics stage's metrics on a DuckDB snapshot of the database."""
    backend = DuckDBBackend.from_arrow(snapshot(engine))
    try:
        return compute(backend, period, as_of)
    finally:
        backend.close()


def calibration(result: SimulationResult) -> list[dict[str, Any]]:
    """Per platform grade: the model's mean PD against the realised 12-month default rate of the simulated loans.

    The realised rate is a hazard estimate: defaults per installment that fell due, annualised
    (1 - (1 - r)^12), so loans that were on the book only a few months count for what they saw.
    """
    rows: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"borrowers": 0, "pd": 0.0, "true_pd": 0.0, "due_events": 0, "defaults": 0}
    )
    for b in result.borrowers:
        if not b.loans or b.grade is None or result.population.ring[b.index] >= 0:
            continue
        row = rows[b.grade]
        row["borrowers"] += 1
        row["pd"] += b.pd or 0.0
        row["true_pd"] += float(result.population.true_pd[b.index])
        row["due_events"] += b.due_events
        row["defaults"] += int(b.defaulted)
    out = []
    for grade in sorted(rows):
        row = rows[grade]
        monthly = row["defaults"] / row["due_events"] if row["due_events"] else 0.0
        realised = 1 - (1 - monthly) ** 12
        model_pd = row["pd"] / row["borrowers"]
        out.append(
            {
                "grade": grade,
                "borrowers": row["borrowers"],
                "model_pd": model_pd,
                "true_pd": row["true_pd"] / row["borrowers"],
                "due_events": row["due_events"],
                "defaults": row["defaults"],
                "realised_12m": realised,
                "gap": realised - model_pd,
            }
        )
    return out


def fraud_catch(result: SimulationResult) -> dict[str, Any]:
    """Ring members' applications that the decisioning rules stopped (declined or sent to review)."""
    members = [b for b in result.borrowers if result.population.ring[b.index] >= 0 and b.outcome is not None]
    caught = sum(b.outcome != "approved" for b in members)
    return {
        "rings": int(len(set(result.population.ring[result.population.ring >= 0]))),
        "applications": len(members),
        "caught": caught,
        "rate": caught / len(members) if members else None,
    }


def institution_breaches(engine: Engine, institutions: list[Institution]) -> list[str]:
    """Every funded drawdown checked against its funder's box, and every day's and month's total against its
    quotas; an empty list means every institution stayed inside what it agreed to."""
    boxes = {i.code: i for i in institutions}
    query = (
        select(
            decisioning_tables.drawdowns.c.id,
            decisioning_tables.drawdowns.c.institution_code,
            decisioning_tables.drawdowns.c.amount,
            decisioning_tables.drawdowns.c.tenor,
            decisioning_tables.drawdowns.c.requested_day,
            decisioning_tables.credit_lines.c.pd,
            decisioning_tables.credit_lines.c.score,
            decisioning_tables.credit_lines.c.product_code,
            decisioning_tables.borrowers.c.province,
        )
        .join(
            decisioning_tables.credit_lines,
            decisioning_tables.credit_lines.c.id == decisioning_tables.drawdowns.c.line_id,
        )
        .join(
            decisioning_tables.borrowers,
            decisioning_tables.borrowers.c.id == decisioning_tables.credit_lines.c.borrower_id,
        )
        .where(decisioning_tables.drawdowns.c.status == "funded")
    )
    breaches: list[str] = []
    daily: dict[tuple[str, int], int] = defaultdict(int)
    monthly: dict[tuple[str, str], int] = defaultdict(int)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    for r in rows:
        inst = boxes[r.institution_code]
        box = inst.credit_box
        checks = {
            "pd": box.min_pd <= r.pd <= box.max_pd,
            "amount": box.min_amount <= r.amount <= box.max_amount,
            "tenor": box.min_tenor <= r.tenor <= box.max_tenor,
            "score": (box.min_score is None or r.score >= box.min_score)
            and (box.max_score is None or r.score <= box.max_score),
            "province": box.provinces is None or r.province in box.provinces,
            "product": box.products is None or r.product_code in box.products,
        }
        breaches += [f"drawdown {r.id} at {inst.code}: {k}" for k, ok in checks.items() if not ok]
        daily[(inst.code, r.requested_day)] += r.amount
        monthly[(inst.code, from_day(r.requested_day).strftime("%Y-%m"))] += r.amount
    breaches += [
        f"{code} over its daily quota on {from_day(day)}"
        for (code, day), used in daily.items()
        if used > boxes[code].daily_quota
    ]
    breaches += [
        f"{code} over its monthly quota in {month}"
        for (code, month), used in monthly.items()
        if used > boxes[code].monthly_quota
    ]
    return breaches


def outcomes(engine: Engine, result: SimulationResult) -> dict[str, float | None]:
    """The numbers a policy change is judged by, over the whole run."""
    applied = [b for b in result.borrowers if b.outcome is not None]
    approved = [b for b in applied if b.outcome == "approved"]
    with engine.connect() as conn:
        loans = conn.execute(
            select(servicing_tables.loans.c.id, servicing_tables.loans.c.principal, servicing_tables.loans.c.tenor)
        ).all()
    people = result.borrowers
    volume = sum(loan.principal for loan in loans)
    expected = 0.0
    for loan in loans:
        b = people[result.loan_borrower[loan.id]]
        expected += (1 - (1 - (b.pd or 0.0)) ** (loan.tenor / 12)) * LGD * loan.principal
    lost = _defaulted_principal(engine, result)
    period = Period(result.start, result.end - timedelta(days=1))
    m = metrics(engine, period)
    revenue = m.total_revenue
    return {
        "applications": len(applied),
        "approval_rate": len(approved) / len(applied) if applied else None,
        "loans": len(loans),
        "volume": volume,
        "expected_loss": expected,
        "realised_loss": lost,
        "day1_delinquency": m["day1_delinquency_rate"].total(),
        "revenue": revenue,
    }


def _defaulted_principal(engine: Engine, result: SimulationResult) -> int:
    """Principal still owed at the end by borrowers who defaulted (written off or not): the realised loss."""
    ids = [loan for loan, i in result.loan_borrower.items() if result.borrowers[i].defaulted]
    if not ids:
        return 0
    i = servicing_tables.installments
    with engine.connect() as conn:
        owed = conn.execute(select(i.c.principal - i.c.principal_paid).where(i.c.loan_id.in_(ids))).scalars()
        return int(np.sum(list(owed)))
