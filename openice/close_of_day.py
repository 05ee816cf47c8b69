"""Closing the business day: servicing's and collections' set-based steps, in order, each in its own transaction.

End of day is where servicing, collections and funding meet, so none owns the list: servicing's steps live in
`openice.servicing.eod`, collections' in `openice.collections.daily` (which may read servicing's loans), funding's in
`openice.funding.service`, and this module orders them. Closing business day D moves the business date to D+1:

1. due          installments falling due on D+1 become receivable (interest, fees, guarantee release; a
                loan in non-accrual bills its interest and fees into suspense)
2. accrual      on a month's last day, interest earned so far in each current period is recognised
3. delinquency  installments due on or before D and unpaid make a loan overdue: days past due,
                bucket, and (past the grace days) a day's late fee up to the cap
4. payout       capital-heavy loans at their payout DPD: the platform pays the institution; the
                loan's provision becomes the allowance against the loan the platform now holds
5. write_off    loans beyond the write-off DPD are written off (the allowance absorbs its part)
6. collections  every overdue or written-off loan has one open collection case at its stage, and
                promises to pay falling due are judged
7. provision    on a month's last day, each live guarantee's provision is trued up to its bucket's
                rate x outstanding principal
8. snapshot     on a month's last day, each loan's DPD and balance is kept for vintages and roll rates
9. abs          on a month's last day, each asset-backed deal's month: its pool's collections from the ledger
                paid down its waterfall (funding's step, `openice.funding.service`)
10. ledger      the day's journal lines are folded into the running balances per currency and account
11. statements  the day's settlement statements (and on a month's last day the month's) are announced to the
                institutions through the outbox: their last day is closed, so they can be paid
12. advance     the business date moves on

Every step runs in one transaction that also records the step as done, so a run killed at any
point and started again continues exactly where it stopped: no double fees, no lost accrual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Engine, insert, select, text, update

from openice.clock import now_iso
from openice.collections.daily import step_collections
from openice.errors import ValidationError
from openice.funding.service import step_abs
from openice.servicing.eod import (
    DayContext,
    closes_month,
    step_accrual,
    step_advance,
    step_delinquency,
    step_due,
    step_ledger,
    step_payout,
    step_provision,
    step_snapshot,
    step_statements,
    step_write_off,
)
from openice.storage import servicing_tables
from openice.storage.days import from_day

STEPS: list[tuple[str, Callable[[DayContext], int]]] = [
    ("due", step_due),
    ("accrual", step_accrual),
    ("delinquency", step_delinquency),
    ("payout", step_payout),
    ("write_off", step_write_off),
    ("collections", step_collections),
    ("provision", step_provision),
    ("snapshot", step_snapshot),
    ("abs", step_abs),
    ("ledger", step_ledger),
    ("statements", step_statements),
    ("advance", step_advance),
]


@dataclass
class DayReport:
    day: date
    rows: dict[str, int]


def close_business_day(engine: Engine, after_step: Callable[[str], None] | None = None) -> DayReport:
    """Close the current business day, resuming after the last completed step of an interrupted run."""
    with engine.begin() as conn:
        day = conn.execute(
            select(servicing_tables.business_calendar.c.business_day).where(
                servicing_tables.business_calendar.c.id == 1
            )
        ).scalar_one()
        conn.execute(
            update(servicing_tables.business_calendar)
            .where(servicing_tables.business_calendar.c.id == 1)
            .values(eod_day=day)
        )
        done = {
            r.step: r.rows
            for r in conn.execute(
                select(servicing_tables.eod_progress).where(servicing_tables.eod_progress.c.business_day == day)
            )
        }
    params: dict[str, object] = {"d": day, "n": day + 1, "yes": True, "no": False}
    rows: dict[str, int] = {}
    for name, step in STEPS:
        if name in done:
            rows[name] = done[name]
            continue
        with engine.begin() as conn:
            ctx = DayContext(conn, day, params)
            rows[name] = step(ctx)
            conn.execute(
                insert(servicing_tables.eod_progress).values(
                    business_day=day, step=name, rows=rows[name], completed_at=now_iso()
                )
            )
            ctx.drop_temps()
        if after_step:
            after_step(name)
    if engine.dialect.name == "postgresql" and closes_month(day):
        vacuum_hot_tables(engine)
    return DayReport(from_day(day), rows)


def vacuum_hot_tables(engine: Engine) -> None:
    """Month-end housekeeping on PostgreSQL: end of day rewrites loan rows daily, so reclaim the dead
    row versions now rather than wait for autovacuum (it cannot run inside a transaction)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) loans, installments"))


def run_until(engine: Engine, target: date, on_day: Callable[[DayReport], None] | None = None) -> list[DayReport]:
    """Close business days until the business date reaches `target`."""
    with engine.begin() as conn:
        current = from_day(conn.execute(select(servicing_tables.business_calendar.c.business_day)).scalar_one())
    if target < current:
        raise ValidationError(
            f"{target} is before the business date {current}; end of day only moves forward", field="to"
        )
    reports = []
    while current < target:
        report = close_business_day(engine)
        reports.append(report)
        if on_day:
            on_day(report)
        current += timedelta(days=1)
    return reports
