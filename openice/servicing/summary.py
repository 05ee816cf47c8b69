"""A portfolio summary read straight from the servicing tables: what the demo prints at the end."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, case, func, select

from openice.storage import servicing_tables


def portfolio_summary(engine: Engine) -> dict[str, Any]:
    loans = servicing_tables.loans
    lines = servicing_tables.journal_lines
    with engine.connect() as conn:
        by_status = {
            r.status: {"loans": r.n, "principal": int(r.principal or 0)}
            for r in conn.execute(
                select(
                    loans.c.status, func.count().label("n"), func.sum(loans.c.principal).label("principal")
                ).group_by(loans.c.status)
            )
        }
        by_model = [
            dict(
                business_model=r.business_model,
                loans=r.n,
                originated=int(r.originated or 0),
                outstanding=int(r.outstanding or 0),
            )
            for r in conn.execute(
                select(
                    loans.c.business_model,
                    func.count().label("n"),
                    func.sum(loans.c.principal).label("originated"),
                    func.sum(case((loans.c.status == "active", loans.c.bal_loan_principal), else_=0)).label(
                        "outstanding"
                    ),
                )
                .group_by(loans.c.business_model)
                .order_by(loans.c.business_model)
            )
        ]
        buckets = {
            r.bucket: int(r.outstanding or 0)
            for r in conn.execute(
                select(loans.c.bucket, func.sum(loans.c.bal_loan_principal).label("outstanding"))
                .where(loans.c.status == "active")
                .group_by(loans.c.bucket)
            )
        }
        accounts = {
            r.account: int(r.total)
            for r in conn.execute(
                select(lines.c.account, func.sum(lines.c.amount).label("total")).group_by(lines.c.account)
            )
        }
        trial_balance = int(conn.execute(select(func.coalesce(func.sum(lines.c.amount), 0))).scalar_one())
    return {
        "by_status": by_status,
        "by_business_model": by_model,
        "outstanding_by_bucket": buckets,
        "ledger_accounts": accounts,
        "trial_balance": trial_balance,
    }
